"""Workflow projections kept in step with the envelopes, in the transaction that records them.

Every envelope a node records, sent or received, goes through `plan` then `save` inside the
writer transaction that stores it. For each workflow object the envelope touches
(`core.workflows.targets`):

- if the envelope comes after every envelope already folded into that object in the canonical
  order of `core.workflows.ordered` (its `(created, id)` is the largest), the state machine is
  applied to the stored state (`core.workflow_json` turns it back into a state);
- otherwise (the two sides wrote at once and the envelopes crossed) the object is re-folded from
  all of its envelopes with `core.workflows.fold`, which puts them in canonical order first.

Either way the result is what `fold` derives from the same envelopes, so both nodes hold the same
states once they hold the same envelopes, and `detente rebuild` (`derive` over the whole log)
finds the same rows.

A refusal by a state machine is handled by the caller's choice: the sending node (`strict`)
raises the `InvalidTransition` before anything is written; the receiving node, which must store
every validly signed envelope (refusing it would block the channel's sequence), records a
conflict and keeps the previous state, as `fold` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from detente.core import envelope as envelope_mod
from detente.core.agreement import Agreement
from detente.core.envelope import Envelope
from detente.core.precedence import parse_time
from detente.core.workflow_base import is_liaison, party
from detente.core.workflow_json import state_from_json
from detente.core.workflows import (
    APPLY,
    Action,
    Case,
    Clarification,
    Conflict,
    Consultation,
    State,
    fold,
    targets,
)
from detente.errors import InvalidTransition
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.store import workflow as store
from detente.store.workflow import Row

Key = tuple[str, str]  # (created, envelope id) of the last envelope folded into an object


@dataclass
class Change:
    """What one envelope does to one workflow object."""

    kind: str
    target: str
    state: State | None  # the state after the envelope (None: the object does not exist)
    previous: str | None  # its status before
    accepted: bool  # whether the object took the envelope (False: a conflict)
    refolded: bool  # True: `conflicts` and `offices` replace the stored ones
    conflicts: list[Conflict] = field(default_factory=list)
    offices: set[str] = field(default_factory=set)
    key: Key = ("", "")


@dataclass
class Plan:
    """The changes an envelope makes, computed before anything is written."""

    envelope: Envelope
    changes: list[Change]


@dataclass
class Derived:
    """Every projection row derived from a set of envelopes (`derive`)."""

    rows: dict[tuple[str, str], Row]
    offices: set[tuple[str, str, str]]  # (workflow, id, office)
    conflicts: list[Conflict]


def _later(key: Key, than: Key) -> bool:
    return (parse_time(key[0]), key[1]) > (parse_time(than[0]), than[1])


def _key(envelope: Envelope) -> Key:
    return (envelope.created, envelope.id)


def liaison_offices(agreement: Agreement, state: State) -> set[str]:
    """Return the liaison offices that may read an action: those of both its parties (they verify)."""
    if not isinstance(state, Action):
        return set()
    parties = {party(state.proposer), party(state.counterpart)}
    return {o for o, office in agreement.offices.items() if office.party in parties and is_liaison(o)}


def envelope_readers(kind: str, envelope: Envelope) -> set[str]:
    """Return the offices an envelope a workflow object accepted lets read that object.

    Its sender and recipient; for a consultation, also the offices its minutes give action items
    to, whichever offices met: an office closes its own items (`consultation.item_done`) and must
    see them. The owners of minutes later replaced keep reading it, as an office keeps reading a
    workflow that once held an envelope addressed to it.
    """
    out = {envelope.sender, envelope.recipient}
    items = envelope.body.get("items") if (kind, envelope.type) == ("consultation", "consultation.minutes") else None
    if isinstance(items, list):  # the state machine accepted it: a valid minutes body
        out |= {str(i["owner"]) for i in items if isinstance(i, dict) and isinstance(i.get("owner"), str)}
    return out


def row_for(kind: str, state: State, key: Key) -> Row:
    """Return the table row of a state whose last folded envelope has `key`."""
    extra: tuple[tuple[str, Any], ...] = ()
    if isinstance(state, Case):
        opened_by, counterpart, case_id = state.opened_by, state.timeline[0].recipient, None
    elif isinstance(state, Clarification):
        opened_by, counterpart, case_id = state.requester, state.addressee, state.case
        extra = (("deadline", state.deadline),)
    elif isinstance(state, Action):
        opened_by, counterpart, case_id = state.proposer, state.counterpart, state.case
        extra = (("unilateral", state.unilateral),)
    else:
        opened_by, counterpart, case_id = state.proposer, state.counterpart, state.case
        extra = (("start", state.start),)
    return Row(
        kind, state.id, case_id, state.status, opened_by, counterpart, state.created, key[0], key[1],
        state.to_json(), extra,
    )  # fmt: skip


def derive(envelopes: Iterable[Envelope], agreement: Agreement) -> Derived:
    """Return the rows `fold` derives from `envelopes`: states, who may read them, conflicts."""
    envs = list(envelopes)
    projection = fold(envs)
    refused = {(c.workflow, c.target, c.envelope) for c in projection.conflicts}
    keys: dict[tuple[str, str], Key] = {}
    offices: set[tuple[str, str, str]] = set()
    for envelope in envs:
        for kind, target in targets(envelope):
            old = keys.get((kind, target))
            if old is None or _later(_key(envelope), old):
                keys[(kind, target)] = _key(envelope)
            if (kind, target, envelope.id) not in refused:
                offices |= {(kind, target, o) for o in envelope_readers(kind, envelope)}
    rows: dict[tuple[str, str], Row] = {}
    for kind, states in (
        ("case", projection.cases), ("clarification", projection.clarifications),
        ("action", projection.actions), ("consultation", projection.consultations),
    ):  # fmt: skip
        for target, state in states.items():
            rows[(kind, target)] = row_for(kind, state, keys[(kind, target)])
            offices |= {(kind, target, o) for o in liaison_offices(agreement, state)}
    known = {(k, t) for k, t in rows}
    return Derived(rows, {o for o in offices if (o[0], o[1]) in known}, list(projection.conflicts))


def _state(kind: str, row: Row | None) -> State | None:
    return None if row is None else state_from_json(kind, row.state)


def _apply(agreement: Agreement, kind: str, target: str, row: Row | None, envelope: Envelope, strict: bool) -> Change:
    state = _state(kind, row)
    previous = row.status if row else None
    try:
        new: State = APPLY[kind](state, envelope)
    except InvalidTransition as exc:
        if strict:
            raise
        conflict = Conflict(envelope.id, envelope.type, kind, target, exc.detail)
        return Change(kind, target, state, previous, False, False, [conflict], set(), _key(envelope))
    offices = envelope_readers(kind, envelope)
    if state is None:
        offices |= liaison_offices(agreement, new)
    return Change(kind, target, new, previous, True, False, [], offices, _key(envelope))


def _refold(
    conn: Connection, agreement: Agreement, kind: str, target: str, row: Row | None, envelope: Envelope, strict: bool
) -> Change:
    envs: dict[str, Envelope] = {envelope.id: envelope}
    for raw in store.workflow_raws(conn, target):
        other = envelope_mod.parse(raw)
        if (kind, target) in targets(other):
            envs.setdefault(other.id, other)
    derived = derive(envs.values(), agreement)
    conflicts = [c for c in derived.conflicts if (c.workflow, c.target) == (kind, target)]
    own = next((c for c in conflicts if c.envelope == envelope.id), None)
    if strict and own is not None:
        raise InvalidTransition(own.reason)
    found = derived.rows.get((kind, target))
    state = None if found is None else state_from_json(kind, found.state)
    offices = {o for k, t, o in derived.offices if (k, t) == (kind, target)}
    key = (found.updated_at, found.last_id) if found else _key(envelope)
    previous = row.status if row else None
    return Change(kind, target, state, previous, own is None, True, conflicts, offices, key)


def plan(conn: Connection, agreement: Agreement, envelope: Envelope, *, strict: bool) -> Plan:
    """Compute what `envelope` does to every workflow object it touches, writing nothing.

    Raises `InvalidTransition` when `strict` and a workflow refuses the envelope.
    """
    changes: list[Change] = []
    for kind, target in targets(envelope):
        row = store.get(conn, kind, target)
        stale = row is None and bool(store.conflicts_of(conn, kind, target))
        if not stale and (row is None or _later(_key(envelope), (row.updated_at, row.last_id))):
            changes.append(_apply(agreement, kind, target, row, envelope, strict))
        else:
            changes.append(_refold(conn, agreement, kind, target, row, envelope, strict))
    return Plan(envelope, changes)


def save(conn: Connection, plan: Plan) -> list[Event]:
    """Write a plan's rows and conflicts; return the events to publish after commit."""
    envelope = plan.envelope
    events: list[Event] = []
    for change in plan.changes:
        kind, target = change.kind, change.target
        if change.refolded:
            store.clear_conflicts(conn, kind, target)
        for conflict in change.conflicts:
            store.add_conflict(conn, conflict.envelope, conflict.type, kind, target, conflict.reason)
        if change.state is not None:
            store.put(conn, row_for(kind, change.state, change.key))
            if change.refolded:
                store.set_offices(conn, kind, target, change.offices)
            else:
                store.add_offices(conn, kind, target, change.offices)
        readers = tuple(sorted(store.offices_of(conn, kind, target) or {envelope.sender, envelope.recipient}))
        if change.accepted and change.state is not None:
            events.append(Event(kind, target, readers, event_data(change.state, change.previous, envelope)))
        elif not change.accepted:
            reason = next(c.reason for c in change.conflicts if c.envelope == envelope.id)
            data = {"workflow": kind, "target": target, "type": envelope.type, "reason": reason}
            events.append(Event("conflict", envelope.id, readers, data))
    return events


def event_data(state: State, previous: str | None, envelope: Envelope) -> dict[str, Any]:
    """Return what a workflow event says: the new status, what changed it, and what to flag."""
    data: dict[str, Any] = {
        "status": state.status, "previous": previous, "changed": state.status != previous,
        "type": envelope.type, "envelope": envelope.id, "from": envelope.sender, "to": envelope.recipient,
    }  # fmt: skip
    if isinstance(state, Case):
        data.update(title=state.title, escalation=dict(state.escalation))
    elif isinstance(state, Action):
        data.update(
            target_group=state.target_group, unilateral=state.unilateral,
            unilateral_reason=state.unilateral_reason, outside_window=state.outside_window,
        )  # fmt: skip
    elif isinstance(state, Consultation):
        data.update(title=state.title, cosigned_by=sorted(dict(state.cosigned_by)))
    else:
        data.update(late=state.late)
    return data


def record(conn: Connection, ctx: NodeContext, envelope: Envelope, *, strict: bool) -> list[Event]:
    """Plan and save in one call: for envelopes already written (received ones) or written after."""
    return save(conn, plan(conn, ctx.agreement, envelope, strict=strict))
