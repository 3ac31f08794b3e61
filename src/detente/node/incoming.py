"""Envelopes arriving from a peer, and the receipts a peer returns for ours.

A batch is checked envelope by envelope before anything is written (structure, the sender's
pinned signature, agreement, channel, type, body). The envelopes that pass are then stored in
order by writer jobs of at most `JOB_ENVELOPES`, each with its log entry and the receipt we
return; the receipts of a job are signed together, once (`core.receipts`), in its transaction. A
refusal stops its channel for the rest of the batch. A duplicate gets the receipt it got the first
time, and an envelope ahead of its channel's sequence is refused with the sequence expected, so
that the sender replays the missing range.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from detente.core import clocks, notifications, receipts, search
from detente.core import envelope as envelope_mod
from detente.core.agreement import LINK_CHANNEL, NODE_CHANNEL
from detente.core.envelope import Envelope
from detente.core.precedence import deadline_for, format_time, now, parse_time
from detente.core.translations import TYPES as TRANSLATION_TYPES
from detente.errors import Conflict, Error, Invalid, SequenceGap
from detente.node import codes, evidence, translations, workflow
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.store import links as links_db
from detente.store import messages as db

MAX_BATCH = 500
# A delivery batch is stored by writer jobs of at most this many envelopes: a FLASH message that
# reaches a busy node cuts in between two of them (`store.writer`, turns).
JOB_ENVELOPES = 16


@dataclass
class Received:
    """The answer to a delivery batch, or to a part of one: a receipt or an error per envelope, and the events."""

    results: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def check_envelope(ctx: NodeContext, party: str, raw: Any) -> Envelope:
    """Check one incoming envelope fully, without touching storage.

    Raises `Invalid`, `MalformedError` or `VerificationError` naming what is wrong.
    """
    env = envelope_mod.parse(raw if isinstance(raw, dict) else json.dumps(raw))
    if env.sender_party != party:
        raise Invalid(f"envelope {env.id} is from {env.sender}, but the request is from node {party!r}")
    if env.recipient_party != ctx.party:
        raise Invalid(f"envelope {env.id} is addressed to {env.recipient}, not to this node")
    # An envelope sealed before an amendment (it waited in the sender's outbox) is checked under
    # the agreement it names, with the key that agreement pinned. It arrives only in a request the
    # sender signed with its key in force, so a retired key alone cannot deliver one.
    try:
        sealed = ctx.sealed_under(env.data["agreement"])
    except Invalid:
        raise Invalid(f"envelope {env.id} is under another agreement than the one in force") from None
    if sealed is not ctx.agreement and party not in sealed.parties:
        raise Invalid(f"envelope {env.id} is under an earlier agreement that has no party {party!r}")
    env.verify(sealed.party(party).verifier())
    if env.channel in (NODE_CHANNEL, LINK_CHANNEL):
        expected = (f"{party}:node", f"{ctx.party}:node")
        if (env.sender, env.recipient) != expected:
            raise Invalid(f"channel {env.channel!r} links the nodes themselves")
    else:
        chan = ctx.agreement.channel(env.channel)
        if {env.sender, env.recipient} != set(chan.offices):
            raise Invalid(f"{env.sender} → {env.recipient} is not channel {env.channel!r}")
    # The sender's rules, measured from the envelope's own `created` (lead times, deadlines).
    notifications.validate_envelope(env, sealed)
    if (env.seq == 0) != (env.type == "link.test"):
        raise Invalid("only link tests are unsequenced (seq 0)")
    return env


def _error(env_id: str | None, exc: Error) -> dict[str, Any]:
    return {"id": env_id, **exc.to_json()}


@dataclass
class _Batch:
    """What one receive job knows without asking the database again.

    `stored` holds the rows already stored for the batch's ids (read with one query) and the
    envelopes stored by the job itself; `last_seq` the last sequence accepted per channel, read
    once per channel and written back once at the end of the job.
    """

    stored: dict[str, Any]
    last_seq: dict[str, int] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    unsigned: dict[str, dict[str, Any]] = field(default_factory=dict)  # receipt bodies, by envelope id


def receive_job(
    ctx: NodeContext,
    party: str,
    checked: list[Envelope | Error],
    ids: list[str | None],
    *,
    batch_receipts: bool = True,
    blocked: set[str] | None = None,
) -> Callable[[Connection], Received]:
    """Return the writer job that stores a checked batch and returns a result per envelope.

    With `batch_receipts` the receipts of the envelopes it stores share one signature; without, a
    sender of an earlier release gets the version 1 receipts it verifies (`core.receipts`).
    `blocked` collects the channels whose envelope was refused, so that the later envelopes of
    those channels are refused too: jobs storing one delivery batch in parts share one set.
    """
    refused: set[str] = set() if blocked is None else blocked  # channels whose later envelopes would gap

    def job(conn: Connection) -> Received:
        out = Received()
        batch = _Batch(dict(db.get_envelopes(conn, [e.id for e in checked if isinstance(e, Envelope)])))
        for item, env_id in zip(checked, ids, strict=True):
            if isinstance(item, Error):
                out.results.append(_error(env_id, item))
                continue
            if item.channel in refused and item.seq:
                out.results.append(
                    _error(item.id, Conflict("an earlier envelope of this channel in the batch was refused"))
                )
                continue
            try:
                receipt = _store_one(conn, ctx, party, item, out.events, batch)
            except Error as exc:
                refused.add(item.channel)
                out.results.append(_error(item.id, exc))
            else:
                out.results.append({"id": item.id, "receipt": receipt})
        for channel in sorted(batch.changed):
            db.set_in_seq(conn, party, channel, batch.last_seq[channel])
        if batch.unsigned:
            _sign(conn, ctx, batch, out.results, batch_receipts)
        return out

    return job


def _store_one(
    conn: Connection, ctx: NodeContext, party: str, env: Envelope, events: list[Event], batch: _Batch
) -> dict[str, Any] | None:
    """Store one checked envelope; return the receipt it got before, or None for a receipt to sign.

    Raises `Conflict`, `SequenceGap` or `Invalid` if the envelope cannot be stored.
    """
    existing = batch.stored.get(env.id)
    if existing is not None:
        if bytes(existing["raw"]) != env.raw or existing["direction"] != "in":
            raise Conflict(f"envelope id {env.id} is already used by different content")
        if env.id in batch.unsigned:
            return None  # stored by this job: it gets the receipt signed with the others
        return dict(json.loads(existing["receipt"]))
    if env.seq:
        last = batch.last_seq.get(env.channel)
        if last is None:
            last = batch.last_seq[env.channel] = db.last_in_seq(conn, party, env.channel)
        if env.seq <= last:
            raise Conflict(f"sequence {env.seq} of channel {env.channel!r} was already used by another envelope")
        if env.seq > last + 1:
            raise SequenceGap(
                f"channel {env.channel!r}: expected sequence {last + 1}, got {env.seq}",
                channel=env.channel, expected=last + 1, got=env.seq,
            )  # fmt: skip
    target = None
    if env.type in ("ack", "decline", "overdue"):
        target = db.get_envelope(conn, env.refs[0])
        if target is None:
            raise Invalid(f"{env.type} refers to unknown envelope {env.refs[0]}")
        # A notice travels on the channel of the message it is about (`outgoing.overdue_job`): on
        # another, it would alert that channel's offices about a message that is none of theirs.
        if env.type == "overdue" and target["channel"] != env.channel:
            raise Invalid(f"overdue refers to a message of channel {target['channel']!r}, not {env.channel!r}")
        if env.type != "overdue" and (target["direction"] != "out" or target["to_office"] != env.sender):
            raise Invalid(f"{env.type} refers to a message that was not sent to {env.sender}")
        answering = env.body.get("office")
        if env.type != "overdue" and answering and answering not in ctx.agreement.alternates(env.sender):
            raise Invalid(f"{env.type}: office {answering!r} is not an alternate of {env.sender}, the addressee")
    about = translations.check_incoming(conn, ctx, party, env) if env.type in TRANSLATION_TYPES else None
    received = format_time(now())
    index = db.append_log(conn, env.raw, env.id)
    batch.unsigned[env.id] = receipts.receipt_body(ctx.party, env, index, received)
    kind = notifications.get(env.type)
    created = parse_time(env.created)
    deadline = None
    if kind.needs_ack:
        # Measured from `created` as this node's clock reads that moment: a peer whose clock is
        # ahead would otherwise give this side less time than the agreement does (`core.clocks`).
        sent = parse_time(clocks.to_local(env.created, ctx.clock_offsets.get(party)))
        # The deadlines of the agreement it was sealed under, as the sender counts them (an amendment
        # may have changed them since it was queued).
        terms = ctx.sealed_under(env.data["agreement"]).deadlines(env.channel)
        deadline = format_time(deadline_for(sent, env.precedence, terms))
    # The row's `created` in the form this node writes (milliseconds), whatever form of RFC 3339 the
    # peer used, so that listing by time compares like with like (`since`, in `store.messages`).
    db.insert_envelope(
        conn, id=env.id, direction="in", peer=party, channel=env.channel, from_office=env.sender,
        to_office=env.recipient, seq=env.seq, type=env.type, precedence=env.precedence.value,
        author=env.data["author"], case_id=env.case, ref=env.refs[0] if env.refs else None,
        created=format_time(created), raw=env.raw, log_index=index, needs_ack=kind.needs_ack, deadline=deadline,
        state="delivered", receipt=None, delivered_at=received, recorded_at=received,
        words=search.words_of(env.data),  # what it is found by (`core.search`)
    )  # fmt: skip
    # A copy of the same envelope later in the batch gets this receipt, as it would from the table.
    batch.stored[env.id] = {"raw": env.raw, "direction": "in", "receipt": None}
    if env.seq:
        batch.last_seq[env.channel] = env.seq
        batch.changed.add(env.channel)
    summary = {"type": env.type, "precedence": env.precedence.value, "from": env.sender, "to": env.recipient}
    if target is not None:
        _apply_response(conn, ctx, party, env, target, received, events)
    elif env.type == "status":
        links_db.ensure_link(conn, party, received)
        links_db.update_link(
            conn, party, peer_status=env.body["code"], peer_status_note=env.body.get("note", ""),
            peer_status_at=in_local_clock(ctx, party, env.created, latest=received),
        )  # fmt: skip
        events.append(Event("status", env.id, (), {**summary, **env.body, "peer": party}, everyone=True))
    elif about is not None:
        events.append(translations.incoming_event(ctx, env, about))
    elif env.type != "link.test":
        rendered = codes.view(ctx.agreement, env.type, env.body, None)
        events.append(Event("message", env.id, (env.recipient,), {**summary, "deadline": deadline, **rendered}))
    # Workflows never refuse a stored envelope: a refusal is recorded as a conflict.
    events.extend(workflow.record(conn, ctx, env, strict=False))
    events.extend(evidence.note_incoming(conn, env, party))
    return None


def _sign(
    conn: Connection, ctx: NodeContext, batch: _Batch, results: list[dict[str, Any]], batch_receipts: bool
) -> None:
    """Sign the receipts of the envelopes this job stored, store them, and put them in `results`."""
    # The envelopes were inserted without their receipt, which one statement for all their rows
    # now fills in: signed together for a sender that asks, one by one for an earlier release.
    bodies = list(batch.unsigned.values())
    if batch_receipts:
        made = receipts.sign_receipts(ctx.signer, ctx.party, bodies)
    else:
        made = receipts.sign_receipts_v1(ctx.signer, bodies)
    signed = dict(zip(batch.unsigned, made, strict=True))
    db.update_envelopes(conn, [{"target_id": env_id, "receipt": json.dumps(r)} for env_id, r in signed.items()])
    for result in results:
        if "receipt" in result and result["receipt"] is None:
            result["receipt"] = signed[result["id"]]


def in_local_clock(ctx: NodeContext, party: str, stamp: str, *, latest: str, earliest: str = "") -> str:
    """Return a time `party` stamped, read in this node's clock and kept between two of this node's times.

    The offset is known to within a link test's round trip, so a converted time could fall a few
    milliseconds before what it follows (`earliest`: the message it answers, say) or after this
    node saw it (`latest`). Both are this node's stamps, in the one format, so they compare as text.
    Raises `Invalid` if `stamp` is not an RFC 3339 time.
    """
    local = format_time(parse_time(clocks.to_local(stamp, ctx.clock_offsets.get(party))))
    return min(max(local, earliest), latest)


def _apply_response(
    conn: Connection, ctx: NodeContext, party: str, env: Envelope, target: Any, at: str, events: list[Event]
) -> None:
    """Update the message an ack, decline or overdue refers to, and say so on the stream."""
    own_office = env.recipient
    offices = (own_office, *ctx.agreement.alternates(own_office))
    if env.type == "overdue":
        # A peer's notice counts once this node's clock agrees the deadline passed. Before that (its
        # clock is ahead) the notice stays in the log, and the message becomes overdue here when this
        # node's own watch sees its deadline pass, as if no notice had come.
        if target["overdue_at"] is None and target["deadline"] is not None and target["deadline"] <= at:
            state = "overdue" if target["state"] in ("accepted", "delivered") else target["state"]
            db.update_envelope(conn, target["id"], overdue_at=at, state=state)
        events.append(Event("overdue", target["id"], offices, {"overdue": env.id, "reported_by": env.sender}))
        return
    if target["response_id"] is not None:
        return  # the first answer stands; a second one is still logged above
    state = "acknowledged" if env.type == "ack" else "declined"
    note = env.body.get("reason") or env.body.get("note") or None
    db.update_envelope(
        conn, target["id"], state=state, response_id=env.id, response_type=env.type,
        response_at=in_local_clock(ctx, party, env.created, earliest=target["created"], latest=at),
        response_by=env.data["author"], response_office=env.body.get("office") or env.sender, response_note=note,
    )  # fmt: skip
    if target["overdue_at"] is None:
        offices = (own_office,)
    by = env.body.get("office") or env.sender
    events.append(Event(state, target["id"], offices, {"response": env.id, "by": by, "office": by, "note": note}))


def receipts_job(
    ctx: NodeContext, peer: str, receipts: list[tuple[Envelope, dict[str, Any]]]
) -> Callable[[Connection], list[Event]]:
    """Return the writer job that stores verified receipts and takes their envelopes off the outbox."""

    def job(conn: Connection) -> list[Event]:
        # One read, one update and one delete for the whole delivery batch, not three per envelope.
        rows = db.get_envelopes(conn, [env.id for env, _ in receipts])
        stored_at = format_time(now())
        events = []
        changes: list[dict[str, Any]] = []
        for env, receipt in receipts:
            row = rows.get(env.id)
            if row is None:
                continue
            state = "delivered" if row["state"] == "accepted" else row["state"]
            # Never before the message was sent, never after its receipt is stored here.
            delivered = in_local_clock(ctx, peer, receipt["received"], earliest=row["created"], latest=stored_at)
            values = {"receipt": json.dumps(receipt), "delivered_at": delivered, "state": state}
            changes.append({"target_id": env.id, **values})
            if env.type != "link.test":
                data = {"peer": peer, "log_index": receipt["log_index"], "type": env.type}
                events.append(Event("receipt", env.id, (env.sender,), data))
        db.update_envelopes(conn, changes)
        db.dequeue(conn, [c["target_id"] for c in changes])
        return events

    return job
