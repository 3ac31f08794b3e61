"""Envelopes this node creates: messages, acknowledgements, declines, status, overdue, link tests.

Each use case validates everything it can before it reaches the writer, then, in one
transaction, allocates the channel's next sequence number, seals the envelope, appends it to the
log, inserts it and queues it for delivery. It answers only after that transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from detente.core import envelope as envelope_mod
from detente.core import notifications, search, wire
from detente.core.agreement import LINK_CHANNEL, NODE_CHANNEL
from detente.core.bodies import require_words as require_words  # the one rule, shared with the drill planner
from detente.core.envelope import Envelope, uuid7
from detente.core.precedence import Precedence, deadline_for, format_time, now, parse_precedence, parse_time
from detente.core.workflow_base import party
from detente.errors import Error, Forbidden, Invalid, located
from detente.node import evidence, workflow
from detente.node.auth import SENDING_ROLES
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.store import messages as db
from detente.store.operators import Operator

SYSTEM_AUTHOR = "system"


@dataclass(frozen=True)
class Sent:
    """What a successful send answers: the envelope and where it sits."""

    envelope: Envelope
    log_index: int
    state: str
    events: tuple[Event, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.envelope.id,
            "seq": self.envelope.seq,
            "log_index": self.log_index,
            "state": self.state,
        }


def _after_what_it_answers(conn: Connection, target: str, created: datetime) -> datetime:
    """Return `created`, or a moment just after the newest envelope this node holds of `target`.

    Both nodes fold a workflow in the order of refs, then `created`. A peer whose clock is ahead
    stamps its objection later than our clock reads when we answer it: our execution, sent after
    we stored the objection, would sort before it, and the shared record would say the objection
    came after the execution (QA4 #2). Stamping a message at least 1 ms after everything it could
    have seen of its object keeps causes before their effects on both nodes (a Lamport clock).
    """
    newest = db.newest_created(conn, target)
    if newest is None:
        return created
    after = parse_time(newest) + timedelta(milliseconds=1)
    return after if after > created else created


def record_outgoing(
    conn: Connection,
    ctx: NodeContext,
    *,
    channel: str,
    sender: str,
    recipient: str,
    author: str,
    precedence: Precedence,
    kind: str,
    body: dict[str, Any],
    refs: list[str],
    case: str | None,
    lang: str,
    queue: bool = True,
    created: datetime | None = None,
    strict: bool = False,
    events: list[Event] | None = None,
) -> tuple[Envelope, int]:
    """Seal, log, store and (if `queue`) queue one outgoing envelope inside the caller's transaction.

    The workflow projections it touches are updated in the same transaction (`node.workflow`), and
    their events added to `events`. With `strict`, a workflow that refuses the envelope raises
    `InvalidTransition` before anything is written; otherwise the refusal is recorded as a conflict.
    """
    peer = recipient.split(":", 1)[0]
    seq = db.next_seq(conn, peer, channel) if kind != "link.test" else 0
    created = created or now()
    sealed = envelope_mod.seal(
        {
            "v": 1,
            "id": uuid7(),
            "agreement": ctx.agreement.hash,
            "channel": channel,
            "from": sender,
            "to": recipient,
            "seq": seq,
            "author": author,
            "precedence": precedence.value,
            "type": kind,
            "lang": lang,
            "refs": refs,
            "case": case,
            "created": format_time(created),
            "body": body,
        },
        ctx.signer,
    )
    needs_ack = notifications.get(kind).needs_ack
    deadline = format_time(deadline_for(created, precedence, ctx.agreement.deadlines(channel))) if needs_ack else None
    changes = workflow.plan(conn, ctx.agreement, sealed, strict=strict)  # raises before any write
    index = db.append_log(conn, sealed.raw, sealed.id)
    db.insert_envelope(
        conn,
        id=sealed.id,
        direction="out",
        peer=peer,
        channel=channel,
        from_office=sender,
        to_office=recipient,
        seq=seq,
        type=kind,
        precedence=precedence.value,
        author=author,
        case_id=case,
        ref=refs[0] if refs else None,
        created=sealed.created,
        raw=sealed.raw,
        log_index=index,
        needs_ack=needs_ack,
        deadline=deadline,
        state="accepted",
        recorded_at=sealed.created,
        words=search.words_of(sealed.data),
    )
    if queue:
        db.enqueue(conn, sealed.id, peer, channel, seq, new=True)
    found = workflow.save(conn, changes)
    if events is not None:
        events.extend(found)
    return sealed, index


def record_answer(
    conn: Connection,
    ctx: NodeContext,
    operator: Operator,
    row: db.EnvelopeRow,
    kind: str,
    body: dict[str, Any],
    answering: str,
) -> tuple[Envelope, int, Event]:
    """Record `operator`'s `ack` or `decline` of the received message `row`, for office `answering`.

    The envelope goes from the addressed office, which the channel links; when an alternate answers
    (`answering` is not the addressee), its body names it. The message is marked answered in the
    same transaction. Returns the envelope, its log index and the event for the stream. The caller
    has checked that the operator may answer it, and that it is not answered yet.
    """
    office = row["to_office"]
    sent_body = {k: v for k, v in body.items() if k != "office"}
    # An alternate answers: the record says so (the envelope is the addressee's). A peer of an
    # earlier release refuses that member, and its refusal would hold the channel: it gets the
    # answer as the addressee's, its author still the alternate's operator; this node records
    # who answered (`response_office`) either way.
    if answering != office and ctx.takes(str(row["peer"]), wire.ANSWER_OFFICE):
        sent_body["office"] = answering
    sealed, index = record_outgoing(
        conn, ctx, channel=row["channel"], sender=office, recipient=row["from_office"],
        author=operator.id, precedence=Precedence(row["precedence"]), kind=kind, body=sent_body,
        refs=[row["id"]], case=row["case_id"], lang=operator.lang,
    )  # fmt: skip
    state = "acknowledged" if kind == "ack" else "declined"
    db.update_envelope(
        conn, row["id"], state=state, response_id=sealed.id, response_type=kind,
        response_at=sealed.created, response_by=operator.name, response_office=answering,
        response_note=body.get("reason") or body.get("note") or None,
    )  # fmt: skip
    offices = (office, *ctx.agreement.alternates(office))
    event = Event(state, row["id"], offices, {"response": sealed.id, "by": operator.name, "office": answering})
    return sealed, index, event


def answers_for(ctx: NodeContext, row: db.EnvelopeRow, office: str) -> bool:
    """Return whether `office` may answer the received message `row`: its addressee may, and once
    the message is overdue, an alternate of its addressee may too (escalation). Raises nothing."""
    addressee = row["to_office"]
    return office == addressee or (row["overdue_at"] is not None and office in ctx.agreement.alternates(addressee))


def _acknowledge_by_answering(conn: Connection, ctx: NodeContext, operator: Operator, m: Message) -> list[Event]:
    """Acknowledge, for `operator`, each unanswered message received that `m` answers; return their events.

    A person who answers a message has read it: its sender must not see it escalate as unread
    while the answer is on its way (QA: an answered FLASH clarification request went overdue and
    alerted the alternates). A message `m` refers to is acknowledged when it was received, awaits
    an acknowledgement, and `m` goes from its addressee, or from an alternate once it is overdue:
    the same people who may acknowledge it. The acknowledgement goes first, noting the answer's type,
    so that both logs show the receipt before the answer.
    """
    events: list[Event] = []
    for ref in dict.fromkeys(m.refs):
        row = db.get_envelope(conn, ref)
        if row is None or row["direction"] != "in" or not row["needs_ack"] or row["response_id"] is not None:
            continue
        if not answers_for(ctx, row, m.sender):
            continue
        _, _, event = record_answer(conn, ctx, operator, row, "ack", {"note": f"answered with {m.kind}"}, m.sender)
        events.append(event)
    return events


def require_sender(operator: Operator, office: str) -> None:
    if not any(operator.has(r) for r in SENDING_ROLES):
        raise Forbidden(f"operator {operator.name} has no role that may send (operator or supervisor)")
    if office not in operator.offices:
        raise Forbidden(f"operator {operator.name} is not bound to office {office}")


@dataclass(frozen=True)
class Message:
    """A message an operator may send, as `check_message` resolved it: who sends it, and how."""

    channel: str
    to: str
    sender: str
    precedence: Precedence
    kind: str
    body: dict[str, Any]
    refs: list[str]
    case: str | None
    lang: str

    @property
    def peer(self) -> str:
        return self.to.split(":", 1)[0]


def check_message(
    ctx: NodeContext, operator: Operator, *, channel: str, to: str, precedence: str, kind: str,
    body: Any, refs: list[str], case: str | None, lang: str | None,
) -> Message:  # fmt: skip
    """Validate a message an operator wants to send, without touching storage.

    Raises `Invalid` for an unknown channel, office, type or a bad body, with `fields` naming the
    request member at fault (`channel`, `to`, `precedence`, `type`, `refs`, `lang`, or the body's
    field; a `lang` in another case is read as the agreement's, a blank one is refused), and
    `Forbidden` if the operator may not send from the office at this end of the channel.
    """

    def refuse(member: str, detail: str) -> Invalid:
        return Invalid(detail, fields={member: detail})

    if channel in (NODE_CHANNEL, LINK_CHANNEL):
        raise refuse("channel", f"channel {channel!r} is reserved for the nodes themselves")
    chan = ctx.agreement.channels.get(channel)
    if chan is None:
        raise refuse("channel", f"unknown channel {channel!r}; {_channels_of(ctx, operator)}")
    if ctx.party not in (party(office) for office in chan.offices):
        # In a group of states, a channel between two other parties: not "not bound to office pk:dgmo".
        a, b = chan.offices
        raise refuse("channel", f"channel {channel!r} links {a} and {b}, no office of {ctx.party}; "
                                f"{_channels_of(ctx, operator)}")  # fmt: skip
    if to not in chan.offices:
        raise refuse("to", f"office {to!r} is not at either end of channel {channel!r}")
    if to.split(":", 1)[0] == ctx.party:
        raise refuse("to", f"office {to!r} belongs to this node's own party")
    sender = chan.other(to)
    require_sender(operator, sender)
    try:
        prec = parse_precedence(precedence)
    except Invalid as exc:
        raise refuse("precedence", exc.detail) from None
    kind_def = notifications.get(kind)
    if kind_def.service:
        raise refuse("type", f"{kind} is sent with its own action, not as a message")
    notifications.check_route(kind, channel, prec, refs, ctx.agreement)
    notifications.validate_body(kind, body, ctx.agreement)
    require_words(kind, body)
    if lang is not None and not lang.strip():
        # Given but blank is a client's mistake, not a request for the operator's language.
        allowed = ", ".join(ctx.agreement.languages)
        raise refuse("lang", f"must not be blank: leave it out for your own language, or give one of {allowed}")
    # Language tags are case-insensitive (BCP 47): "UR" is the agreement's "ur".
    language = next((known for known in ctx.agreement.languages if lang and known.lower() == lang.lower()), None)
    language = language or lang or operator.lang
    if language not in ctx.agreement.languages:
        allowed = ", ".join(ctx.agreement.languages)
        raise refuse("lang", f"language {language!r} is not one of the agreement's: {allowed}")
    return Message(channel, to, sender, prec, kind, body, list(refs), case, language)


def _channels_of(ctx: NodeContext, operator: Operator) -> str:
    """Return the sentence naming the channels `operator` sends on (for a refusal that needs a hint)."""
    own = [name for name, c in sorted(ctx.agreement.channels.items()) if any(o in operator.offices for o in c.offices)]
    return f"your offices' channels: {', '.join(own)}" if own else "no channel links an office of yours"


def _check_refs(conn: Connection, refs: list[str], peer: str) -> None:
    # Who may refer to what is otherwise the workflows' rule (a liaison officer verifies an action
    # between two other offices), and an id is a random UUID one learns only by seeing it. In a group
    # of states a message may refer only to one exchanged with its recipient's party: the recipient
    # never had the others, and could not read what the reference means.
    for index, ref in enumerate(refs):
        where = f"refs.{index}"
        row = db.get_envelope(conn, ref)
        if row is None:
            raise Invalid(f"{where}: no envelope {ref} on this node", fields={where: "no such envelope on this node"})
        if peer not in (party(str(row["from_office"])), party(str(row["to_office"]))):
            said = f"{ref} was not exchanged with {peer}, which never had it"
            raise Invalid(f"{where}: {said}", fields={where: said})


def send_job(ctx: NodeContext, operator: Operator, message: Message) -> Callable[[Connection], Sent]:
    """Return the writer job that records a message `check_message` accepted.

    The job fills in the agreement's default deadlines, then runs every rule of the type against
    the envelope's actual `created` time (lead times, deadlines), checks the refs and the evidence
    files, and the workflows the message moves; it raises `Invalid` (with `fields`) or
    `InvalidTransition` before anything is written.
    """

    def job(conn: Connection) -> Sent:
        return _record_message(conn, ctx, operator, message)

    return job


def send_batch_job(ctx: NodeContext, operator: Operator, messages: list[Message]) -> Callable[[Connection], list[Sent]]:
    """Return the writer job that records several messages, in order, all or none.

    Each message is recorded as `send_job` records it, so a later message sees what an earlier
    one changed (its channel's sequence, a workflow it moved, an id it may refer to). The first
    that fails raises its error located at `messages.<i>` (`errors.located`); the writer then
    rolls the whole job back, so that nothing of the batch is written.
    """

    def job(conn: Connection) -> list[Sent]:
        out = []
        for i, message in enumerate(messages):
            try:
                out.append(_record_message(conn, ctx, operator, message))
            except Error as exc:
                raise located(exc, f"messages.{i}") from None
        return out

    return job


def _record_message(conn: Connection, ctx: NodeContext, operator: Operator, m: Message) -> Sent:
    # Acknowledged first: if the answer is refused below, the writer rolls both back.
    acknowledged = _acknowledge_by_answering(conn, ctx, operator, m) if m.refs else []
    created = now()
    if m.refs and not notifications.get(m.kind).service:
        created = _after_what_it_answers(conn, m.refs[0], created)
    full = notifications.with_defaults(m.kind, m.body, ctx.agreement, created)
    notifications.validate_message(
        m.kind, full, ctx.agreement, created=created, precedence=m.precedence, refs=m.refs, case=m.case, sending=True
    )
    _check_refs(conn, m.refs, m.peer)
    evidence.require_stored(conn, m.kind, full)
    events: list[Event] = []
    sealed, index = record_outgoing(
        conn, ctx, channel=m.channel, sender=m.sender, recipient=m.to, author=operator.id,
        precedence=m.precedence, kind=m.kind, body=full, refs=m.refs, case=m.case, lang=m.lang,
        created=created, strict=True, events=events,
    )  # fmt: skip
    evidence.link_outgoing(conn, sealed)
    data = {"type": m.kind, "precedence": m.precedence.value, "to": m.to}
    return Sent(sealed, index, "accepted", (*acknowledged, Event("sent", sealed.id, (m.sender,), data), *events))


def overdue_job(ctx: NodeContext, at: str) -> Callable[[Connection], list[Event]]:
    """Return the writer job that marks every unanswered message past its deadline as overdue.

    For each it records an `overdue` envelope (sent to the peer, so that both logs hold it) and
    notifies the alternates of this side's office.
    """

    def job(conn: Connection) -> list[Event]:
        events: list[Event] = []
        for row in db.due_for_overdue(conn, at):
            office = row["from_office"] if row["direction"] == "out" else row["to_office"]
            other = row["to_office"] if row["direction"] == "out" else row["from_office"]
            alternates = ctx.agreement.alternates(office)
            state = "overdue" if row["state"] in ("accepted", "delivered") else row["state"]
            db.update_envelope(conn, row["id"], overdue_at=at, state=state)
            sealed, _ = record_outgoing(
                conn, ctx, channel=row["channel"], sender=office, recipient=other, author=SYSTEM_AUTHOR,
                precedence=Precedence(row["precedence"]), kind="overdue",
                body={"deadline": row["deadline"], "notify": alternates}, refs=[row["id"]],
                case=row["case_id"], lang=ctx.agreement.languages[0],
            )  # fmt: skip
            data = {"overdue": sealed.id, "deadline": row["deadline"], "direction": row["direction"]}
            events.append(Event("overdue", row["id"], (office, *alternates), data))
        return events

    return job


def link_test_job(ctx: NodeContext, peer: str, nonce: str) -> Callable[[Connection], Envelope]:
    """Return the writer job that records a link test to `peer` (sent directly, never queued)."""
    own, theirs = ctx.agreement.party(ctx.party), ctx.agreement.party(peer)

    def job(conn: Connection) -> Envelope:
        sealed, _ = record_outgoing(
            conn, ctx, channel=LINK_CHANNEL, sender=own.node_office, recipient=theirs.node_office,
            author=SYSTEM_AUTHOR, precedence=Precedence.ROUTINE, kind="link.test", body={"nonce": nonce},
            refs=[], case=None, lang=ctx.agreement.languages[0], queue=False,
        )  # fmt: skip
        return sealed

    return job
