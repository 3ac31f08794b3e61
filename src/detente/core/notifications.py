"""The catalog of message types: each a typed, validated body with its own rules.

Every type names the pydantic model of its body, whether a person must acknowledge it, which
precedences it may carry and on which channels it may travel. The same `validate` runs on the
sending node before anything is written and on the receiving node before anything is stored.

Service types (`ack`, `decline`, `overdue`, `status`, `link.test`, `translation`,
`translation.review`) are never acknowledged themselves. `status` travels on the reserved `node`
channel and `link.test` on `link`; every other type travels on an agreement channel that allows it
(a service type on any agreement channel).

The structured notifications (`incident.report` ... `code`, bodies in `core.bodies`) and the
workflow messages (`case.*`, `action.*`, `consultation.*`, bodies in `core.workflow_bodies`) add
rules that need the agreement or the envelope's `created` time: lead times, window lengths,
deadlines, the codebook. `validate_message` runs every rule of a type; `validate_body` runs all but
the time-dependent ones, plus the rules only a sender applies (`MessageType.sending`, the strict
blank rule of `bodies.is_blank`). Errors are `Invalid` with `fields={path: message}`, where a body
field's path is its dotted location in the body (`window.start`, `evidence.1`) and `type`, `channel`,
`precedence`, `refs` and `case` name the envelope's own members.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn

from pydantic import Field, ValidationError

from detente.core import bodies as b
from detente.core import codebook, rules
from detente.core import translations as tr
from detente.core import workflow_bodies as w
from detente.core.agreement import LINK_CHANNEL, NODE_CHANNEL, Agreement
from detente.core.bodies import Body
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence, format_time, parse_time
from detente.core.rules import Check, Draft
from detente.errors import Invalid

ALL_PRECEDENCES = frozenset(Precedence)


class HotlineText(Body):
    """Free text between two offices."""

    text: str = Field(min_length=1, max_length=10_000)


# The office that answered, when an alternate answered a message that went overdue (escalation):
# the envelope is sealed from the addressed office, which the message's channel links. Left out when
# the addressee answers, so that such an answer is what an earlier release sealed.
_ANSWERING_OFFICE = Field(default="", max_length=64, description="the alternate that answered, if not the addressee")


class Ack(Body):
    """A person's statement that they read the referenced message."""

    note: str = Field(default="", max_length=2_000)
    office: str = _ANSWERING_OFFICE


class Decline(Body):
    """A person's refusal to act on the referenced message, with the reason."""

    reason: str = Field(min_length=1, max_length=2_000)
    office: str = _ANSWERING_OFFICE


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
    refs_are: str = ""  # what they are, in order, for the error that counts them: "the action (...)"
    channels: tuple[str, ...] | None = None  # None: any agreement channel that allows it
    service: bool = False
    extra_rules: tuple[Callable[[dict[str, Any], Agreement], None], ...] = field(default_factory=tuple)
    checks: tuple[Check, ...] = ()  # rules needing the agreement or `created`; see `Draft`
    # Rules added after envelopes were sealed without them: only the sender runs them
    # (`validate_body`), so that a peer's envelope an earlier release sealed is still stored.
    sending: tuple[Check, ...] = ()
    opens: str | None = None  # the workflow a message of this type opens: case, action, ...
    needs_case: bool = False  # the envelope must name its case

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
register(MessageType("ack", Ack, needs_ack=False, refs=(1, 1), refs_are="the message it answers", service=True))
register(MessageType("decline", Decline, needs_ack=False, refs=(1, 1), refs_are="the message it answers", service=True))
register(MessageType("overdue", Overdue, needs_ack=False, refs=(1, 1), refs_are="the overdue message", service=True))
register(MessageType("status", Status, needs_ack=False, refs=(0, 0), channels=(NODE_CHANNEL,), service=True))
register(MessageType("link.test", LinkTest, needs_ack=False, refs=(0, 0), channels=(LINK_CHANNEL,), service=True))
# Certified translations (core.translations): they travel on the channel of the message they are
# about, with its precedence, and are sent with their own action, as answers are.
register(MessageType(tr.TRANSLATION, tr.Translation, needs_ack=False, refs=(1, 1), refs_are="the message it translates",
                     service=True, checks=(tr.lang_known,)))  # fmt: skip
register(MessageType(tr.REVIEW, tr.TranslationReview, needs_ack=False, refs=(1, 1),
                     refs_are="the translation it reviews", service=True, checks=(tr.dispute_says_why,)))  # fmt: skip

# The structured notifications (reference/domain.md §3) and the workflow messages (core.workflows).
_URGENT = frozenset({Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY})
_NOT_FLASH = frozenset({Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE})
_PLANNED = frozenset({Precedence.PRIORITY, Precedence.ROUTINE})
_ONE = (1, 1)
_PRENOTIFY = (rules.lead_time, rules.window_length)
_ACTION = "the action (its operation.prenotify envelope)"
_CONSULTATION = "the consultation (its consultation.propose envelope)"
_MINUTES = f"{_CONSULTATION}, then the consultation.minutes envelope it co-signs"
_EVIDENCE = (rules.distinct_evidence,)


def _items_due_later(draft: Draft) -> dict[str, str]:
    """Every action item of the minutes falls due after the minutes are created.

    A sender's rule (`MessageType.sending`): minutes an earlier release sealed with an item already
    due are still stored.
    """
    errors: dict[str, str] = {}
    if draft.created is None:
        return errors
    for index, item in enumerate(draft.body.get("items", [])):
        if parse_time(item["due"]) <= draft.created:  # the body's schema was checked first: a valid time
            errors[f"items.{index}.due"] = "must be after the minutes are sent: an action item cannot start overdue"
    return errors


for _kind in (
    MessageType("incident.report", b.IncidentReport, precedences=_URGENT, opens="case",
                checks=(rules.not_after_created("time"),), sending=(rules.not_long_before_created("time", 366),)),
    MessageType("clarification.request", b.ClarificationRequest, opens="clarification",
                checks=(rules.after_created("deadline"),)),
    MessageType("clarification.response", b.ClarificationResponse, refs=_ONE,
                refs_are="the clarification.request it answers"),
    MessageType("operation.prenotify", b.OperationPrenotify, opens="action",
                checks=(*_PRENOTIFY, rules.after_created("respond_by"), rules.respond_by_before_start)),
    MessageType("missile.prenotify", b.MissilePrenotify, precedences=_NOT_FLASH, checks=_PRENOTIFY),
    MessageType("exercise.prenotify", b.ExercisePrenotify, precedences=_PLANNED, checks=_PRENOTIFY),
    MessageType("intel.share", b.IntelShare, checks=(rules.after_created("valid_until"),)),
    MessageType("diplomatic.status", b.DiplomaticStatus, precedences=_NOT_FLASH),
    MessageType("deescalation.proposal", b.DeescalationProposal),
    MessageType("statement", b.Statement, precedences=_NOT_FLASH),
    MessageType("code", b.Code, checks=(rules.code_known,), sending=(rules.code_params_in_range,)),
    MessageType("case.open", w.CaseOpen, opens="case"),
    MessageType("case.update", w.CaseUpdate, needs_case=True),
    MessageType("action.consent", w.ActionConsent, refs=_ONE, refs_are=_ACTION),
    MessageType("action.object", w.ActionObject, refs=_ONE, refs_are=_ACTION),
    MessageType("action.request_info", w.ActionRequestInfo, refs=_ONE, refs_are=_ACTION),
    MessageType("action.provide_info", w.ActionProvideInfo, refs=_ONE, refs_are=_ACTION),
    MessageType("action.withdraw", w.ActionWithdraw, refs=_ONE, refs_are=_ACTION),
    MessageType("action.execute", w.ActionExecute, refs=_ONE, refs_are=_ACTION,
                checks=(rules.not_after_created("started"),)),
    MessageType("action.report", w.ActionReport, refs=_ONE, refs_are=_ACTION, sending=_EVIDENCE),
    MessageType("action.verify", w.ActionVerify, refs=_ONE, refs_are=_ACTION, sending=_EVIDENCE),
    MessageType("action.dispute", w.ActionDispute, refs=_ONE, refs_are=_ACTION, sending=_EVIDENCE),
    MessageType("consultation.propose", w.ConsultationPropose, precedences=_NOT_FLASH, opens="consultation",
                checks=(rules.after_created("start"), rules.schedule_known)),
    MessageType("consultation.agree", w.ConsultationAgree, precedences=_NOT_FLASH, refs=_ONE,
                refs_are=_CONSULTATION),
    MessageType("consultation.cancel", w.ConsultationCancel, precedences=_NOT_FLASH, refs=_ONE,
                refs_are=_CONSULTATION),
    MessageType("consultation.held", w.ConsultationHeld, precedences=_NOT_FLASH, refs=_ONE,
                refs_are=_CONSULTATION, checks=(rules.not_after_created("held_at"),)),
    MessageType("consultation.minutes", w.ConsultationMinutes, precedences=_NOT_FLASH, refs=_ONE,
                refs_are=_CONSULTATION, checks=(rules.owners_known,), sending=(_items_due_later,)),
    MessageType("consultation.cosign", w.ConsultationCosign, precedences=_NOT_FLASH, refs=(2, 2),
                refs_are=_MINUTES),
    MessageType("consultation.item_done", w.ConsultationItemDone, precedences=_NOT_FLASH, refs=_ONE,
                refs_are=_CONSULTATION),
):  # fmt: skip
    register(_kind)


def get(name: str) -> MessageType:
    """Return the type called `name`. Raises `Invalid` (field `type`) for an unknown type."""
    try:
        return CATALOG[name]
    except KeyError:
        raise Invalid(f"unknown message type {name!r}", fields={"type": "not a message type"}) from None


def refs_problem(name: str, count: int) -> str | None:
    """Return what is wrong with `count` refs on a message of type `name`, or None if it may carry that many.

    The answer says what the refs must be (`MessageType.refs_are`), not only how many. Raises
    `Invalid` for an unknown type.
    """
    kind = get(name)
    low, high = kind.refs
    if low <= count <= high:
        return None
    many = "no" if high == 0 else str(low) if low == high else f"{low} to {high}"
    wanted = f"{many} reference{'' if (low, high) == (1, 1) else 's'}"
    if kind.refs_are:
        return f"{name} refs {kind.refs_are}: {wanted}, got {count}"
    return f"{name} takes {wanted}, got {count}"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        # A rule of the whole body (`case.update` with nothing to change) has no location: "body", not "body.body".
        parts.append(f"body.{where}: {item['msg']}" if where else f"body: {item['msg']}")
    return "; ".join(parts)


def validate_body(name: str, body: Any, agreement: Agreement) -> dict[str, Any]:
    """Validate a body against its type and return it unchanged.

    Runs every rule that does not need the envelope's `created` time (`validate_message` runs
    them all), and the rules only a sender applies: the sender's blank rule (`bodies.is_blank`)
    and `MessageType.sending`. Only a node about to send a body calls it. Raises `Invalid` naming
    the field and the rule it breaks.
    """
    kind = get(name)
    if not isinstance(body, dict):
        raise Invalid("body must be a JSON object", fields={"body": "must be a JSON object"})
    try:
        kind.model.model_validate(body, context=b.SENDING)
    except ValidationError as exc:
        raise Invalid(f"{name}: {_describe(exc)}", fields=_field_errors(exc)) from None
    for rule in kind.extra_rules:
        rule(body, agreement)
    _run_checks((*kind.checks, *kind.sending), Draft(name, body, agreement), {})
    return body


def _run_checks(checks: Sequence[Check], draft: Draft, errors: dict[str, str]) -> None:
    for check in checks:
        for path, message in check(draft).items():
            errors.setdefault(path, message)
    if errors:
        raise Invalid("; ".join(f"{path}: {message}" for path, message in errors.items()), fields=errors)


def validate_message(
    name: str,
    body: Any,
    agreement: Agreement,
    *,
    created: datetime,
    precedence: Precedence,
    refs: Sequence[str] = (),
    case: str | None = None,
    sending: bool = False,
) -> dict[str, Any]:
    """Run every rule of type `name` on a message created at `created`; return the body unchanged.

    With `sending` (the node about to seal it), the sender's own rules run too, measured from
    `created` (`MessageType.sending`); a receiver leaves them out.

    Checks the precedence, the number of refs, the case (for types that need one), the body's
    schema and every rule of the type, including lead times and deadlines measured from `created`.
    The channel is `check_route`'s business. Raises `Invalid` whose `fields` maps each offending
    field (`window.start`, `precedence`, `refs`, `case`) to what is wrong with it.
    """
    kind = get(name)
    errors: dict[str, str] = {}
    if precedence not in kind.precedences:
        allowed = ", ".join(p.value for p in Precedence if p in kind.precedences)
        errors["precedence"] = f"{name} may not be sent {precedence.value}; allowed: {allowed}"
    refs_wrong = refs_problem(name, len(refs))
    if refs_wrong:
        errors["refs"] = refs_wrong
    if kind.needs_case and case is None:
        errors["case"] = f"{name} must name the case it belongs to"
    if not isinstance(body, dict):
        errors["body"] = "body must be a JSON object"
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    try:
        kind.model.model_validate(body)
    except ValidationError as exc:
        detail = "; ".join([*(f"{k}: {v}" for k, v in errors.items()), f"{name}: {_describe(exc)}"])
        errors.update(_field_errors(exc))
        raise Invalid(detail, fields=errors) from None
    for rule in kind.extra_rules:
        rule(body, agreement)
    checks = (*kind.checks, *kind.sending) if sending else kind.checks
    _run_checks(checks, Draft(name, body, agreement, created, precedence, tuple(refs), case), errors)
    return body


def validate_envelope(envelope: Envelope, agreement: Agreement) -> None:
    """Run `check_route` and `validate_message` on a sealed or received envelope.

    Raises `Invalid` naming the rule broken.
    """
    check_route(envelope.type, envelope.channel, envelope.precedence, envelope.refs, agreement)
    validate_message(
        envelope.type, envelope.body, agreement, created=parse_time(envelope.created),
        precedence=envelope.precedence, refs=envelope.refs, case=envelope.case,
    )  # fmt: skip


def with_defaults(name: str, body: dict[str, Any], agreement: Agreement, created: datetime) -> dict[str, Any]:
    """Return `body` with the agreement's default deadlines filled in, for the sender to seal.

    `clarification.request` gets `deadline` = created + the agreement's response deadline (48 h
    by default); `operation.prenotify` gets `respond_by` = created + the agreement's response
    deadline for it, if any, but no later than the window's start. A body that already has the
    member, or that is malformed, is returned unchanged (validation reports the fault).
    """
    member = {"clarification.request": "deadline", "operation.prenotify": "respond_by"}.get(name)
    if member is None or body.get(member) is not None:
        return body
    delta = codebook.response_deadline(agreement.raw, name)
    if delta is None:
        return body
    due = created + delta
    if name == "operation.prenotify":
        try:
            due = min(due, parse_time(body["window"]["start"]))
        except (Invalid, KeyError, TypeError):
            return body
    return {**body, member: format_time(due)}


def render_code(body: dict[str, Any], agreement: Agreement, lang: str) -> str:
    """Return a `code` message's text in `lang`, from the agreement's codebook.

    Raises `Invalid` for an unknown code or language or parameters that do not fit the entry.
    """
    entry = codebook.codebook(agreement.raw).get(body.get("code", ""))
    if entry is None:
        raise Invalid(f"{body.get('code')!r} is not in the agreement's codebook", fields={"code": "unknown code"})
    return codebook.render(entry, body.get("params", {}), lang)


def check_agreement(agreement: Agreement) -> None:
    """Check the agreement's vocabulary: its extension tables and every channel's `types`.

    Raises `Invalid` naming the table and the unknown or misplaced type.
    """
    codebook.validate_extensions(agreement.raw)
    for name, chan in sorted(agreement.channels.items()):
        for kind in chan.types or ():
            if kind not in CATALOG:
                raise Invalid(f"[channels.{name}]: types lists unknown message type {kind!r}")
            if CATALOG[kind].channels is not None:
                raise Invalid(f"[channels.{name}]: {kind} travels only on its reserved channel")


def _field_errors(error: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in item["loc"]) or "body": item["msg"] for item in error.errors()}


def check_route(name: str, channel: str, precedence: Precedence, refs: list[str], agreement: Agreement) -> None:
    """Check that a message of type `name` may travel on `channel` with this precedence and refs.

    Raises `Invalid` naming the rule broken, with `fields` naming the envelope member: `type` (or
    `channel`, for a type bound to a reserved channel), `precedence` or `refs`.
    """
    kind = get(name)
    if kind.channels is not None:
        if channel not in kind.channels:
            _refuse("channel", f"{name} travels only on channel(s) {', '.join(kind.channels)}, not {channel!r}")
    else:
        chan = agreement.channel(channel)
        if chan.types is not None and name not in chan.types and not kind.service:
            _refuse("type", f"channel {channel!r} does not carry {name} under the agreement")
    if precedence not in kind.precedences:
        allowed = ", ".join(p.value for p in Precedence if p in kind.precedences)
        _refuse("precedence", f"{name} may not be sent {precedence.value}; allowed: {allowed}")
    refs_wrong = refs_problem(name, len(refs))
    if refs_wrong:
        _refuse("refs", refs_wrong)


def _refuse(member: str, detail: str) -> NoReturn:
    raise Invalid(detail, fields={member: detail})
