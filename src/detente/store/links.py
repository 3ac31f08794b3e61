"""Queries on the state of the link to each peer, and the statuses the two sides tell each other."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from detente.core.agreement import NODE_CHANNEL
from detente.store.tables import envelopes, link_events, links


def get_link(conn: Connection, peer: str) -> RowMapping | None:
    """Return the link row of `peer`, or None before the first contact."""
    return conn.execute(select(links).where(links.c.peer == peer)).mappings().first()


def all_links(conn: Connection) -> list[RowMapping]:
    """Return every link row."""
    return list(conn.execute(select(links).order_by(links.c.peer)).mappings())


def ensure_link(conn: Connection, peer: str, at: str) -> None:
    """Create the link row of `peer` in state DOWN (nothing heard yet) if it does not exist."""
    if get_link(conn, peer) is None:
        conn.execute(insert(links).values(peer=peer, state="DOWN", since=at, failures=0))


def update_link(conn: Connection, peer: str, **values: object) -> None:
    """Update columns of the link row of `peer`."""
    conn.execute(update(links).where(links.c.peer == peer).values(**values))


def keep_accepts(conn: Connection, peer: str, accepts: str, at: str) -> None:
    """Keep what `peer` said it accepts, as its `detente-accepts` header names it ("" for nothing).

    Creates the link row (`ensure_link`) if the peer spoke before this node ever contacted it.
    """
    ensure_link(conn, peer, at)
    update_link(conn, peer, accepts=accepts)


def record_link_event(conn: Connection, peer: str, state: str, at: str, reason: str) -> None:
    """Keep a link state change for later reports."""
    conn.execute(insert(link_events).values(peer=peer, state=state, at=at, reason=reason[:500]))


def link_history(conn: Connection, peer: str | None = None) -> list[RowMapping]:
    """Return the recorded link state changes, oldest first."""
    query = select(link_events).order_by(link_events.c.id)
    if peer:
        query = query.where(link_events.c.peer == peer)
    return list(conn.execute(query).mappings())


def latest_statuses(conn: Connection, direction: str, peer: str, limit: int = 64) -> list[dict[str, Any]]:
    """Return the newest `status` each office told (direction "out": we told `peer`; "in": `peer` told us).

    One dict per office, newest first: `office`, `code`, `note`, `at` (the envelope's `created`),
    `id`. Statuses travel on the `node` channel, so its last `limit` envelopes, read through the
    sequence index, hold them all; an office silent since then is not listed.
    """
    rows = conn.execute(
        select(envelopes.c.id, envelopes.c.raw, envelopes.c.created)
        .where(
            envelopes.c.direction == direction,
            envelopes.c.peer == peer,
            envelopes.c.channel == NODE_CHANNEL,
            envelopes.c.seq > 0,
            envelopes.c.type == "status",
        )
        .order_by(envelopes.c.seq.desc())
        .limit(limit)
    )
    newest: dict[str, dict[str, Any]] = {}
    for envelope_id, raw, created in rows:
        body = json.loads(bytes(raw))["body"]
        office = str(body.get("office", ""))
        if office not in newest:
            note = str(body.get("note", ""))
            newest[office] = {"office": office, "code": body["code"], "note": note, "at": created, "id": envelope_id}
    return list(newest.values())
