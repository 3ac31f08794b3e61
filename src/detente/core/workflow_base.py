"""What the state machines of `core.workflows` share: roles, steps, refusals and JSON.

Roles are read from office ids alone, so that both nodes judge an envelope the same way with no
local knowledge: an office's party is the prefix of its id (`pk:dgmo` -> `pk`), and a liaison
office is one whose desk starts with `lo-` (`pk:lo-zahedan`), the convention of every agreement
(see `agreements/pk-ir.toml`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol, TypeVar

from pydantic import ValidationError

from detente.core.bodies import Body
from detente.core.envelope import Envelope
from detente.core.precedence import parse_time
from detente.errors import InvalidTransition

B = TypeVar("B", bound=Body)

# Who may send a workflow message, relative to the workflow's opener.
PROPOSER = "proposer"  # an office of the party that opened the workflow
COUNTERPART = "counterpart"  # an office of the party the opening envelope was addressed to
LIAISON = "counterpart liaison"  # a liaison office (`<party>:lo-*`) of the counterpart party
EITHER = "either"  # an office of either party
OWNER = "owner"  # an office of the party that owns the action item


def party(office: str) -> str:
    """Return the party of an office id: `pk:dgmo` -> `pk`."""
    return office.split(":", 1)[0]


def is_liaison(office: str) -> bool:
    """Return whether the office is a liaison office: its desk starts with `lo-`."""
    return office.split(":", 1)[-1].startswith("lo-")


def refuse(reason: str) -> NoReturn:
    """Raise `InvalidTransition` with `reason`."""
    raise InvalidTransition(reason)


def when(envelope: Envelope) -> datetime:
    """Return the envelope's `created` time."""
    return parse_time(envelope.created)


def parse_body(envelope: Envelope, model: type[B]) -> B:
    """Return the envelope's body as `model`. Raises `InvalidTransition` if it does not fit."""
    try:
        return model.model_validate(envelope.body)
    except ValidationError:
        refuse(f"envelope {envelope.id}: body is not a valid {envelope.type}")


def check_role(role: str, envelope: Envelope, proposer: str, counterpart: str, what: str) -> None:
    """Refuse the envelope unless its sender plays `role` in a workflow opened by `proposer`."""
    sender = envelope.sender
    if role == PROPOSER and party(sender) != party(proposer):
        refuse(f"{envelope.type} must come from {party(proposer)}, the side that proposed the {what}; not {sender}")
    if role in (COUNTERPART, LIAISON) and party(sender) != party(counterpart):
        refuse(f"{envelope.type} must come from {party(counterpart)}, the other side of the {what}; not {sender}")
    if role == LIAISON and not is_liaison(sender):
        refuse(f"{envelope.type} must come from a liaison office (lo-*) of {party(counterpart)}; not {sender}")
    if role == EITHER and party(sender) not in (party(proposer), party(counterpart)):
        refuse(f"{envelope.type} must come from a party to the {what}; not {sender}")


def may(role: str, office: str, proposer: str, counterpart: str) -> bool:
    """Return whether `office` plays `role` in a workflow opened by `proposer`."""
    if role == PROPOSER:
        return party(office) == party(proposer)
    if role == COUNTERPART:
        return party(office) == party(counterpart)
    if role == LIAISON:
        return party(office) == party(counterpart) and is_liaison(office)
    return party(office) in (party(proposer), party(counterpart))


@dataclass(frozen=True)
class Step:
    """One envelope a workflow accepted: who sent what when, and the status it led to."""

    id: str
    type: str
    sender: str
    created: str
    status: str

    @classmethod
    def of(cls, envelope: Envelope, status: str) -> Step:
        return cls(envelope.id, envelope.type, envelope.sender, envelope.created, status)


class Tracked(Protocol):
    """A workflow state that opened with an envelope and keeps the steps it accepted."""

    @property
    def id(self) -> str: ...

    @property
    def history(self) -> tuple[Step, ...]: ...


W = TypeVar("W", bound=Tracked)


def admit(
    state: W | None, envelope: Envelope, *, opener: str, noun: str, open_: Callable[[Envelope], W], types: Iterable[str]
) -> W | None:
    """The checks every shared workflow makes before its own transitions.

    Returns the state to answer at once (the workflow `envelope` opens, or `state` unchanged when it
    already holds `envelope`), or None when the caller's transition rules decide. Raises
    `InvalidTransition` for an opener of another workflow, a message for an unknown workflow, a
    type that is not one of `types`, and a first ref that is not the workflow's id.
    """
    if envelope.type == opener:
        if state is None:
            return open_(envelope)
        if state.id == envelope.id:
            return state
        refuse(f"{opener} {envelope.id} opens its own {noun}, not {state.id}")
    if state is None:
        ref = envelope.refs[0] if envelope.refs else "none"
        refuse(f"{envelope.type} refers to {noun} {ref}, which is not known")
    if envelope.type not in types:
        refuse(f"{envelope.type} is not {'an' if noun[0] in 'aeiou' else 'a'} {noun} message")
    if envelope.refs[:1] != [state.id]:
        refuse(f"{envelope.type} must carry the {noun}'s id {state.id} as its first ref")
    if any(step.id == envelope.id for step in state.history):
        return state
    return None


def to_json(value: Any) -> Any:
    """Return a JSON-ready copy of a state: dataclasses become objects, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
