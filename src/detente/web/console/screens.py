"""What each screen holds, assembled from the tables in one read: the Now screen, a thread, a case.

Builders take an open connection and the viewer and return plain dictionaries for the templates;
they run off the event loop (`Node.aread`). The workflow states come whole from `data.projection`
(the node's tables, as the API reads them); what this side may send about each is worked out from
that state for every office of the viewer's, as `detente action show` lists what it `may send`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import Connection

from detente.core import codebook as codebook_mod
from detente.core.agreement import Channel
from detente.core.workflow_base import party as party_of
from detente.core.workflows import Case, Projection, State, allowed_types, apply_case
from detente.core.workflows import ordered as in_order
from detente.core.workflows_consultation import overdue_items
from detente.errors import Error
from detente.node.auth import may_read_row
from detente.node.linkstate import link_views
from detente.web.console import data, texts
from detente.web.console.i18n import Stamp
from detente.web.console.present import Card
from detente.web.console.site import Viewer

OPENER_OF = {"action": "operation.prenotify", "clarification": "clarification.request",
             "consultation": "consultation.propose"}  # fmt: skip
FULL_CARDS = 50  # waiting messages shown in full on Now; beyond, compact rows (FLASH and IMMEDIATE stay in full)
NOW_LIMIT = 100  # messages other than FLASH read for each list of Now; `?all=1` reads up to ALL_LIMIT
ALL_LIMIT = 5000
ACTION_WAITING = {
    "counterpart": frozenset({"proposed", "info_requested", "reported"}),
    "proposer": frozenset({"info_requested"}),
}
VERDICTS = frozenset({"action.verify", "action.dispute"})
# What the Now screen reads of each workflow kind: what may still wait on this side, or come, or be overdue.
NOW_STATUSES = {
    "case": data.OPEN_CASE,
    "clarification": ("open",),
    "action": tuple(sorted(ACTION_WAITING["counterpart"] | ACTION_WAITING["proposer"])),
    "consultation": ("proposed", "agreed", "minutes_proposed", "minutes_cosigned"),
}


@dataclass(frozen=True)
class Waiting:
    """Something the other side waits for this side to do: decide, answer, verify, agree."""

    kind: str  # action | clarification | consultation
    id: str
    title: str
    status: str
    due: Stamp | None
    channel: str | None
    types: tuple[str, ...]  # the messages this side may send about it now
    case: str | None


def _may_act(viewer: Viewer, office: str | None) -> bool:
    """Return whether the viewer may send for `office`: a sending role, bound to it (as the compose form asks)."""
    return office is not None and data.may_send(viewer.operator) and office in viewer.operator.offices


def next_steps(
    viewer: Viewer, state: State, ends: tuple[str, ...], opened_on: str | None, wanted: frozenset[str] | None = None
) -> tuple[str | None, tuple[str, ...]]:
    """Return where the viewer may answer `state` now (a channel of theirs) and the types they may send there.

    Every office of the viewer's on this side is tried, the workflow's own ends (`ends`) first, as
    `detente action show` lists what each office `may send`; the first that may send one of them
    (of `wanted`, if given) on one of its channels, the channel the workflow `opened_on` first,
    gives the answer. `(None, ())` for a viewer who may send none of them (a translator, an auditor,
    an admin, an office the workflow does not let act).
    """
    p = viewer.presenter
    own = sorted((o for o in viewer.operator.offices if party_of(o) == p.party), key=lambda o: o not in ends)
    channels = sorted(data.channels_for(p.agreement, p.party, viewer.operator), key=lambda c: c.name != opened_on)
    for office in own:
        if not _may_act(viewer, office):
            continue
        types = [t for t in allowed_types(state, office) if wanted is None or t in wanted]
        for channel in (c for c in channels if office in c.offices):
            carried = tuple(t for t in types if channel.types is None or t in channel.types)
            if carried:
                return channel.name, carried
    return None, ()


def waiting_for_us(conn: Connection, viewer: Viewer, proj: Projection) -> list[Waiting]:
    """Return the actions, clarifications and consultations that wait on this side.

    Each lists the messages the viewer may send about it now, and the channel to send them on
    (`next_steps`): none for a viewer who may send none of them.
    """
    p, party = viewer.presenter, viewer.presenter.party
    rows = data.rows_by_id(conn, list(proj.actions) + list(proj.clarifications) + list(proj.consultations))

    def opened_on(state_id: str) -> str | None:
        row = rows.get(state_id)
        return str(row["channel"]) if row else None

    out: list[Waiting] = []
    for action in proj.actions.values():
        side = "counterpart" if party_of(action.counterpart) == party else "proposer"
        if action.status not in ACTION_WAITING[side]:
            continue
        # A report waits for the verdict of this side's liaison officer, nothing else.
        wanted = VERDICTS if side == "counterpart" and action.status == "reported" else None
        ends = (action.counterpart, action.proposer)
        channel, types = next_steps(viewer, action, ends, opened_on(action.id), wanted)
        out.append(Waiting("action", action.id, action.target_group, action.status, p.when(action.respond_by),
                           channel, types, action.case))  # fmt: skip
    for clar in proj.clarifications.values():
        if clar.status == "open" and party_of(clar.addressee) == party:
            channel, types = next_steps(viewer, clar, (clar.addressee,), opened_on(clar.id))
            out.append(Waiting("clarification", clar.id, "", clar.status, p.when(clar.deadline), channel, types,
                               clar.case))  # fmt: skip
    for cons in proj.consultations.values():
        to_cosign = cons.status == "minutes_proposed" and party in cons.parties and party not in dict(cons.cosigned_by)
        if (cons.status == "proposed" and party_of(cons.counterpart) == party) or to_cosign:
            channel, types = next_steps(viewer, cons, (cons.counterpart, cons.proposer), opened_on(cons.id))
            out.append(Waiting("consultation", cons.id, cons.title, cons.status, p.when(cons.start), channel, types,
                               cons.case))  # fmt: skip
    return out


def upcoming_consultations(viewer: Viewer, proj: Projection, now: datetime) -> list[dict[str, Any]]:
    """Return proposed or agreed consultations to come, and the agreement's next scheduled ones."""
    p = viewer.presenter
    out: list[dict[str, Any]] = []
    for cons in sorted(proj.consultations.values(), key=lambda c: c.start):
        if cons.status in ("proposed", "agreed") and cons.start >= now.strftime("%Y-%m-%dT%H:%M:%S"):
            out.append({"title": cons.title, "start": p.when(cons.start), "venue": cons.venue,
                        "status": cons.status, "id": cons.id, "case": cons.case})  # fmt: skip
    channels = {c.name for c in data.channels_for(p.agreement, p.party, viewer.operator)}
    try:
        schedules = codebook_mod.consultations(p.agreement.raw)
    except Error:
        schedules = {}
    for schedule in schedules.values():
        if schedule.channel in channels:
            start = schedule.next_after(now).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            out.append({"title": schedule.title, "start": p.when(start), "venue": schedule.venue,
                        "status": "scheduled", "id": None, "case": None})  # fmt: skip
    return out


def your_action_items(viewer: Viewer, proj: Projection, now: datetime) -> list[dict[str, Any]]:
    """Return the open action items of co-signed minutes that the viewer's offices own, the earliest due first.

    An office given an item reads its consultation (`node.workflow.envelope_readers`), whichever
    offices met; each item says whether it is overdue.
    """
    p, mine = viewer.presenter, set(viewer.operator.offices)
    out = []
    for cons in proj.consultations.values():
        late = {i.id for i in overdue_items(cons, now)}
        for item in cons.items:
            if cons.status == "minutes_cosigned" and item.status == "open" and item.owner in mine:
                out.append({"title": item.title, "owner": item.owner, "due": p.when(item.due), "id": item.id,
                            "consultation": cons.title, "consultation_id": cons.id, "overdue": item.id in late,
                            "sort": item.due})  # fmt: skip
    return sorted(out, key=lambda i: i["sort"])


def overdue_action_items(viewer: Viewer, proj: Projection, now: datetime) -> list[dict[str, Any]]:
    """Return the open action items of co-signed minutes that are past their due time, but the viewer's own.

    The viewer's own are in `your_action_items`, marked overdue there: an item is listed once.
    """
    p, mine = viewer.presenter, set(viewer.operator.offices)
    out = []
    for cons in proj.consultations.values():
        for item in overdue_items(cons, now):
            if item.owner not in mine:
                out.append({"title": item.title, "owner": item.owner, "due": p.when(item.due),
                            "consultation": cons.title, "consultation_id": cons.id})  # fmt: skip
    return out


def now_screen(conn: Connection, viewer: Viewer, peers: list[str], show_all: bool = False) -> dict[str, Any]:
    """Return everything the Now screen shows.

    Waiting messages come as full cards (every FLASH and IMMEDIATE one, and the first `FULL_CARDS`)
    and, beyond, as compact rows; each list reads every FLASH message and `NOW_LIMIT` others
    (`ALL_LIMIT` with `show_all`), and says how many it leaves out.
    """
    p, operator, offices = viewer.presenter, viewer.operator, viewer.offices
    escalated = data.escalated_to(p.agreement, operator)
    limit = ALL_LIMIT if show_all else NOW_LIMIT
    pending_in = data.pending_in(conn, offices, escalated, limit)
    incoming: list[Card] = []
    compact: list[Card] = []
    for i, row in enumerate(pending_in.rows):
        full = row["precedence"] in ("FLASH", "IMMEDIATE") or i < FULL_CARDS
        (incoming if full else compact).append(p.card(row, operator, escalated, brief=not full))
    pending_out = data.pending_out(conn, offices, limit)
    outgoing = [p.card(r, operator, brief=True) for r in pending_out.rows]
    proj = data.projection(conn, offices, statuses=NOW_STATUSES)
    now = datetime.now(UTC)
    cases = sorted((c for c in proj.cases.values() if c.status != "resolved"), key=lambda c: c.created, reverse=True)
    return {
        "links": link_views(conn, peers),
        "incoming": incoming,
        "incoming_compact": compact,
        "incoming_total": pending_in.total,
        "incoming_more": pending_in.more,
        "outgoing": outgoing,
        "outgoing_total": pending_out.total,
        "outgoing_more": pending_out.more,
        "show_all": show_all,
        "cases": cases,
        "waiting": waiting_for_us(conn, viewer, proj),
        "consultations": upcoming_consultations(viewer, proj, now),
        "overdue_items": overdue_action_items(viewer, proj, now),
        "your_items": your_action_items(viewer, proj, now),
        "flash": [c for c in incoming if c.precedence == "FLASH" and c.answerable],
        "opener_of": OPENER_OF,
    }


def followups(viewer: Viewer, proj: Projection, ids: set[str], channel: Channel) -> dict[str, list[str]]:
    """Return, per message id on `channel` that opened a workflow, the types the viewer may send about it there now.

    A reply goes from this side's end of the channel: these are the types that office may send now
    and the channel carries; none for a viewer who may not send for it (a translator, an auditor, an admin).
    """
    office = data.own_end(channel, viewer.presenter.party)
    if not _may_act(viewer, office):
        return {}
    out: dict[str, list[str]] = {}
    states = proj.states()
    for state_id in ids & set(states):
        types = [t for t in allowed_types(states[state_id], office) if channel.types is None or t in channel.types]
        if types:
            out[state_id] = types
    return out


def escalation_history(conn: Connection, viewer: Viewer, case: Case) -> list[dict[str, Any]]:
    """Return each moment the case's escalation levels changed, with the levels after it.

    Every envelope of the case counts, as in its state, whichever offices sent it.
    """
    state: Case | None = None
    out: list[dict[str, Any]] = []
    for envelope in in_order(data.case_envelopes(conn, case.id)):
        try:
            after = apply_case(state, envelope)
        except Error:
            continue
        if state is None or after.escalation != state.escalation:
            out.append({"at": viewer.presenter.when_everywhere(envelope.created), "levels": dict(after.escalation),
                        "by": envelope.sender, "type": envelope.type})  # fmt: skip
        state = after
    return out


def _timeline_note(viewer: Viewer, case: Case | None, entry_id: str, row: Any) -> Markup:
    """Return what a message changed in its case, in the viewer's language ("" outside a case)."""
    entry = next((e for e in case.timeline if e.id == entry_id), None) if case else None
    if case is None or entry is None:
        return Markup("")
    try:
        body = json.loads(row["raw"]).get("body", {})
    except ValueError:  # a stored envelope is JSON; if not, the workflow's own words will do
        body = {}
    p = viewer.presenter
    return texts.timeline_note(entry.note, entry.type, party_of(entry.sender), entry.id == case.id,
                               body if isinstance(body, dict) else {}, p.locale, p.labels)  # fmt: skip


def case_screen(conn: Connection, viewer: Viewer, case_id: str) -> dict[str, Any] | None:
    """Return the case page: the case, its timeline with badges, escalation over time, actions.

    The case is the whole case (`data.projection`); of a message on its timeline that the viewer may
    not read (between other offices), only who sent it, when, and what it changed is shown: no card.
    """
    proj = data.projection(conn, viewer.offices, case=case_id)
    case = proj.cases.get(case_id)
    if case is not None:
        viewer = viewer.among(case.parties)  # in a group of states, a case is between two of them
    p, agreement = viewer.presenter, viewer.presenter.agreement
    rows = data.rows_by_id(conn, [e.id for e in case.timeline] if case else [])
    if case is None:
        # No case workflow (yet): show the messages that name this id as their case.
        loose = data.thread_by_case(conn, case_id, viewer.offices)
        if not loose:
            return None
        rows = {r["id"]: r for r in loose}
    timeline = []
    for entry_id, row in ((e.id, rows.get(e.id)) for e in case.timeline) if case else rows.items():
        if row is None:
            continue
        card = p.card(row, viewer.operator) if may_read_row(viewer.operator, row, agreement) else None
        timeline.append({"card": card, "at": p.when_everywhere(row["created"]), "type": row["type"],
                         "sender": row["from_office"], "recipient": row["to_office"],
                         "note": _timeline_note(viewer, case, entry_id, row)})  # fmt: skip
    actions = [a for a in proj.actions.values() if a.case == case_id]
    return {
        "case": case,
        "case_id": case_id,
        "timeline": timeline,
        "escalation": escalation_history(conn, viewer, case) if case else [],
        "actions": actions,
        "clarifications": [c for c in proj.clarifications.values() if c.case == case_id],
        "consultations": [c for c in proj.consultations.values() if c.case == case_id],
        "conflicts": [c for c in proj.conflicts if c.target == case_id],
        "parties": p.parties,
        "p": p,
    }
