"""What the console's screens read from the node's tables (read-only queries, one connection each).

The workflows (cases, actions, clarifications, consultations) are derived here as everywhere else:
by folding the envelopes with `core.workflows.fold`, limited to what the operator may see.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, and_, or_, select

from detente.core import envelope as envelope_mod
from detente.core import notifications
from detente.core.agreement import Agreement, Channel
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence
from detente.core.workflows import OPENERS, Projection, fold
from detente.errors import Error
from detente.node.auth import SENDING_ROLES, visible_offices
from detente.store import messages as db
from detente.store import operators as operators_db
from detente.store.operators import Operator
from detente.store.tables import envelopes, operators

WORKFLOW_PREFIXES = ("case.", "action.", "consultation.", "clarification.")
MAX_FOLD = 5000  # envelopes folded for one page; a node past this needs the projection tables


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


def pending_in(conn: Connection, offices: list[str] | None, escalated: list[str]) -> list[RowMapping]:
    """Return received messages still waiting for a person's answer, most urgent first.

    With `offices` (not a wide role), those addressed to the operator's offices, plus overdue
    ones addressed to offices the operator is an alternate of.
    """
    query = select(envelopes).where(
        envelopes.c.direction == "in", envelopes.c.needs_ack.is_(True), envelopes.c.response_id.is_(None)
    )
    if offices is not None:
        query = query.where(
            or_(
                envelopes.c.to_office.in_(offices),
                and_(envelopes.c.to_office.in_(escalated), envelopes.c.overdue_at.is_not(None)),
            )
        )
    rows = list(conn.execute(query.order_by(envelopes.c.deadline).limit(500)).mappings())
    return sorted(rows, key=lambda r: (Precedence(r["precedence"]).rank, r["deadline"] or ""))


def pending_out(conn: Connection, offices: list[str] | None) -> list[RowMapping]:
    """Return sent messages not yet acknowledged or declined (overdue ones included), oldest deadline first."""
    query = select(envelopes).where(
        envelopes.c.direction == "out", envelopes.c.needs_ack.is_(True), envelopes.c.response_id.is_(None)
    )
    if offices is not None:
        query = query.where(envelopes.c.from_office.in_(offices))
    return list(conn.execute(query.order_by(envelopes.c.deadline).limit(500)).mappings())


def thread(conn: Connection, channel: str, offices: list[str] | None, limit: int = 200) -> list[RowMapping]:
    """Return the latest messages of a channel, oldest first (service messages left out)."""
    return db.list_envelopes(conn, offices=offices, channel=channel, exclude_types=service_types(), limit=limit).rows


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


def workflow_envelopes(conn: Connection, offices: list[str] | None, case: str | None = None) -> list[Envelope]:
    """Return the envelopes that open or move a workflow (or name a case), as parsed envelopes."""
    kinds = [k for k in notifications.CATALOG if k in OPENERS or k.startswith(WORKFLOW_PREFIXES)]
    query = select(envelopes.c.raw).where(or_(envelopes.c.type.in_(kinds), envelopes.c.case_id.is_not(None)))
    where = _office_filter(offices)
    if where is not None:
        query = query.where(where)
    if case is not None:
        query = query.where(or_(envelopes.c.case_id == case, envelopes.c.id == case))
    out = []
    for (raw,) in conn.execute(query.order_by(envelopes.c.log_index.desc()).limit(MAX_FOLD)):
        try:
            out.append(envelope_mod.parse(bytes(raw)))
        except Error:
            continue  # every stored envelope was checked on the way in; never let one break a page
    return out


def projection(conn: Connection, offices: list[str] | None, case: str | None = None) -> Projection:
    """Return the workflow states the operator may see (of one case, if `case` is given)."""
    return fold(workflow_envelopes(conn, offices, case))


def all_operators(conn: Connection) -> list[Operator]:
    """Return every operator account, by name."""
    return operators_db.all_operators(conn)


def disabled_ids(conn: Connection) -> set[str]:
    """Return the ids of disabled operator accounts."""
    return {str(r[0]) for r in conn.execute(select(operators.c.id).where(operators.c.disabled.is_(True)))}
