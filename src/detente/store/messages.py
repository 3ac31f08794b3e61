"""Queries on envelopes, the log, the outbox and sequence numbers.

Every function takes an open connection; the caller (the node, through the writer) owns the
transaction, so that an envelope, its log entry and its outbox or receipt row commit together.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    RowMapping,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from detente.core.search import Search
from detente.store import driver, logtail
from detente.store import search as search_db
from detente.store.tables import envelopes, log, outbox, sequences

# An envelope row: SQLAlchemy's from a query, a plain dict from the driver's cursor (`store.driver`).
EnvelopeRow = RowMapping | Mapping[str, Any]

STATES = ("accepted", "delivered", "acknowledged", "declined", "overdue")
_IN_CHUNK = 500  # ids per IN (...) list: within every backend's limit on bound parameters


# The statements of the hot path are built once with bound parameters and run on the driver's cursor
# (`store.driver`): a FLASH message crosses them on both nodes.
_SEQ_KEY = and_(
    sequences.c.direction == bindparam("k_direction"),
    sequences.c.peer == bindparam("k_peer"),
    sequences.c.channel == bindparam("k_channel"),
)
_SEQ_GET = select(sequences.c.last).where(_SEQ_KEY)
_SEQ_SET = update(sequences).where(_SEQ_KEY).values(last=bindparam("last"))
_SEQ_BUMP = update(sequences).where(_SEQ_KEY).values(last=sequences.c.last + 1).returning(sequences.c.last)
_SEQ_NEW = insert(sequences)
_ENVELOPE_NEW = insert(envelopes)
_ENVELOPE_SET = update(envelopes).where(envelopes.c.id == bindparam("target_id"))
_ENVELOPE_GET = select(envelopes).where(envelopes.c.id == bindparam("envelope_id"))
_ENVELOPE_PRECEDENCE = select(envelopes.c.precedence).where(envelopes.c.id == bindparam("envelope_id"))
_ENVELOPES_GET = select(envelopes).where(envelopes.c.id.in_(bindparam("envelope_ids", expanding=True)))
_OUTBOX_HAS = select(outbox.c.id).where(outbox.c.envelope_id == bindparam("envelope_id"))
_OUTBOX_NEW = insert(outbox)
_OUTBOX_DEL = delete(outbox).where(outbox.c.envelope_id == bindparam("envelope_id"))
# A peer's queue is read channel by channel, each from the index on (peer, channel, seq): the next
# channel after a given one (an index seek), then that channel's next rows in sequence order.


def _queued_channels_query() -> Select[tuple[str]]:
    # The seeks as one recursive statement: each step finds the channel after the last one found.
    # One statement at a time they cost k + 1 round trips for k channels, on every outbox read
    # (docs/performance.md, item 32).
    first = select(func.min(outbox.c.channel)).where(outbox.c.peer == bindparam("peer"))
    found = select(first.scalar_subquery().label("channel")).cte("queued", recursive=True)
    after = first.where(outbox.c.channel > found.c.channel).scalar_subquery()
    found = found.union_all(select(after).where(found.c.channel.is_not(None)))
    return select(found.c.channel).where(found.c.channel.is_not(None))


_QUEUED_CHANNELS = _queued_channels_query()
_OUTBOX_RUN = (
    select(outbox.c.id, envelopes.c.raw, outbox.c.channel, outbox.c.seq)
    .join(envelopes, envelopes.c.id == outbox.c.envelope_id)
    .where(outbox.c.peer == bindparam("peer"), outbox.c.channel == bindparam("channel"))
    .where(outbox.c.seq > bindparam("after_seq", type_=Integer))
    .order_by(outbox.c.seq)
    .limit(bindparam("limit", type_=Integer))
)


def next_log_index(conn: Connection) -> int:
    """Return the index the next log entry will take (the current log size)."""
    return logtail.log_size(conn)


def log_size(conn: Connection) -> int:
    """Return the number of entries in the log."""
    return next_log_index(conn)


def append_log(conn: Connection, leaf: bytes, envelope_id: str) -> int:
    """Append one leaf to the log, with its stored Merkle hashes, and return its index.

    The rows are written before the next statement on `conn` or its commit (`store.logtail`).
    """
    return logtail.append(conn, leaf, envelope_id)


def read_leaves(conn: Connection, start: int, end: int) -> list[bytes]:
    """Return the leaves with start <= index < end, in order."""
    rows = conn.execute(select(log.c.leaf).where(log.c.idx >= start, log.c.idx < end).order_by(log.c.idx))
    return [bytes(r[0]) for r in rows]


def next_seq(conn: Connection, peer: str, channel: str) -> int:
    """Allocate the next outgoing sequence number for (peer, channel)."""
    # One statement on the hot path (UPDATE ... RETURNING, SQLite >= 3.35 and PostgreSQL); the
    # INSERT only for a channel's first message.
    bumped = driver.scalar(conn, _SEQ_BUMP, {"k_direction": "out", "k_peer": peer, "k_channel": channel})
    if bumped is None:
        driver.execute(conn, _SEQ_NEW, {"direction": "out", "peer": peer, "channel": channel, "last": 1})
        return 1
    return int(bumped)


def last_in_seq(conn: Connection, peer: str, channel: str) -> int:
    """Return the last sequence number accepted from `peer` on `channel` (0 if none)."""
    value = driver.scalar(conn, _SEQ_GET, {"k_direction": "in", "k_peer": peer, "k_channel": channel})
    return 0 if value is None else int(value)


def set_in_seq(conn: Connection, peer: str, channel: str, seq: int) -> None:
    """Record `seq` as the last sequence number accepted from `peer` on `channel`."""
    if driver.execute(conn, _SEQ_SET, {"k_direction": "in", "k_peer": peer, "k_channel": channel, "last": seq}) == 0:
        driver.execute(conn, _SEQ_NEW, {"direction": "in", "peer": peer, "channel": channel, "last": seq})


def insert_envelope(conn: Connection, **values: Any) -> None:
    """Insert one envelope row (see `tables.envelopes` for the columns)."""
    driver.execute(conn, _ENVELOPE_NEW, values)


def get_envelope(conn: Connection, envelope_id: str) -> EnvelopeRow | None:
    """Return the envelope row with this id, or None."""
    found = driver.mappings(conn, _ENVELOPE_GET, {"envelope_id": envelope_id})
    return found[0] if found else None


def referring(conn: Connection, envelope_id: str) -> list[dict[str, object]]:
    """Return what each envelope about this one is (an ack, decline, overdue notice, a workflow
    answer): its id, type, sender, place in this node's log and time, in log order."""
    query = (
        select(envelopes.c.id, envelopes.c.type, envelopes.c.from_office, envelopes.c.log_index, envelopes.c.created)
        .where(envelopes.c.ref == envelope_id)
        .order_by(envelopes.c.log_index)
    )
    return [
        {"id": r.id, "type": r.type, "from": r.from_office, "log_index": r.log_index, "created": r.created}
        for r in conn.execute(query)
    ]


def precedence_of(conn: Connection, envelope_id: str) -> str | None:
    """Return the precedence of the envelope with this id, or None if there is none."""
    found = driver.scalar(conn, _ENVELOPE_PRECEDENCE, {"envelope_id": envelope_id})
    return None if found is None else str(found)


def get_envelopes(conn: Connection, envelope_ids: Sequence[str]) -> dict[str, EnvelopeRow]:
    """Return the envelope rows with these ids, by id (ids not stored are absent)."""
    if len(envelope_ids) == 1:  # a FLASH message's batch: the one-row statement, on the driver's cursor
        one = get_envelope(conn, envelope_ids[0])
        return {} if one is None else {str(one["id"]): one}
    found: dict[str, EnvelopeRow] = {}
    for i in range(0, len(envelope_ids), _IN_CHUNK):
        rows = conn.execute(_ENVELOPES_GET, {"envelope_ids": list(envelope_ids[i : i + _IN_CHUNK])}).mappings()
        for row in rows:
            found[str(row["id"])] = row
    return found


def update_envelope(conn: Connection, envelope_id: str, **values: Any) -> None:
    """Update columns of one envelope row."""
    # The SET clause comes from the keys of the parameters; the WHERE binds `target_id`.
    driver.execute(conn, _ENVELOPE_SET, {"target_id": envelope_id, **values})


def update_envelopes(conn: Connection, changes: Sequence[dict[str, Any]]) -> None:
    """Update several envelope rows with one statement: each dict holds `target_id` and the same columns."""
    driver.executemany(conn, _ENVELOPE_SET, changes)


class Page(NamedTuple):
    """Envelope rows, oldest first, and whether older rows match the filters too."""

    rows: list[RowMapping]
    more: bool


def list_envelopes(
    conn: Connection,
    *,
    offices: Sequence[str] | None,
    escalated: Sequence[str] = (),
    direction: str | None = None,
    channel: str | None = None,
    state: str | None = None,
    since: str | None = None,
    types: Sequence[str] | None = None,
    exclude_types: Sequence[str] = (),
    case_id: str | None = None,
    search: Search | None = None,
    before: int | None = None,
    limit: int = 200,
) -> Page:
    """Return the envelope rows matching the filters: the newest `limit`, oldest first.

    `offices` limits the rows to those sent from or to one of these offices (None: no limit), and
    the received messages to an office of `escalated` once they are overdue (an alternate's);
    `since` is a time as `core.precedence.format_time` writes it (rows created at or after it).
    `search` adds a search's filters (`store.search`: words, a window, precedences, a peer, an id's
    end), and `before` keeps the rows below that log index (a page of older ones).
    """
    query = select(envelopes)
    if offices is not None:
        mine: list[ColumnElement[bool]] = [envelopes.c.from_office.in_(offices), envelopes.c.to_office.in_(offices)]
        if escalated:
            mine.append(
                and_(
                    envelopes.c.direction == "in",
                    envelopes.c.overdue_at.is_not(None),
                    envelopes.c.to_office.in_(escalated),
                )
            )
        query = query.where(or_(*mine))
    if direction:
        query = query.where(envelopes.c.direction == direction)
    if channel:
        query = query.where(envelopes.c.channel == channel)
    if state:
        query = query.where(envelopes.c.state == state)
    if since:
        # Every row's `created` has the same fixed-width form (an incoming envelope's is rewritten
        # to it when stored), so comparing the text compares the times.
        query = query.where(envelopes.c.created >= since)
    if types:
        query = query.where(envelopes.c.type.in_(types))
    if exclude_types:
        query = query.where(envelopes.c.type.not_in(exclude_types))
    if case_id:
        query = query.where(envelopes.c.case_id == case_id)
    if search is not None:
        query = query.where(*search_db.conditions(search))
    if before is not None:
        query = query.where(envelopes.c.log_index < before)
    # One row more than asked says whether the page holds everything.
    rows = list(conn.execute(query.order_by(envelopes.c.log_index.desc()).limit(limit + 1)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return Page(rows, more)


def newest_created(conn: Connection, target: str) -> str | None:
    """Return the newest `created` of the envelope `target` and of those whose first ref is it (or None)."""
    found = conn.execute(
        select(func.max(envelopes.c.created)).where(or_(envelopes.c.id == target, envelopes.c.ref == target))
    ).scalar()
    return None if found is None else str(found)


def due_for_overdue(conn: Connection, now: str, limit: int = 500) -> list[RowMapping]:
    """Return unanswered envelopes that need a person's acknowledgement and whose deadline passed."""
    query = (
        select(envelopes)
        .where(
            envelopes.c.needs_ack.is_(True),
            envelopes.c.response_id.is_(None),
            envelopes.c.overdue_at.is_(None),
            envelopes.c.deadline < now,
        )
        .order_by(envelopes.c.deadline)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def next_deadline(conn: Connection) -> str | None:
    """Return the earliest pending deadline, or None."""
    return conn.execute(
        select(func.min(envelopes.c.deadline)).where(
            envelopes.c.needs_ack.is_(True),
            envelopes.c.response_id.is_(None),
            envelopes.c.overdue_at.is_(None),
        )
    ).scalar()


def enqueue(conn: Connection, envelope_id: str, peer: str, channel: str, seq: int, *, new: bool = False) -> None:
    """Queue an envelope for delivery to `peer` (ignored if it is already queued).

    `new` says the envelope was created in this transaction and cannot be queued yet, which
    spares the lookup.
    """
    if new or not driver.rows(conn, _OUTBOX_HAS, {"envelope_id": envelope_id}):
        driver.execute(conn, _OUTBOX_NEW, {"envelope_id": envelope_id, "peer": peer, "channel": channel, "seq": seq})


OutboxRow = tuple[int, bytes, str, int]


def outbox_batch(
    conn: Connection,
    peer: str,
    limit: int,
    after: Mapping[str, int] | None = None,
    skip: Collection[str] = (),
) -> list[OutboxRow]:
    """Return up to `limit` queued envelopes for `peer`: (outbox id, raw bytes, channel, seq).

    Each channel's rows come in sequence order, as its receiver needs them, and the channels take
    turns (the first row of each, then the second, ...): a message on a quiet channel, a FLASH
    among ROUTINE traffic on the others, never waits behind another channel's backlog. `after`
    leaves out, per channel, the sequence numbers up to the one given (a batch still in flight);
    `skip` leaves out whole channels (another request is carrying them).
    """
    after = after or {}
    channels = [channel for channel in _queued_channels(conn, peer) if channel not in skip]
    runs: dict[str, list[OutboxRow]] = {channel: [] for channel in channels}
    wanted, reading = limit, channels
    # Each channel still reading gets an equal share of what is wanted; a channel that had fewer
    # rows than its share leaves the rest to the others in the next round.
    while reading and wanted > 0:
        share = -(-wanted // len(reading))
        full = []
        for channel in reading:
            run = runs[channel]
            start = run[-1][3] if run else after.get(channel, 0)
            params = {"peer": peer, "channel": channel, "after_seq": start, "limit": share}
            got = [(int(r[0]), bytes(r[1]), str(r[2]), int(r[3])) for r in driver.rows(conn, _OUTBOX_RUN, params)]
            run.extend(got)
            wanted -= len(got)
            if len(got) == share:
                full.append(channel)
        reading = full
    turns = max((len(run) for run in runs.values()), default=0)
    interleaved = [runs[c][rank] for rank in range(turns) for c in channels if rank < len(runs[c])]
    # Cutting the last turn short keeps every channel's rows a prefix of its queue.
    return interleaved[:limit]


def _queued_channels(conn: Connection, peer: str) -> list[str]:
    """Return the channels with envelopes queued for `peer`, in order: one statement, one index seek each."""
    return [str(row[0]) for row in driver.rows(conn, _QUEUED_CHANNELS, {"peer": peer})]


def outbox_depth(conn: Connection, peer: str | None = None) -> int:
    """Return how many envelopes wait for delivery (to `peer`, or to anyone)."""
    query = select(func.count()).select_from(outbox)
    if peer:
        query = query.where(outbox.c.peer == peer)
    return int(conn.execute(query).scalar() or 0)


def dequeue(conn: Connection, envelope_ids: Sequence[str]) -> None:
    """Remove delivered envelopes from the outbox."""
    # One indexed delete per id, all in one driver call: cheaper here than an `IN` list, which
    # SQLAlchemy must expand at each execution.
    driver.executemany(conn, _OUTBOX_DEL, [{"envelope_id": envelope_id} for envelope_id in envelope_ids])


def note_delivery_error(conn: Connection, envelope_id: str, error: str) -> None:
    """Count a failed delivery attempt and keep its error for the operators."""
    conn.execute(
        update(outbox)
        .where(outbox.c.envelope_id == envelope_id)
        .values(attempts=outbox.c.attempts + 1, last_error=error[:500])
    )


def refused_heads(conn: Connection, peer: str) -> list[dict[str, Any]]:
    """Return, per channel to `peer`, the first queued envelope the peer refused, with its error.

    The peer accepts each channel in sequence, so everything queued behind a refused envelope waits
    for it: the channel is stalled until a person acts (`docs/architecture.md`).
    """
    rows = conn.execute(
        select(outbox.c.channel, outbox.c.envelope_id, outbox.c.seq, outbox.c.attempts, outbox.c.last_error)
        .where(outbox.c.peer == peer, outbox.c.last_error.is_not(None))
        .order_by(outbox.c.channel, outbox.c.seq)
    ).mappings()
    heads: dict[str, dict[str, Any]] = {}
    for row in rows:
        heads.setdefault(row["channel"], dict(row))
    for head in heads.values():
        behind = select(func.count()).where(
            outbox.c.peer == peer, outbox.c.channel == head["channel"], outbox.c.seq > head["seq"]
        )
        head["waiting_behind"] = int(conn.execute(behind.select_from(outbox)).scalar_one())
    return list(heads.values())


def requeue_from(conn: Connection, peer: str, channel: str, seq: int) -> int:
    """Queue again every envelope sent to `peer` on `channel` from `seq` on; return how many."""
    rows = conn.execute(
        select(envelopes.c.id, envelopes.c.seq).where(
            envelopes.c.direction == "out",
            envelopes.c.peer == peer,
            envelopes.c.channel == channel,
            envelopes.c.seq >= seq,
        )
    ).all()
    for envelope_id, envelope_seq in rows:
        enqueue(conn, str(envelope_id), peer, channel, int(envelope_seq))
    return len(rows)


def receipt_of(row: EnvelopeRow) -> dict[str, Any] | None:
    """Return the decoded receipt stored on an envelope row."""
    return None if row["receipt"] is None else dict(json.loads(row["receipt"]))
