"""Answering: a person acknowledges or declines a message received, or says why the side is silent.

An answer is an envelope like any other (`node.outgoing` seals, logs and queues it); what is
particular is who may give it. Whoever may read a message but not answer it is told why (a
translator, the sender's own side, an alternate before the deadline), not that it is not found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from detente.core import notifications
from detente.core.agreement import NODE_CHANNEL
from detente.core.precedence import Precedence
from detente.errors import Conflict, Forbidden, Invalid, NotFound
from detente.node.auth import SENDING_ROLES, may_read
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.node.outgoing import Sent, answers_for, record_answer, record_outgoing, require_sender, require_words
from detente.store import messages as db
from detente.store.operators import Operator


def respond_job(
    ctx: NodeContext, operator: Operator, message_id: str, kind: str, body: dict[str, Any]
) -> Callable[[Connection], Sent]:
    """Return the writer job that acknowledges or declines an incoming message.

    The job raises `NotFound` if the operator cannot see the message, `Forbidden` if they may not
    answer for its office, and `Conflict` if it was already answered.
    """
    notifications.validate_body(kind, body, ctx.agreement)
    require_words(kind, body)

    def job(conn: Connection) -> Sent:
        row = db.get_envelope(conn, message_id)
        known = row is not None and (
            _may_see(operator, row) or _may_answer(ctx, operator, row) or _backs_up(ctx, operator, row)
        )
        if row is None or not known:
            raise NotFound(f"no message {message_id} for your offices")
        # Whoever may read the message is told why they may not answer it, rather than "not found".
        if row["direction"] != "in":
            raise Invalid("only a message received from the other side can be acknowledged or declined")
        if not row["needs_ack"]:
            raise Invalid(f"{row['type']} messages are not acknowledged")
        if not _may_answer(ctx, operator, row):
            raise Forbidden(_why_not(ctx, operator, row))
        if row["response_id"] is not None:
            raise Conflict(f"message {message_id} was already {row['state']} by {row['response_by']}")
        office = row["to_office"]
        answering = answering_office(ctx, operator, office)
        if body.get("office", answering) != answering:
            raise Invalid(
                f"office: the node names the office you answer for ({answering}), not {body['office']}",
                fields={"office": f"is the office you answer for: {answering}"},
            )
        sealed, index, event = record_answer(conn, ctx, operator, row, kind, body, answering)
        return Sent(sealed, index, "accepted", (event,))

    return job


def answering_office(ctx: NodeContext, operator: Operator, office: str) -> str:
    """Return the office `operator` answers a message to `office` for: that office, else an alternate of it.

    Called once the operator may answer: bound to `office`, or to an alternate of it once the
    message is overdue. Raises nothing.
    """
    if office in operator.offices:
        return office
    return next((o for o in ctx.agreement.alternates(office) if o in operator.offices), office)


def _backs_up(ctx: NodeContext, operator: Operator, row: db.EnvelopeRow) -> bool:
    """Whether the operator is bound to an alternate of a received message's addressee.

    Such an operator may answer it once it is overdue; before that, told so rather than "not
    found", a duty officer asked to answer it knows the id is right and when it becomes theirs.
    """
    return row["direction"] == "in" and bool(set(ctx.agreement.alternates(row["to_office"])) & set(operator.offices))


def _may_see(operator: Operator, row: db.EnvelopeRow) -> bool:
    """Whether the operator may read the message (as the API's listing shows it)."""
    return may_read(operator, row["from_office"], row["to_office"])


def _why_not(ctx: NodeContext, operator: Operator, row: db.EnvelopeRow) -> str:
    """Say why an operator who may read a message may not answer it."""
    if not any(operator.has(r) for r in SENDING_ROLES):
        roles = ", ".join(operator.roles)
        return f"operator {operator.name} ({roles}) may read this message; only an operator or supervisor answers it"
    office = row["to_office"]
    if any(o in operator.offices for o in ctx.agreement.alternates(office)):
        due = f" (its deadline is {row['deadline']})" if row["deadline"] else ""
        return f"the message is addressed to {office}; its alternates may answer it once it is overdue{due}"
    return f"the message is addressed to {office}, which operator {operator.name} does not hold"


def _may_answer(ctx: NodeContext, operator: Operator, row: db.EnvelopeRow) -> bool:
    sends = any(operator.has(r) for r in SENDING_ROLES)
    return sends and any(answers_for(ctx, row, office) for office in operator.offices)


def status_job(
    ctx: NodeContext, operator: Operator, peers: Sequence[str], code: str, note: str, office: str | None
) -> Callable[[Connection], list[Sent]]:
    """Return the writer job that tells each of `peers` why this side is (not) answering.

    Several peers (a group of states: "we are busy" is for all of them) get one signed status
    each, in one transaction: every peer is checked before anything is written, so either all
    are sent or none is. Raises `Invalid` for no peer, an unknown peer or code, and `Forbidden`
    for an office not the operator's.
    """
    if not peers:
        raise Invalid("name at least one peer")
    unknown = [p for p in peers if p == ctx.party or p not in ctx.agreement.parties]
    if unknown:
        known = ", ".join(p for p in ctx.agreement.parties if p != ctx.party)
        raise Invalid(f"unknown peer {', '.join(map(repr, unknown))}: the peers are {known}")
    chosen = office or (operator.offices[0] if len(operator.offices) == 1 else "")
    if not chosen:
        raise Invalid("you hold several offices: say for which one with 'office'")
    require_sender(operator, chosen)
    body = {"code": code, "note": note, "office": chosen}
    notifications.validate_body("status", body, ctx.agreement)
    own = ctx.agreement.party(ctx.party)
    targets = [(peer, ctx.agreement.party(peer)) for peer in dict.fromkeys(peers)]

    def job(conn: Connection) -> list[Sent]:
        sent = []
        for peer, theirs in targets:
            sealed, index = record_outgoing(
                conn, ctx, channel=NODE_CHANNEL, sender=own.node_office, recipient=theirs.node_office,
                author=operator.id, precedence=Precedence.IMMEDIATE, kind="status", body=body, refs=[],
                case=None, lang=operator.lang,
            )  # fmt: skip
            event = Event("status_sent", sealed.id, (chosen,), {"peer": peer, "code": code, "note": note})
            sent.append(Sent(sealed, index, "accepted", (event,)))
        return sent

    return job
