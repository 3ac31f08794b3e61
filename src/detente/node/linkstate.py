"""The state of the link to each peer: UP, DEGRADED or DOWN, from every contact attempt.

Every delivery and every link test is a contact attempt. One that gets a signed answer makes the
link UP; after a failure the link is DEGRADED, and after `DOWN_AFTER` failures in a row it is
DOWN. A link is DOWN until the peer has answered once. Each change is kept in `link_events`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from detente.core.precedence import format_time, now
from detente.node.events import Event
from detente.store import links as db

DOWN_AFTER = 3


def contact_job(
    peer: str, ok: bool, *, rtt_ms: float | None = None, error: str | None = None, test: bool = False
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
