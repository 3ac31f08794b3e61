"""The coordinated-action state machine: an operation from pre-notification to verification.

    operation.prenotify (proposer)            -> proposed
    action.request_info (counterpart)         proposed | info_requested            -> info_requested
    action.provide_info (proposer)            info_requested                       -> proposed
    action.consent      (counterpart)         proposed | info_requested | objected  -> consented
    action.object       (counterpart)         proposed | info_requested | consented -> objected
    action.withdraw     (proposer)            proposed | info_requested | consented | objected -> withdrawn
    action.execute      (proposer)            proposed | info_requested | consented | objected -> executed
    action.report       (proposer)            executed                             -> reported
    action.verify       (counterpart liaison) reported                             -> verified
    action.dispute      (counterpart liaison) reported                             -> disputed

The action's id is the id of its `operation.prenotify` envelope; every `action.*` envelope carries
it as its only ref. The proposer is the prenotification's sender, the counterpart its addressee.
An execution that was not consented to, that came despite an objection, or whose `started` time
is earlier than the consent (or than the prenotification) is accepted, because the record must
show what happened, and flagged `unilateral` with every reason that applies, joined by "; "
(`unilateral_reasons`); one whose `started` time falls outside the notified window is flagged
`outside_window`. `withdrawn`, `verified` and `disputed`
are final.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from detente.core.bodies import OperationPrenotify
from detente.core.envelope import Envelope
from detente.core.precedence import parse_time
from detente.core.workflow_base import (
    COUNTERPART,
    LIAISON,
    PROPOSER,
    Step,
    admit,
    check_role,
    may,
    parse_body,
    refuse,
    to_json,
)
from detente.core.workflow_bodies import ActionDispute, ActionExecute, ActionReport, ActionVerify, Evidence

REASON_SEPARATOR = "; "
ActionStatus = Literal[
    "proposed", "info_requested", "consented", "objected", "withdrawn",
    "executed", "reported", "verified", "disputed",
]  # fmt: skip
_OPEN = frozenset({"proposed", "info_requested", "consented", "objected"})
# message type -> (who may send it, the statuses it may come in, the status it leads to)
TRANSITIONS: dict[str, tuple[str, frozenset[str], ActionStatus]] = {
    "action.request_info": (COUNTERPART, frozenset({"proposed", "info_requested"}), "info_requested"),
    "action.provide_info": (PROPOSER, frozenset({"info_requested"}), "proposed"),
    "action.consent": (COUNTERPART, frozenset({"proposed", "info_requested", "objected"}), "consented"),
    "action.object": (COUNTERPART, frozenset({"proposed", "info_requested", "consented"}), "objected"),
    "action.withdraw": (PROPOSER, _OPEN, "withdrawn"),
    "action.execute": (PROPOSER, _OPEN, "executed"),
    "action.report": (PROPOSER, frozenset({"executed"}), "reported"),
    "action.verify": (LIAISON, frozenset({"reported"}), "verified"),
    "action.dispute": (LIAISON, frozenset({"reported"}), "disputed"),
}


@dataclass(frozen=True)
class EvidenceRef:
    """A file some envelope of the action pointed to, by SHA-256."""

    sha256: str
    name: str
    media_type: str
    size: int
    envelope: str


@dataclass(frozen=True)
class Action:
    """Where a coordinated operation stands, as both sides derive it from the same envelopes."""

    id: str
    case: str | None
    proposer: str
    counterpart: str
    created: str
    window_start: str
    window_end: str
    respond_by: str | None
    target_group: str
    status: ActionStatus
    unilateral: bool = False
    # Every reason that applies, joined by "; ", the consent first: "executed without consent",
    # "executed despite an objection" or "executed before consent was given"; then "executed before
    # it was notified" (one string, so that a state stored by an earlier release reads the same).
    unilateral_reason: str | None = None
    outside_window: bool = False
    executed_at: str | None = None
    decision: str | None = None  # id of the latest consent or objection
    report: str | None = None
    verdict: str | None = None  # id of the verification or dispute
    evidence: tuple[EvidenceRef, ...] = ()
    history: tuple[Step, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the action as JSON for the API."""
        out: dict[str, Any] = to_json(self)
        return out


def open_action(envelope: Envelope) -> Action:
    """Return the new action an `operation.prenotify` envelope opens."""
    body = parse_body(envelope, OperationPrenotify)
    return Action(
        id=envelope.id, case=envelope.case, proposer=envelope.sender, counterpart=envelope.recipient,
        created=envelope.created, window_start=body.window.start, window_end=body.window.end,
        respond_by=body.respond_by, target_group=body.target_group, status="proposed",
        history=(Step.of(envelope, "proposed"),),
    )  # fmt: skip


def apply_action(state: Action | None, envelope: Envelope) -> Action:
    """Return the action after `envelope`. Raises `InvalidTransition` if it may not happen now.

    An envelope the action already holds is ignored (the same state is returned).
    """
    admitted = admit(state, envelope, opener="operation.prenotify", noun="action", open_=open_action, types=TRANSITIONS)
    if admitted is not None:
        return admitted
    assert state is not None  # admit refuses a message for an unknown action
    role, sources, target = TRANSITIONS[envelope.type]
    check_role(role, envelope, state.proposer, state.counterpart, "operation")
    if state.status not in sources:
        allowed = " or ".join(sorted(sources))
        refuse(f"{envelope.type} is not allowed when the action is {state.status} (only when {allowed})")
    changes: dict[str, Any] = {}
    if envelope.type in ("action.consent", "action.object"):
        changes["decision"] = envelope.id
    elif envelope.type == "action.execute":
        started = parse_body(envelope, ActionExecute).started
        moment = parse_time(started)
        changes["executed_at"] = started
        changes["outside_window"] = not parse_time(state.window_start) <= moment <= parse_time(state.window_end)
        reasons = unilateral_reasons(state, moment)
        if reasons:
            changes["unilateral"] = True
            changes["unilateral_reason"] = REASON_SEPARATOR.join(reasons)
    elif envelope.type == "action.report":
        changes["report"] = envelope.id
        changes["evidence"] = state.evidence + _evidence(envelope, parse_body(envelope, ActionReport).evidence)
    elif envelope.type in ("action.verify", "action.dispute"):
        if envelope.type == "action.verify":
            files = parse_body(envelope, ActionVerify).evidence
        else:
            files = parse_body(envelope, ActionDispute).evidence
        changes["verdict"] = envelope.id
        changes["evidence"] = state.evidence + _evidence(envelope, files)
    return replace(state, status=target, history=(*state.history, Step.of(envelope, target)), **changes)


def unilateral_reasons(state: Action, started: datetime) -> list[str]:
    """Return why an execution that `started` then, in `state`, would be flagged unilateral ([] if it would not).

    Every reason that applies is given, the consent's first: an execution with no consent, started
    before it was notified, is both "executed without consent" and "executed before it was
    notified". A consent counts only for what started after it. Raises nothing.
    """
    reasons: list[str] = []
    if state.status == "objected":
        reasons.append("executed despite an objection")
    elif state.status != "consented":
        reasons.append("executed without consent")
    else:
        consent = next(step for step in reversed(state.history) if step.status == "consented")
        if started < parse_time(consent.created):
            reasons.append("executed before consent was given")
    if started < parse_time(state.created):
        reasons.append("executed before it was notified")
    return reasons


def _evidence(envelope: Envelope, items: list[Evidence]) -> tuple[EvidenceRef, ...]:
    return tuple(EvidenceRef(e.sha256, e.name, e.media_type, e.size, envelope.id) for e in items)


def allowed_action_types(state: Action, office: str) -> list[str]:
    """Return the `action.*` types `office` may send now, in the order of the state machine."""
    return [
        name
        for name, (role, sources, _) in TRANSITIONS.items()
        if state.status in sources and may(role, office, state.proposer, state.counterpart)
    ]


def decision_overdue(state: Action, now: datetime) -> bool:
    """Return whether the counterpart's decision was due (`respond_by`) before `now` and is missing."""
    pending = state.status in ("proposed", "info_requested")
    return pending and state.respond_by is not None and parse_time(state.respond_by) < now
