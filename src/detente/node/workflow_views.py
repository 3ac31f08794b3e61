"""How the workflow projections are shown to operators: lists, details and timelines.

Every time a timeline shows is given in UTC, in each party's local time (from the agreement's
`utc_offset`: PKT +05:00, IRST +03:30) and as a date-time group (`161305ZJAN24`). An operator
sees a workflow object if one of their offices sent or received one of its envelopes (liaison
offices also see the actions they may verify, and an office given an action item by a
consultation's minutes sees that consultation: `node.workflow` records these readers in
`workflow_offices`); supervisors, auditors and admins see all. Every function takes an open
connection and raises `NotFound` for what the operator may not see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select

from detente.core.agreement import Agreement
from detente.core.precedence import dtg, now, parse_time
from detente.core.workflow_json import state_from_json
from detente.core.workflows import Action, Clarification, Consultation, allowed_types, is_overdue
from detente.core.workflows_action import decision_overdue
from detente.core.workflows_consultation import overdue_items
from detente.errors import NotFound
from detente.store import evidence as evidence_db
from detente.store import workflow as store
from detente.store.tables import envelopes
from detente.store.workflow import Row

PLURALS = {"case": "cases", "clarification": "clarifications", "action": "actions", "consultation": "consultations"}


def times(agreement: Agreement, moment: str) -> dict[str, Any]:
    """Return a UTC time as `{"utc", "dtg", "local": {party: ISO time with offset}}`."""
    at = parse_time(moment)
    local = {
        p.id: at.astimezone(timezone(p.utc_offset)).isoformat(timespec="seconds")
        for p in sorted(agreement.parties.values(), key=lambda p: p.id)
    }
    return {"utc": moment, "dtg": dtg(at), "local": local}


def _item(row: Row, at: datetime) -> dict[str, Any]:
    item = dict(row.state)
    item["updated_at"] = row.updated_at
    state = state_from_json(row.kind, row.state)
    item["overdue"] = is_overdue(state, at)
    return item


def listing(
    conn: Connection, kind: str, offices: Sequence[str] | None, *, status: str | None = None,
    case_id: str | None = None, unilateral: bool | None = None, limit: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Return `{<kind plural>: [state, ...]}`, newest first, each with `updated_at` and `overdue`."""
    rows = store.listing(conn, kind, offices=offices, status=status, case_id=case_id, unilateral=unilateral,
                         limit=limit)  # fmt: skip
    at = now()
    return {PLURALS[kind]: [_item(r, at) for r in rows]}


def readable(conn: Connection, kind: str, target: str, offices: Sequence[str] | None) -> Row | None:
    """Return the stored workflow object if one of `offices` may read it (`None`: every office), else None."""
    row = store.get(conn, kind, target)
    if row is None or (offices is not None and not store.offices_of(conn, kind, target) & set(offices)):
        return None
    return row


def _visible(conn: Connection, kind: str, target: str, offices: Sequence[str] | None) -> Row:
    row = readable(conn, kind, target, offices)
    if row is None:
        raise NotFound(f"no {kind} {target} for your offices")
    return row


def _timeline(conn: Connection, agreement: Agreement, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [s["id"] for s in steps]
    query = select(
        envelopes.c.id, envelopes.c.precedence, envelopes.c.state, envelopes.c.direction, envelopes.c.from_office,
        envelopes.c.to_office,
    ).where(envelopes.c.id.in_(ids))  # fmt: skip
    found = {r.id: r for r in conn.execute(query)}
    out = []
    for step in steps:
        row = found.get(step["id"])
        entry = {**step, "at": times(agreement, step["created"])}
        if row is not None:
            entry.update(precedence=row.precedence, state=row.state, direction=row.direction,
                         sender=row.from_office, recipient=row.to_office)  # fmt: skip
        out.append(entry)
    return out


def _conflicts(conn: Connection, kind: str, target: str) -> list[dict[str, Any]]:
    return [
        {"envelope": c["envelope_id"], "type": c["type"], "reason": c["reason"]}
        for c in store.conflicts_of(conn, kind, target)
    ]


def _allowed(state: Any, own: Sequence[str]) -> dict[str, list[str]]:
    return {office: allowed_types(state, office) for office in own}


def detail(
    conn: Connection, agreement: Agreement, kind: str, target: str, offices: Sequence[str] | None,
    own: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """Return one workflow object: its state, timeline, conflicts and what `own` offices may send now.

    Raises `NotFound` if it does not exist or the operator may not see it.
    """
    row = _visible(conn, kind, target, offices)
    state = state_from_json(kind, row.state)
    at = now()
    out: dict[str, Any] = {kind: row.state, "updated_at": row.updated_at, "created_at": times(agreement, row.created)}
    out["conflicts"] = _conflicts(conn, kind, target)
    out["overdue"] = is_overdue(state, at)
    if kind == "case":
        out["timeline"] = _timeline(conn, agreement, list(row.state["timeline"]))
        for other in ("action", "clarification", "consultation"):
            rows = store.listing(conn, other, offices=offices, case_id=target, limit=500)
            out[PLURALS[other]] = [_item(r, at) for r in rows]
    else:
        steps = list(row.state.get("history") or _clarification_steps(row.state))
        out["timeline"] = _timeline(conn, agreement, steps)
        out["allowed"] = _allowed(state, own)
    if isinstance(state, Action):
        out["decision_overdue"] = decision_overdue(state, at)
        out["evidence"] = evidence_files(conn, [e.sha256 for e in state.evidence])
        out.update(action_papers(conn, state))
        out["window"] = {"start": times(agreement, state.window_start), "end": times(agreement, state.window_end)}
    elif isinstance(state, Consultation):
        out["overdue_items"] = [i.__dict__ for i in overdue_items(state, at)]
        out["start"] = times(agreement, state.start)
    elif isinstance(state, Clarification):
        out["deadline"] = times(agreement, state.deadline)
    return out


def _clarification_steps(state: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [{"id": state["id"], "type": "clarification.request", "sender": state["requester"],
              "created": state["created"], "status": "open"}]  # fmt: skip
    if state.get("response"):
        steps.append({"id": state["response"], "type": "clarification.response", "sender": state["addressee"],
                      "created": state["answered_at"], "status": "answered"})  # fmt: skip
    return steps


def evidence_files(conn: Connection, hashes: list[str]) -> list[dict[str, Any]]:
    """Return each file (once) as this node holds it: `stored`, `missing` (not fetched yet) or `unknown`."""
    out = []
    for sha256 in dict.fromkeys(hashes):
        row = evidence_db.get(conn, sha256)
        out.append({
            "sha256": sha256, "state": row["state"] if row else "unknown",
            "media_type": row["media_type"] if row else None, "size": row["size"] if row else None,
            "url": f"/api/v1/evidence/{sha256}",
        })  # fmt: skip
    return out


def action_papers(conn: Connection, state: Action) -> dict[str, dict[str, Any] | None]:
    """Return an action's after-action report and its verdict (verification or dispute), bodies included.

    Whoever may read the action reads them, whichever offices exchanged them: the other side's
    liaison officer verifies a report sent between the DGMOs (as it may fetch its evidence), and
    the side that reported learns why its report was disputed. `None` for one not sent yet.
    """
    ids = [i for i in (state.report, state.verdict) if i]
    query = select(envelopes.c.id, envelopes.c.type, envelopes.c.from_office, envelopes.c.to_office,
                   envelopes.c.created, envelopes.c.raw).where(envelopes.c.id.in_(ids))  # fmt: skip
    found = {r.id: r for r in conn.execute(query)} if ids else {}
    out: dict[str, dict[str, Any] | None] = {}
    for key, envelope_id in (("report", state.report), ("verdict", state.verdict)):
        row = found.get(envelope_id) if envelope_id else None
        if row is None:
            out[key] = None
            continue
        try:
            body = json.loads(bytes(row.raw)).get("body", {})
        except ValueError:  # every stored envelope was checked on the way in; never let one break a page
            body = {}
        out[key] = {"id": row.id, "type": row.type, "sender": row.from_office, "recipient": row.to_office,
                    "created": row.created, "body": body if isinstance(body, dict) else {}}  # fmt: skip
    return out
