"""The catalog of message types: each a typed, validated body with its own rules.

Every type names the pydantic model of its body, whether a person must acknowledge it, which
precedences it may carry and on which channels it may travel. The same `validate` runs on the
sending node before anything is written and on the receiving node before anything is stored.

Service types (`ack`, `decline`, `overdue`, `status`, `link.test`) are never acknowledged
themselves. `status` travels on the reserved `node` channel and `link.test` on `link`; every
other type travels on an agreement channel that allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detente.core.agreement import LINK_CHANNEL, NODE_CHANNEL, Agreement
from detente.core.precedence import Precedence
from detente.errors import Invalid

ALL_PRECEDENCES = frozenset(Precedence)


class Body(BaseModel):
    """Base of every body model: unknown members are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class HotlineText(Body):
    """Free text between two offices."""

    text: str = Field(min_length=1, max_length=10_000)


class Ack(Body):
    """A person's statement that they read the referenced message."""

    note: str = Field(default="", max_length=2_000)


class Decline(Body):
    """A person's refusal to act on the referenced message, with the reason."""

    reason: str = Field(min_length=1, max_length=2_000)


class Overdue(Body):
    """The record that the referenced message was not acknowledged by its deadline."""

    deadline: str = Field(min_length=1, max_length=40)
    notify: list[str] = Field(default_factory=list, max_length=8)


StatusCode = Literal["TECH", "DECLINED", "AWAITING_AUTHORITY", "BUSY", "OK"]


class Status(Body):
    """Why a side is (not) answering: silence is never left to guesswork."""

    code: StatusCode
    note: str = Field(default="", max_length=2_000)
    office: str = Field(min_length=1, max_length=48)


class LinkTest(Body):
    """A scheduled link test; the peer's signed receipt is the answer."""

    nonce: str = Field(min_length=1, max_length=64)


@dataclass(frozen=True)
class MessageType:
    """A message type and its rules."""

    name: str
    model: type[Body]
    needs_ack: bool = True
    precedences: frozenset[Precedence] = ALL_PRECEDENCES
    refs: tuple[int, int] = (0, 32)  # how many refs it may carry, inclusive
    channels: tuple[str, ...] | None = None  # None: any agreement channel that allows it
    service: bool = False
    extra_rules: tuple[Callable[[dict[str, Any], Agreement], None], ...] = field(default_factory=tuple)

    def json_schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the body (used by the OpenAPI document and console forms)."""
        return self.model.model_json_schema()


CATALOG: dict[str, MessageType] = {}


def register(kind: MessageType) -> MessageType:
    """Add a type to the catalog (each name once)."""
    if kind.name in CATALOG:
        raise ValueError(f"message type {kind.name} registered twice")
    CATALOG[kind.name] = kind
    return kind


register(MessageType("hotline.text", HotlineText))
register(MessageType("ack", Ack, needs_ack=False, refs=(1, 1), service=True))
register(MessageType("decline", Decline, needs_ack=False, refs=(1, 1), service=True))
register(MessageType("overdue", Overdue, needs_ack=False, refs=(1, 1), service=True))
register(MessageType("status", Status, needs_ack=False, refs=(0, 0), channels=(NODE_CHANNEL,), service=True))
register(
    MessageType("link.test", LinkTest, needs_ack=False, refs=(0, 0), channels=(LINK_CHANNEL,), service=True)
)


def get(name: str) -> MessageType:
    """Return the type called `name`. Raises `Invalid` for an unknown type."""
    try:
        return CATALOG[name]
    except KeyError:
        raise Invalid(f"unknown message type {name!r}") from None


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"body.{where}: {item['msg']}")
    return "; ".join(parts)


def validate_body(name: str, body: Any, agreement: Agreement) -> dict[str, Any]:
    """Validate a body against its type and return it unchanged.

    Raises `Invalid` naming the field and the rule it breaks.
    """
    kind = get(name)
    if not isinstance(body, dict):
        raise Invalid("body must be a JSON object")
    try:
        kind.model.model_validate(body)
    except ValidationError as exc:
        raise Invalid(f"{name}: {_describe(exc)}", fields=_field_errors(exc)) from None
    for rule in kind.extra_rules:
        rule(body, agreement)
    return body


def _field_errors(error: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in item["loc"]) or "body": item["msg"] for item in error.errors()}


def check_route(name: str, channel: str, precedence: Precedence, refs: list[str], agreement: Agreement) -> None:
    """Check that a message of type `name` may travel on `channel` with this precedence and refs.

    Raises `Invalid` naming the rule broken.
    """
    kind = get(name)
    if kind.channels is not None:
        if channel not in kind.channels:
            raise Invalid(f"{name} travels only on channel(s) {', '.join(kind.channels)}, not {channel!r}")
    else:
        chan = agreement.channel(channel)
        if chan.types is not None and name not in chan.types and not kind.service:
            raise Invalid(f"channel {channel!r} does not carry {name} under the agreement")
    if precedence not in kind.precedences:
        allowed = ", ".join(p.value for p in Precedence if p in kind.precedences)
        raise Invalid(f"{name} may not be sent {precedence.value}; allowed: {allowed}")
    low, high = kind.refs
    if not low <= len(refs) <= high:
        raise Invalid(f"{name} needs between {low} and {high} reference(s), got {len(refs)}")
