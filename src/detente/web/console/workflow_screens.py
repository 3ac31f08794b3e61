"""What the page of a coordinated action, a consultation or a clarification holds, in one read.

Each is read whole from the projection tables, as the operator API reads it (`data.projection`,
the API's rule of who sees what), or not at all: the page is then a 404. Its timeline holds every
message it accepted, in order: a card for those the viewer may read, and for the others (between
other offices) only who sent what, when, and the status it led to, as on a case's page. What this
side may send about it now is `screens.next_steps`, as on the Now screen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from detente.core import codebook as codebook_mod
from detente.core.workflow_base import Step, party
from detente.core.workflows import Action, Clarification, Consultation, State, is_overdue
from detente.core.workflows_action import REASON_SEPARATOR, decision_overdue
from detente.core.workflows_consultation import overdue_items
from detente.errors import Error
from detente.node import workflow_views
from detente.node.auth import may_read_row
from detente.store import workflow as workflow_db
from detente.web.console import data, screens
from detente.web.console.i18n import N_
from detente.web.console.site import Viewer

# The reasons `core.workflows_action.unilateral_reasons` records, said in the reader's language.
UNILATERAL_REASONS = frozenset({
    N_("executed without consent"), N_("executed despite an objection"), N_("executed before consent was given"),
    N_("executed before it was notified"),
})  # fmt: skip


def _state(conn: Connection, viewer: Viewer, kind: str, target: str) -> State | None:
    """Return the workflow object if the viewer may see it (the API's rule), else None."""
    return data.projection(conn, viewer.offices, kinds=(kind,), ids=[target]).states().get(target)


def _timeline(conn: Connection, viewer: Viewer, steps: list[Step]) -> list[dict[str, Any]]:
    """Return each step with its message's card, or without one for a message the viewer may not read."""
    p, agreement = viewer.presenter, viewer.presenter.agreement
    rows = data.rows_by_id(conn, [s.id for s in steps])
    out = []
    for step in steps:
        row = rows.get(step.id)
        card = (
            p.card(row, viewer.operator) if row is not None and may_read_row(viewer.operator, row, agreement) else None
        )
        out.append({"card": card, "at": p.when_everywhere(step.created), "type": step.type, "sender": step.sender,
                    "recipient": row["to_office"] if row is not None else "", "status": step.status})  # fmt: skip
    return out


def _common(conn: Connection, viewer: Viewer, kind: str, state: State, steps: list[Step],
            ends: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    """Return what every workflow page shows: timeline, what this side may send, refused messages."""
    opener = data.rows_by_id(conn, [state.id]).get(state.id)
    channel, types = screens.next_steps(viewer, state, ends, str(opener["channel"]) if opener else None)
    conflicts = [{"type": c["type"], "envelope": c["envelope_id"], "reason": c["reason"]}
                 for c in workflow_db.conflicts_of(conn, kind, state.id)]  # fmt: skip
    return {"kind": kind, "state": state, "timeline": _timeline(conn, viewer, steps), "channel": channel,
            "types": types, "conflicts": conflicts, "parties": viewer.presenter.parties,
            "p": viewer.presenter}  # fmt: skip


def reasons(viewer: Viewer, reason: str | None) -> list[str]:
    """Return why an execution was flagged unilateral, in the reader's language (unknown reasons as they are)."""
    gettext = viewer.locale.gettext
    return [gettext(r) if r in UNILATERAL_REASONS else r for r in (reason or "").split(REASON_SEPARATOR) if r]


def _paper(viewer: Viewer, paper: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return a report or verdict as the page shows it: who sent it when, and its body as labelled lines."""
    if paper is None:
        return None
    body = {k: v for k, v in paper["body"].items() if k != "evidence"}  # the files are listed once, with the action's
    return {**paper, "at": viewer.presenter.when_everywhere(paper["created"]),
            "lines": viewer.presenter.lines(paper["type"], body)}  # fmt: skip


def action_screen(conn: Connection, viewer: Viewer, target: str) -> dict[str, Any] | None:
    """Return the page of a coordinated action, or None if the viewer may not see it.

    Besides its status and timeline: its window, the decision's deadline, the execution and its
    flags with their reasons, the report and the verdict (whichever offices exchanged them:
    `workflow_views.action_papers`) and every evidence file with this node's copy of it.
    """
    action = _state(conn, viewer, "action", target)
    if not isinstance(action, Action):
        return None
    viewer = viewer.among((party(action.proposer), party(action.counterpart)))
    files = {f["sha256"]: f for f in workflow_views.evidence_files(conn, [e.sha256 for e in action.evidence])}
    evidence = [{"ref": e, "state": files[e.sha256]["state"]} for e in action.evidence]
    papers = workflow_views.action_papers(conn, action)
    return {
        **_common(conn, viewer, "action", action, list(action.history), (action.counterpart, action.proposer)),
        "reasons": reasons(viewer, action.unilateral_reason),
        "decision_overdue": decision_overdue(action, datetime.now(UTC)),
        "evidence": evidence,
        "report": _paper(viewer, papers["report"]),
        "verdict": _paper(viewer, papers["verdict"]),
    }


def _schedule_title(viewer: Viewer, key: str | None) -> str:
    """Return the title the agreement gives a recurring consultation ("" when it names none)."""
    if not key:
        return ""
    try:
        schedule = codebook_mod.consultations(viewer.presenter.agreement.raw).get(key)
    except Error:
        return ""
    return schedule.title if schedule else ""


def consultation_screen(conn: Connection, viewer: Viewer, target: str) -> dict[str, Any] | None:
    """Return the page of a consultation, or None if the viewer may not see it.

    Besides its status and timeline: its schedule, start, venue and agenda, when it was held (and
    whether before its start), the minutes' SHA-256 and each party's co-signature, and every
    action item with its owner, due time and state (done late, or overdue now).
    """
    cons = _state(conn, viewer, "consultation", target)
    if not isinstance(cons, Consultation):
        return None
    viewer = viewer.among(cons.parties)
    overdue = {i.id for i in overdue_items(cons, datetime.now(UTC))}
    mine = set(viewer.operator.offices)
    items = [{"item": i, "overdue": i.id in overdue, "mine": i.owner in mine} for i in cons.items]
    cosigned = dict(cons.cosigned_by)
    owners = tuple(i.owner for i in cons.items if i.status == "open")
    return {
        **_common(conn, viewer, "consultation", cons, list(cons.history), (cons.counterpart, cons.proposer, *owners)),
        "schedule_title": _schedule_title(viewer, cons.schedule),
        "cosignatures": [{"party": party, "envelope": cosigned.get(party)} for party in cons.parties],
        "items": items,
    }


def clarification_screen(conn: Connection, viewer: Viewer, target: str) -> dict[str, Any] | None:
    """Return the page of a request for clarification and its answer, or None if the viewer may not see it."""
    clar = _state(conn, viewer, "clarification", target)
    if not isinstance(clar, Clarification):
        return None
    viewer = viewer.among((party(clar.requester), party(clar.addressee)))
    steps = [Step(clar.id, "clarification.request", clar.requester, clar.created, "open")]
    if clar.response and clar.answered_at:
        steps.append(Step(clar.response, "clarification.response", clar.addressee, clar.answered_at, "answered"))
    overdue = is_overdue(clar, datetime.now(UTC))
    return {**_common(conn, viewer, "clarification", clar, steps, (clar.addressee,)), "overdue": overdue}


BUILDERS = {"action": action_screen, "consultation": consultation_screen, "clarification": clarification_screen}
