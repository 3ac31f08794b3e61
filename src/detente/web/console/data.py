"""What the console's screens read from the node's tables (read-only queries, one connection each).

The workflows (cases, actions, clarifications, consultations) are read from the node's projection
tables (`store.workflow`), as the operator API and the CLI read them: which workflows an operator
sees is the API's rule (`node.workflow_views`), and each is seen whole, whichever offices'
envelopes moved it, so that every screen, the API and the CLI say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, case, func, or_, select

from detente.core import envelope as envelope_mod
from detente.core import notifications
from detente.core.agreement import Agreement, Channel
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence
from detente.core.workflow_json import state_from_json
from detente.core.workflows import Conflict, Projection
from detente.errors import Error
from detente.node import workflow_views
from detente.node.auth import SENDING_ROLES, visible_offices
from detente.store import messages as db
from detente.store import operators as operators_db
from detente.store import workflow as workflow_db
from detente.store.operators import Operator
from detente.store.tables import envelopes, operators

KINDS = ("case", "clarification", "action", "consultation")
OPEN_CASE = ("open", "contained")  # the statuses of a case that is not resolved
MAX_STATES = 1000  # workflow objects of one kind read for one page, newest first
WAITING_LIMIT = 500  # messages other than FLASH read for one list of waiting messages; FLASH is never cut
THREAD_LIMIT = 200  # messages of a channel on one page of its thread
# Precedence as a number in SQL (0 for FLASH), so that a cut list keeps the most urgent messages.
_RANK = case({p.value: p.rank for p in Precedence}, value=envelopes.c.precedence, else_=len(Precedence))


@dataclass(frozen=True)
class Pending:
    """Messages waiting for an answer: the rows read, and how many wait in all (more than read if cut)."""

    rows: list[RowMapping]
    total: int

    @property
    def more(self) -> int:
        """How many waiting messages the list leaves out."""
        return max(0, self.total - len(self.rows))


def service_types() -> list[str]:
    """Return the message types that are not shown as messages (acks, link tests, ...)."""
    return [name for name, kind in notifications.CATALOG.items() if kind.service]


def may_send(operator: Operator) -> bool:
    """Return whether the operator holds a role that sends and acknowledges."""
    return any(operator.has(r) for r in SENDING_ROLES)


def escalated_to(agreement: Agreement, operator: Operator) -> list[str]:
    """Return the offices whose overdue messages fall to this operator as an alternate."""
    return sorted(
        office
        for office in agreement.offices
        if office not in operator.offices and any(a in operator.offices for a in agreement.alternates(office))
    )


def channels_for(agreement: Agreement, party: str, operator: Operator) -> list[Channel]:
    """Return the channels the operator may open: their offices', or all of the party's for wide roles."""
    wide = visible_offices(operator) is None
    out = []
    for _, channel in sorted(agreement.channels.items()):
        own = [o for o in channel.offices if o.split(":", 1)[0] == party]
        if own and (wide or any(o in operator.offices for o in own)):
            out.append(channel)
    return out


def own_end(channel: Channel, party: str) -> str:
    """Return the office at this party's end of a channel."""
    return next(o for o in channel.offices if o.split(":", 1)[0] == party)


def account(conn: Connection, operator_id: str) -> Operator | None:
    """Return the operator with this id if the account is enabled."""
    disabled = conn.execute(select(operators.c.disabled).where(operators.c.id == operator_id)).scalar()
    if disabled is None or disabled:
        return None
    return operators_db.by_id(conn, operator_id)


def _office_filter(offices: list[str] | None) -> Any:
    if offices is None:
        return None
    return or_(envelopes.c.from_office.in_(offices), envelopes.c.to_office.in_(offices))


def _pending_in_where(offices: list[str] | None, escalated: list[str]) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = [
        envelopes.c.direction == "in", envelopes.c.needs_ack.is_(True), envelopes.c.response_id.is_(None)
    ]  # fmt: skip
    if offices is not None:
        terms.append(
            or_(
                envelopes.c.to_office.in_(offices),
                and_(envelopes.c.to_office.in_(escalated), envelopes.c.overdue_at.is_not(None)),
            )
        )
    return terms


def _pending_out_where(offices: list[str] | None) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = [
        envelopes.c.direction == "out", envelopes.c.needs_ack.is_(True), envelopes.c.response_id.is_(None)
    ]  # fmt: skip
    if offices is not None:
        terms.append(envelopes.c.from_office.in_(offices))
    return terms


def _pending(conn: Connection, terms: list[ColumnElement[bool]], limit: int) -> Pending:
    """Return every FLASH row matching `terms` and the `limit` most urgent others, with the total count."""
    flash = select(envelopes).where(*terms, envelopes.c.precedence == "FLASH").order_by(envelopes.c.deadline)
    others = (
        select(envelopes)
        .where(*terms, envelopes.c.precedence != "FLASH")
        .order_by(_RANK, envelopes.c.deadline, envelopes.c.log_index)
        .limit(max(0, limit))
    )
    rows = [*conn.execute(flash).mappings(), *conn.execute(others).mappings()]
    total = int(conn.execute(select(func.count()).select_from(envelopes).where(*terms)).scalar_one())
    return Pending(rows, total)


def _urgent_first(row: RowMapping) -> tuple[int, bool, str]:
    # Within a precedence, those still in time before the overdue ones (QA, a FLASH storm: 41 overdue
    # FLASH came before the first one still in time, 41 presses of `j` down). An overdue message has
    # gone to the alternates, who may answer it too; one still in time only this office can save.
    return Precedence(row["precedence"]).rank, row["overdue_at"] is not None, row["deadline"] or ""


def pending_in(
    conn: Connection, offices: list[str] | None, escalated: list[str], limit: int = WAITING_LIMIT
) -> Pending:
    """Return received messages still waiting for a person's answer, most urgent first.

    With `offices` (not a wide role), those addressed to the operator's offices, plus overdue
    ones addressed to offices the operator is an alternate of. Every FLASH message is read; of
    the others only the `limit` most urgent (by precedence, then deadline), and `total` counts all.
    """
    pending = _pending(conn, _pending_in_where(offices, escalated), limit)
    return Pending(sorted(pending.rows, key=_urgent_first), pending.total)


def pending_flash(conn: Connection, offices: list[str] | None, escalated: list[str]) -> list[RowMapping]:
    """Return every received FLASH message still waiting for a person's answer: those still in time
    first, then the overdue ones (`_urgent_first`), each earliest deadline first."""
    query = select(envelopes).where(*_pending_in_where(offices, escalated), envelopes.c.precedence == "FLASH")
    return sorted(conn.execute(query.order_by(envelopes.c.deadline)).mappings(), key=_urgent_first)


def pending_out(conn: Connection, offices: list[str] | None, limit: int = WAITING_LIMIT) -> Pending:
    """Return sent messages not yet acknowledged or declined (overdue ones included), oldest deadline first.

    Every FLASH message is read; of the others only the `limit` most urgent, and `total` counts all.
    """
    pending = _pending(conn, _pending_out_where(offices), limit)
    return Pending(sorted(pending.rows, key=lambda r: r["deadline"] or ""), pending.total)


def thread(
    conn: Connection, channel: str, offices: list[str] | None, before: int | None = None, limit: int = THREAD_LIMIT
) -> db.Page:
    """Return a page of a channel's messages, oldest first (service messages left out).

    The page holds the newest `limit` messages, or with `before` the newest `limit` of those whose
    log index is below it; `more` says whether older messages exist.
    """
    query = select(envelopes).where(envelopes.c.channel == channel, envelopes.c.type.not_in(service_types()))
    where = _office_filter(offices)
    if where is not None:
        query = query.where(where)
    if before is not None:
        query = query.where(envelopes.c.log_index < before)
    # One row more than asked says whether older rows exist.
    rows = list(conn.execute(query.order_by(envelopes.c.log_index.desc()).limit(limit + 1)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return db.Page(rows, more)


def newer_page(
    conn: Connection, channel: str, offices: list[str] | None, before: int, limit: int = THREAD_LIMIT
) -> int | None:
    """Return the `before` of the page of a channel's thread just newer than the page `before` ends,
    or None when that page is the newest (the page without `before`)."""
    query = select(envelopes.c.log_index).where(
        envelopes.c.channel == channel, envelopes.c.type.not_in(service_types()), envelopes.c.log_index >= before
    )
    where = _office_filter(offices)
    if where is not None:
        query = query.where(where)
    # The `limit` messages after this page make the newer page; one more says that newer ones follow it.
    indexes = list(conn.execute(query.order_by(envelopes.c.log_index).limit(limit + 1)).scalars())
    return int(indexes[limit - 1]) + 1 if len(indexes) > limit else None


def thread_all(conn: Connection, offices: list[str] | None, limit: int) -> list[RowMapping]:
    """Return the latest messages of every channel the operator may see, oldest first."""
    return db.list_envelopes(conn, offices=offices, exclude_types=service_types(), limit=limit).rows


def thread_by_case(conn: Connection, case_id: str, offices: list[str] | None) -> list[RowMapping]:
    """Return the messages that name `case_id` as their case, oldest first."""
    return db.list_envelopes(conn, offices=offices, case_id=case_id, exclude_types=service_types(), limit=500).rows


def message(conn: Connection, message_id: str, offices: list[str] | None) -> db.EnvelopeRow | None:
    """Return one envelope row if the operator may see it."""
    row = db.get_envelope(conn, message_id)
    if row is None or (offices is not None and not {row["from_office"], row["to_office"]} & set(offices)):
        return None
    return row


def rows_by_id(conn: Connection, ids: list[str]) -> dict[str, RowMapping]:
    """Return envelope rows by id."""
    if not ids:
        return {}
    rows = conn.execute(select(envelopes).where(envelopes.c.id.in_(ids))).mappings()
    return {r["id"]: r for r in rows}


def projection(
    conn: Connection, offices: list[str] | None, *, kinds: Sequence[str] = KINDS,
    statuses: Mapping[str, Sequence[str]] | None = None, ids: Sequence[str] | None = None, case: str | None = None,
) -> Projection:  # fmt: skip
    """Return the workflow states the operator may see, each whole, as the operator API reads them.

    An office sees a workflow that holds an envelope it sent or received (a liaison office also the
    actions it may verify, an office given an action item the consultation whose minutes gave it;
    `offices` None, a wide role, sees every one), and sees its stored state,
    which every envelope of the workflow made, not only its own. `kinds` limits the kinds read,
    `statuses` (by kind) their statuses, `ids` the objects; with `case`, only that case and the
    objects that name it (and its refused envelopes as `conflicts`). At most `MAX_STATES` objects
    of each kind are read, newest first.
    """
    found: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    if ids is not None and not ids:
        return Projection()
    for kind in kinds:
        if case is not None and kind == "case":
            row = workflow_views.readable(conn, kind, case, offices)
            rows = [row] if row is not None and (ids is None or case in ids) else []
        else:
            rows = workflow_db.listing(conn, kind, offices=offices, case_id=case, ids=ids, limit=MAX_STATES,
                                       statuses=(statuses or {}).get(kind))  # fmt: skip
        for row in reversed(rows):  # oldest first, as the envelopes came
            try:
                found[kind][row.id] = state_from_json(kind, row.state)
            except Error:
                continue  # a row `detente rebuild` would correct; never let one break a page
    conflicts: tuple[Conflict, ...] = ()
    if case is not None and found["case"]:
        conflicts = tuple(
            Conflict(c["envelope_id"], c["type"], c["workflow"], c["target"], c["reason"])
            for c in workflow_db.conflicts_of(conn, "case", case)
        )
    return Projection(found["case"], found["clarification"], found["action"], found["consultation"], conflicts)


def case_envelopes(conn: Connection, case: str) -> list[Envelope]:
    """Return every envelope of a case (not only those the operator may read), as parsed envelopes.

    The case's state is made of them all; only what they changed is shown of those the operator may
    not read.
    """
    out = []
    for raw in workflow_db.workflow_raws(conn, case):
        try:
            envelope = envelope_mod.parse(raw)
        except Error:
            continue  # every stored envelope was checked on the way in; never let one break a page
        if envelope.case == case or (envelope.case is None and envelope.id == case):
            out.append(envelope)
    return out


def all_operators(conn: Connection) -> list[Operator]:
    """Return every operator account, by name."""
    return operators_db.all_operators(conn)


def disabled_ids(conn: Connection) -> set[str]:
    """Return the ids of disabled operator accounts."""
    return {str(r[0]) for r in conn.execute(select(operators.c.id).where(operators.c.disabled.is_(True)))}
