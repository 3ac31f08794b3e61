"""The peers' clocks, as this node measures them, and the times they stamp, in this node's clock.

Deadlines are measured from an envelope's `created`, stamped by its sender's clock, and federation
requests are accepted within ±5 minutes (`core.wire.MAX_SKEW_SECONDS`). A peer whose clock is
ahead within that tolerance would make every message it sends look older here: its deadlines would
pass early on this node, its `overdue` notices would arrive before the deadline, and alternates
would be alerted early. So each link test measures the peer's offset, NTP-style: the peer stamps its
receipt (`received`, milliseconds) while the request travels, and

    offset = received - (sent + round trip / 2)

is the peer's clock minus this node's, to within half the round trip. Beyond `TOLERANCE` the node
reads the peer's stamps in its own clock (`to_local`): an incoming message's deadline, a receipt's
delivery time. Within it (clocks kept by NTP agree to milliseconds) nothing is corrected, so both
nodes show the same deadline for the same message. The offset is kept per link (`links.clock_offset_ms`)
and shown, with a warning beyond the tolerance, in `GET /api/v1/links`, `detente links` and the console.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from detente.core.precedence import format_time, parse_time

TOLERANCE = 1.0  # seconds: clocks closer than this are taken as agreeing


def measured_offset(received: str, sent: float, round_trip: float) -> float:
    """Return the peer's clock minus ours, in seconds, from one link test.

    `received` is the peer's receipt time (RFC 3339), `sent` this node's Unix time when the request
    left, `round_trip` the seconds until the answer came. Raises `Invalid` for a bad time.
    """
    return parse_time(received).timestamp() - (sent + round_trip / 2)


def skewed(offset_ms: float | None) -> bool:
    """Whether a measured offset is beyond the tolerance (None: never measured)."""
    return offset_ms is not None and abs(offset_ms) >= TOLERANCE * 1000


def to_local(stamp: str, offset_ms: float | None) -> str:
    """Return the peer's time `stamp` in this node's clock (unchanged within the tolerance).

    Raises `Invalid` if `stamp` is not an RFC 3339 time.
    """
    if not skewed(offset_ms):
        return stamp
    assert offset_ms is not None
    moment: datetime = parse_time(stamp) - timedelta(milliseconds=offset_ms)
    return format_time(moment)


def describe(offset_ms: float | None) -> str | None:
    """Return a warning for an offset beyond the tolerance: "its clock is 4 min 0 s ahead of ours"."""
    if not skewed(offset_ms):
        return None
    assert offset_ms is not None
    seconds = abs(offset_ms) / 1000
    amount = f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.1f} s"
    return f"its clock is {amount} {'ahead of' if offset_ms > 0 else 'behind'} ours"
