"""The state of the link to each peer: UP, DEGRADED or DOWN, from every contact attempt.

Every delivery and every link test is a contact attempt. One that gets a signed answer makes the
link UP; after a failure the link is DEGRADED, and after `DOWN_AFTER` failures in a row it is
DOWN. A link is DOWN until the peer has answered once, and again from each start of this node
until the peer answers after it (`started_job`). Each change is kept in `link_events`.
A link test also measures the peer's clock (`core.clocks`). `link_views` is what the API, the
command line and the console show of each link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from detente.core import clocks
from detente.core.precedence import format_time, now
from detente.node.events import Event
from detente.store import links as db
from detente.store import messages as messages_db

DOWN_AFTER = 3
log = logging.getLogger("detente.link")


def contact_job(
    peer: str,
    ok: bool,
    *,
    rtt_ms: float | None = None,
    clock_offset_ms: float | None = None,
    error: str | None = None,
    test: bool = False,
) -> Callable[[Connection], Event | None]:
    """Return the writer job that records one contact attempt and returns the state-change event, if any."""

    def job(conn: Connection) -> Event | None:
        at = format_time(now())
        db.ensure_link(conn, peer, at)
        row = db.get_link(conn, peer)
        assert row is not None
        failures = 0 if ok else int(row["failures"]) + 1
        if ok:
            state = "UP"
        else:
            state = "DOWN" if failures >= DOWN_AFTER or row["state"] == "DOWN" else "DEGRADED"
        values: dict[str, Any] = {"failures": failures}
        if test:
            values["last_test_at"] = at
        if ok:
            values["last_ok_at"] = at
            values["last_error"] = None
            if rtt_ms is not None:
                values["rtt_ms"] = rtt_ms
            if clock_offset_ms is not None:
                values["clock_offset_ms"] = clock_offset_ms
        else:
            values["last_error"] = (error or "no answer")[:500]
        changed = state != row["state"]
        if changed:
            values["state"] = state
            values["since"] = at
            db.record_link_event(conn, peer, state, at, error or "answered")
        db.update_link(conn, peer, **values)
        if not changed:
            return None
        return Event("link", None, (), {"peer": peer, "state": state, "reason": error or "answered"}, everyone=True)

    return job


def logged(event: Event | None) -> Event | None:
    """Write a link's change of state, once committed, to the node's log; return `event`.

    The technician reads the log of `serve`, not `link_events` (QA of a degraded link: a link that
    went DOWN left no line there). Every change is a warning, its return to UP too: the log level
    of `serve` shows warnings, and an outage's end belongs beside its start.
    """
    if event is not None and event.kind == "link":
        log.warning("link to %s is %s: %s", event.data["peer"], event.data["state"], event.data["reason"])
    return event


def started_job() -> Callable[[Connection], None]:
    """Return the writer job run as this node starts: a link UP or DEGRADED before is DOWN from now on."""

    def job(conn: Connection) -> None:
        at = format_time(now())
        reason = "this node started; no answer since"
        for row in db.all_links(conn):
            # The stored state is from before this node stopped: while it was not running it knew
            # nothing of the link, so "UP since" must not span its outage. A link already DOWN has
            # been down all along and keeps its `since`; `link_events` keeps the earlier changes.
            if row["state"] != "DOWN":
                db.update_link(conn, row["peer"], state="DOWN", since=at, failures=0, last_error=reason)
                db.record_link_event(conn, row["peer"], "DOWN", at, reason)

    return job


@dataclass(frozen=True)
class LinkView:
    """The state of the link to one peer, as operators see it."""

    peer: str
    state: str
    since: str | None
    last_test_at: str | None
    last_ok_at: str | None
    rtt_ms: float | None
    clock_offset_ms: float | None  # the peer's clock minus ours, at the last link test
    last_error: str | None
    outbox: int
    peer_status: str | None
    peer_status_note: str | None
    peer_status_at: str | None
    failures: int
    # The newest status each office of the peer told us, and each of ours told the peer, newest first:
    # {office, code, note, at, id}. A status is an office's word, not the whole party's.
    their_statuses: tuple[dict[str, Any], ...] = ()
    our_statuses: tuple[dict[str, Any], ...] = ()
    # Per channel, the queued envelope the peer refused and how many wait behind it: the peer
    # answers (the link is UP), yet nothing more goes on that channel until a person acts.
    refused: tuple[dict[str, Any], ...] = ()

    @property
    def clock_warning(self) -> str | None:
        """A warning when the peer's clock is off ours beyond the tolerance (`core.clocks`)."""
        return clocks.describe(self.clock_offset_ms)


def link_views(conn: Connection, peers: list[str]) -> list[LinkView]:
    """Return the link to every peer (DOWN, "never contacted", until the first contact)."""
    rows = {r["peer"]: r for r in db.all_links(conn)}
    out = []
    for peer in peers:
        row = rows.get(peer)
        out.append(
            LinkView(
                peer=peer,
                state=row["state"] if row else "DOWN",
                since=row["since"] if row else None,
                last_test_at=row["last_test_at"] if row else None,
                last_ok_at=row["last_ok_at"] if row else None,
                rtt_ms=row["rtt_ms"] if row else None,
                clock_offset_ms=row["clock_offset_ms"] if row else None,
                last_error=row["last_error"] if row else "never contacted",
                outbox=messages_db.outbox_depth(conn, peer),
                peer_status=row["peer_status"] if row else None,
                peer_status_note=row["peer_status_note"] if row else None,
                peer_status_at=row["peer_status_at"] if row else None,
                failures=row["failures"] if row else 0,
                their_statuses=tuple(db.latest_statuses(conn, "in", peer)),
                our_statuses=tuple(db.latest_statuses(conn, "out", peer)),
                refused=tuple(messages_db.refused_heads(conn, peer)),
            )
        )
    return out
