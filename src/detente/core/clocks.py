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
# Seconds: a signed request whose time disagrees more than this with the measured offset makes it
# stale. Well above the stamp's own second of resolution and a request's queueing on a loaded node,
# so that load is never taken for a clock change; far below what would matter to a deadline.
RESTAMP = 5.0


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


def amount(seconds: float, long: str = "{minutes} min {seconds} s", short: str = "{seconds:.1f} s") -> str:
    """Return a clock difference for people: "4 min 0 s", "1.5 s" (its sign dropped).

    `long` (a minute or more) and `short` are the forms, for a translated interface to give its own.
    """
    seconds = abs(seconds)
    if seconds >= 60:
        return long.format(minutes=int(seconds // 60), seconds=int(seconds % 60))
    return short.format(seconds=seconds)


def describe(offset_ms: float | None) -> str | None:
    """Return a warning for an offset beyond the tolerance: "its clock is 4 min 0 s ahead of ours"."""
    if not skewed(offset_ms):
        return None
    assert offset_ms is not None
    return f"its clock is {amount(offset_ms / 1000)} {'ahead of' if offset_ms > 0 else 'behind'} ours"


def stale(offset_ms: float | None, request_offset: int) -> bool:
    """Whether a peer's signed request time (whole seconds) shows the measured offset no longer holds.

    The request's stamp is the peer's clock floored to the second and read here after its transit,
    so it says the offset to within a second or two; a disagreement beyond `RESTAMP` seconds means
    the peer's clock moved (NTP stepped it, or someone set it) since the last link test.
    """
    known = 0.0 if offset_ms is None else offset_ms / 1000
    return abs(request_offset - known) > RESTAMP
