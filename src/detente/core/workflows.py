"""Pure state machines over envelopes: cases, clarifications, coordinated actions, consultations.

Every view of "where things stand" is derived from envelopes by these functions, on both nodes,
from nothing but the envelopes (no clock, no local data), so the sender and the receiver of the
same envelopes derive the same states. Only `overdue` questions take an explicit `now`.

    apply(state, envelope) -> state     one step; raises InvalidTransition (the sender checks
                                        with it before sealing); `state` is None for an opener
    targets(envelope)                   the (workflow, id) pairs an envelope touches
    fold(envelopes) -> Projection       every state from a set of envelopes (`detente rebuild`)

Openers and ids: `incident.report` and `case.open` open a case (id = their envelope id) unless
their envelope's `case` names another case, which an `incident.report` then joins (a `case.open`
may not); `clarification.request` opens a clarification, `operation.prenotify` an action
(`workflows_action`), `consultation.propose` a consultation (`workflows_consultation`), each with
the opener's id. `clarification.response`, `action.*` and `consultation.*` carry that id as
`refs[0]`. Any envelope whose `case` names a case joins that case's timeline.

Case: open -> contained | resolved, contained -> open | resolved, resolved -> open (reopened),
by `case.update` from either side, which may also set the sender's side's escalation level
(0-5); an `incident.report` may set it too. Clarification: open -> answered, by one
`clarification.response` from the addressee's side with one answer per question, `late` if
created after the deadline (the request's, else 48 h after it).

Two nodes may apply the same envelopes in different orders (both sides write at once). `fold`
puts them in one canonical order first (refs and case before the envelopes that name them, then
by `created`, then by id) and records the envelopes a workflow refuses as `conflicts` instead of
raising, so any node holding the same envelopes derives the same projection. A node keeps its
projections right by re-folding a workflow's envelopes when one arrives out of that order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from detente.core.bodies import ClarificationRequest, ClarificationResponse, IncidentReport
from detente.core.envelope import Envelope
from detente.core.precedence import format_time, parse_time
from detente.core.workflow_base import Step, parse_body, party, refuse, to_json, when
from detente.core.workflow_bodies import CaseOpen, CaseStatus, CaseUpdate
from detente.core.workflows_action import Action, allowed_action_types, apply_action, decision_overdue
from detente.core.workflows_consultation import (
    Consultation,
    allowed_consultation_types,
    apply_consultation,
    minutes_digest,
    overdue_items,
)
from detente.errors import InvalidTransition

__all__ = [
    "APPLY", "CASE_TRANSITIONS", "OPENERS", "Action", "Case", "Clarification", "Conflict", "Consultation",
    "Projection", "State", "Step", "TimelineEntry", "allowed_types", "apply", "apply_action", "apply_case",
    "apply_clarification", "apply_consultation", "fold", "is_overdue", "minutes_digest", "ordered",
    "overdue_items", "targets",
]  # fmt: skip

DEFAULT_CLARIFICATION_DEADLINE = timedelta(hours=48)  # when a request carries no deadline
OPENERS = {
    "incident.report": "case", "case.open": "case", "clarification.request": "clarification",
    "operation.prenotify": "action", "consultation.propose": "consultation",
}  # fmt: skip
CASE_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"contained", "resolved"}),
    "contained": frozenset({"open", "resolved"}),
    "resolved": frozenset({"open"}),
}


@dataclass(frozen=True)
class TimelineEntry:
    """An envelope of a case: what was sent, by whom, when, and what it changed."""

    id: str
    type: str
    sender: str
    recipient: str
    created: str
    note: str = ""


@dataclass(frozen=True)
class Case:
    """An incident thread: status, each side's escalation level and the timeline."""

    id: str
    title: str
    kind: str | None  # the incident kind when an incident.report opened it
    opened_by: str  # office
    created: str
    status: CaseStatus
    escalation: tuple[tuple[str, int | None], ...]  # (party, level or None if not stated), by party
    timeline: tuple[TimelineEntry, ...]

    def level(self, party_id: str) -> int | None:
        """Return `party_id`'s escalation level, None if it has stated none."""
        return dict(self.escalation).get(party_id)

    @property
    def parties(self) -> tuple[str, ...]:
        """Return the parties to the case: the two of the message that opened it."""
        return tuple(p for p, _ in self.escalation)

    def to_json(self) -> dict[str, Any]:
        """Return the case as JSON for the API."""
        out: dict[str, Any] = to_json(self)
        out["escalation"] = dict(self.escalation)
        return out


@dataclass(frozen=True)
class Clarification:
    """A clarification request and whether, and when, it was answered."""

    id: str
    case: str | None
    requester: str
    addressee: str
    created: str
    questions: int
    deadline: str
    status: Literal["open", "answered"] = "open"
    response: str | None = None
    answered_at: str | None = None
    late: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the clarification as JSON for the API."""
        out: dict[str, Any] = to_json(self)
        return out


State = Case | Clarification | Action | Consultation


def _levels(levels: tuple[tuple[str, int | None], ...], **changes: int | None) -> tuple[tuple[str, int | None], ...]:
    merged = dict(levels)
    for key, value in changes.items():
        if value is not None or key not in merged:
            merged[key] = value
    return tuple(sorted(merged.items()))


def apply_case(state: Case | None, envelope: Envelope) -> Case:
    """Return the case after `envelope`. Raises `InvalidTransition` if it may not happen now."""
    opens = envelope.type in ("incident.report", "case.open") and envelope.case in (None, envelope.id)
    if state is None:
        if not opens:
            refuse(f"{envelope.type} names case {envelope.case or 'none'}, which is not known")
        sender, recipient = party(envelope.sender), party(envelope.recipient)
        if envelope.type == "incident.report":
            report = parse_body(envelope, IncidentReport)
            title, kind, level = (
                f"{report.kind.replace('_', ' ')} at {report.location.place}",
                report.kind,
                report.escalation,
            )
        else:
            case_open = parse_body(envelope, CaseOpen)
            title, kind, level = case_open.title, None, case_open.escalation
        return Case(
            id=envelope.id, title=title, kind=kind, opened_by=envelope.sender, created=envelope.created,
            status="open", escalation=_levels((), **{recipient: None, sender: level}),
            timeline=(_entry(envelope, "opened"),),
        )  # fmt: skip
    if any(entry.id == envelope.id for entry in state.timeline):
        return state
    if envelope.case != state.id:
        refuse(f"envelope {envelope.id} does not belong to case {state.id}")
    if envelope.type == "case.open":
        refuse("case.open opens a new case; it cannot name an existing one")
    # In a group of states a case stays between the two that opened it: a third party never had its
    # messages, so one sent it under the case would change the case on one side only.
    outside = sorted({party(envelope.sender), party(envelope.recipient)} - set(state.parties))
    if outside:
        refuse(f"case {state.id} is between {' and '.join(state.parties)}; {', '.join(outside)} is not a party to it")
    sender = party(envelope.sender)
    levels = _levels(state.escalation, **{party(envelope.recipient): None, sender: None})
    status, notes = state.status, []
    if envelope.type == "incident.report":
        level = parse_body(envelope, IncidentReport).escalation
        levels = _levels(levels, **{sender: level})
        notes.append(f"{sender} escalation {level}" if level is not None else "")
    elif envelope.type == "case.update":
        update = parse_body(envelope, CaseUpdate)
        if update.status is not None:
            if update.status not in CASE_TRANSITIONS[state.status]:
                refuse(f"a {state.status} case cannot become {update.status}")
            status = update.status
            notes.append(f"status {status}")
        if update.escalation is not None:
            levels = _levels(levels, **{sender: update.escalation})
            notes.append(f"{sender} escalation {update.escalation}")
    entry = _entry(envelope, "; ".join(n for n in notes if n))
    return replace(state, status=status, escalation=levels, timeline=(*state.timeline, entry))


def _entry(envelope: Envelope, note: str) -> TimelineEntry:
    return TimelineEntry(envelope.id, envelope.type, envelope.sender, envelope.recipient, envelope.created, note)


def apply_clarification(state: Clarification | None, envelope: Envelope) -> Clarification:
    """Return the clarification after `envelope`. Raises `InvalidTransition` if it may not happen now."""
    if envelope.type == "clarification.request":
        if state is not None:
            if state.id == envelope.id:
                return state
            refuse(f"clarification.request {envelope.id} opens its own clarification, not {state.id}")
        request = parse_body(envelope, ClarificationRequest)
        deadline = request.deadline or format_time(when(envelope) + DEFAULT_CLARIFICATION_DEADLINE)
        return Clarification(
            id=envelope.id, case=envelope.case, requester=envelope.sender, addressee=envelope.recipient,
            created=envelope.created, questions=len(request.questions), deadline=deadline,
        )  # fmt: skip
    if envelope.type != "clarification.response":
        refuse(f"{envelope.type} is not a clarification message")
    if state is None:
        ref = envelope.refs[0] if envelope.refs else "none"
        refuse(f"clarification.response refers to request {ref}, which is not known")
    if envelope.refs[:1] != [state.id]:
        refuse(f"clarification.response must carry the request's id {state.id} as its only ref")
    if state.response == envelope.id:
        return state
    if party(envelope.sender) != party(state.addressee):
        refuse(f"clarification.response must come from {party(state.addressee)}, the side that was asked")
    if state.status == "answered":
        refuse(f"clarification {state.id} is already answered")
    answers = len(parse_body(envelope, ClarificationResponse).answers)
    if answers != state.questions:
        refuse(f"clarification.response gives {answers} answer(s) to {state.questions} question(s)")
    late = when(envelope) > parse_time(state.deadline)
    return replace(state, status="answered", response=envelope.id, answered_at=envelope.created, late=late)


APPLY: dict[str, Callable[[Any, Envelope], Any]] = {
    "case": apply_case, "clarification": apply_clarification,
    "action": apply_action, "consultation": apply_consultation,
}  # fmt: skip
_KINDS: dict[type, str] = {Case: "case", Clarification: "clarification", Action: "action", Consultation: "consultation"}


def targets(envelope: Envelope) -> list[tuple[str, str]]:
    """Return the (workflow, id) pairs `envelope` touches, the one it opens or moves first."""
    out: list[tuple[str, str]] = []
    opens = OPENERS.get(envelope.type)
    first_ref = envelope.refs[0] if envelope.refs else ""
    if opens == "case":
        return [("case", envelope.case or envelope.id)]
    if opens is not None:
        out.append((opens, envelope.id))
    elif envelope.type.startswith(("action.", "consultation.")):
        out.append((envelope.type.split(".", 1)[0], first_ref))
    elif envelope.type == "clarification.response":
        out.append(("clarification", first_ref))
    if envelope.case is not None or envelope.type == "case.update":
        out.append(("case", envelope.case or ""))
    return out


def apply(state: State | None, envelope: Envelope) -> State:
    """Return `state` after `envelope` (None: the state the envelope opens).

    Raises `InvalidTransition` if the envelope belongs to no such workflow or may not happen now.
    """
    if state is None:
        touched = targets(envelope)
        if not touched:
            refuse(f"{envelope.type} belongs to no workflow")
        kind = touched[0][0]
    else:
        kind = _KINDS[type(state)]
        if (kind, state.id) not in targets(envelope):
            refuse(f"envelope {envelope.id} ({envelope.type}) does not belong to {kind} {state.id}")
    result: State = APPLY[kind](state, envelope)
    return result


def ordered(envelopes: Iterable[Envelope]) -> list[Envelope]:
    """Return the envelopes (once each) in canonical order: refs first, then `created`, then id."""
    by_id = {e.id: e for e in envelopes}
    deps = {e.id: {r for r in (*e.refs, e.case) if r in by_id and r != e.id} for e in by_id.values()}
    waiting = {i: len(d) for i, d in deps.items()}
    children: dict[str, list[str]] = {}
    for child, parents in deps.items():
        for parent in parents:
            children.setdefault(parent, []).append(child)
    key = {i: (when(e), i) for i, e in by_id.items()}
    ready = [key[i] for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[Envelope] = []
    while ready:
        _, current = heapq.heappop(ready)
        out.append(by_id[current])
        for child in children.get(current, []):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, key[child])
    # A cycle of refs cannot come from honest senders; keep its envelopes, in time order.
    done = {e.id for e in out}
    out.extend(by_id[i] for _, i in sorted(key[i] for i in by_id if i not in done))
    return out


@dataclass(frozen=True)
class Conflict:
    """An envelope a workflow refused while folding, and why."""

    envelope: str
    type: str
    workflow: str
    target: str
    reason: str


@dataclass(frozen=True)
class Projection:
    """Every workflow state derived from a set of envelopes."""

    cases: dict[str, Case] = field(default_factory=dict)
    clarifications: dict[str, Clarification] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    consultations: dict[str, Consultation] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()

    def states(self) -> dict[str, State]:
        """Return every state by id (ids are envelope ids, so they never clash)."""
        return {**self.cases, **self.clarifications, **self.actions, **self.consultations}

    def to_json(self) -> dict[str, Any]:
        """Return the projection as JSON."""
        return {
            "cases": {k: v.to_json() for k, v in self.cases.items()},
            "clarifications": {k: v.to_json() for k, v in self.clarifications.items()},
            "actions": {k: v.to_json() for k, v in self.actions.items()},
            "consultations": {k: v.to_json() for k, v in self.consultations.items()},
            "conflicts": to_json(self.conflicts),
        }


def fold(envelopes: Iterable[Envelope]) -> Projection:
    """Derive every workflow state from `envelopes`, in canonical order (`ordered`).

    Never raises for a refused envelope: it is recorded in `conflicts` and changes nothing.
    """
    states: dict[str, dict[str, Any]] = {kind: {} for kind in APPLY}
    conflicts: list[Conflict] = []
    for envelope in ordered(envelopes):
        for kind, target in targets(envelope):
            try:
                states[kind][target] = APPLY[kind](states[kind].get(target), envelope)
            except InvalidTransition as exc:
                conflicts.append(Conflict(envelope.id, envelope.type, kind, target, exc.detail))
    return Projection(
        states["case"], states["clarification"], states["action"], states["consultation"], tuple(conflicts)
    )


def allowed_types(state: State, office: str) -> list[str]:
    """Return the workflow message types `office` may send about `state` now.

    For a case, the other side (not the opener's) may also open a clarification about it.
    """
    if isinstance(state, Action):
        return allowed_action_types(state, office)
    if isinstance(state, Consultation):
        return allowed_consultation_types(state, office)
    if isinstance(state, Clarification):
        answerable = state.status == "open" and party(office) == party(state.addressee)
        return ["clarification.response"] if answerable else []
    # The side a case was reported to may also ask about it: a `clarification.request` opens a
    # workflow of its own, in the case.
    other_side = party(office) != party(state.opened_by) and party(office) in dict(state.escalation)
    return ["case.update", "clarification.request"] if other_side else ["case.update"]


def is_overdue(state: State, now: datetime) -> bool:
    """Return whether `state` waits on an answer that was due before `now`.

    A clarification unanswered past its deadline; an action without a decision past `respond_by`;
    a consultation with an open action item past its due time. A case is never overdue.
    """
    if isinstance(state, Clarification):
        return state.status == "open" and parse_time(state.deadline) < now
    if isinstance(state, Action):
        return decision_overdue(state, now)
    if isinstance(state, Consultation):
        return bool(overdue_items(state, now))
    return False
