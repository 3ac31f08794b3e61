"""The body a drill step sends: the scenario's drill times turned into wall times the nodes accept.

The scenario writes times inside bodies in drill time. The nodes keep wall-clock time, so each is
sent as the wall time that lies as far from now, along the clock's plan, as the drill time lies
from the drill clock (`ClockRun.body_time`): a notified window starts in the nodes' future, an
execution's `started` falls inside it, an incident's `time` is in the past. Where the nodes'
agreement asks a real lead time, the window moves later and the step says so in its notes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detente.core import codebook
from detente.core.drill_clock import ClockRun
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration
from detente.core.scenario_plan import Step, with_times
from detente.core.workflows_consultation import minutes_digest
from detente.node.drill_types import FUTURE_MARGIN, StepResult


def wall_body(
    step: Step, wall: datetime, result: StepResult, *, clock: ClockRun, bodies: dict[str, dict[str, Any]],
    agreement: dict[str, Any], speed: float,
) -> dict[str, Any]:  # fmt: skip
    """Return the step's body with drill times turned into wall times, sent at `wall`.

    `bodies` holds the bodies already sent, by step label (an execution falls inside its
    operation's window, minutes are co-signed by their digest); `agreement` is the nodes'
    agreement (its lead times). Notes on moved windows go to `result.notes`.
    """
    m = step.message
    assert m is not None

    def convert(path: tuple[str, ...], moment: datetime) -> str:
        value = clock.body_time(moment, wall)
        if moment > step.at:
            value = max(value, wall + FUTURE_MARGIN)
        return format_time(value)

    body = with_times(m.body, m.time_paths, convert)
    window = body.get("window")
    if isinstance(window, dict) and "start" in window and "end" in window:
        start, end = parse_time(window["start"]), parse_time(window["end"])
        original = m.body["window"]
        if end <= start:
            length = (parse_time(original["end"]) - parse_time(original["start"])) / speed
            window["end"] = format_time(start + max(length, timedelta(seconds=1)))
        lead = codebook.lead_time(agreement, m.type)
        if lead is not None and start - wall < lead + FUTURE_MARGIN:
            shift = lead + FUTURE_MARGIN - (start - wall)
            window["start"] = format_time(start + shift)
            window["end"] = format_time(parse_time(window["end"]) + shift)
            result.notes.append(
                f"window moved {format_duration(shift)} later on the wall clock: the nodes' agreement asks "
                f"{format_duration(lead)} of real lead time for {m.type}"
            )
    if m.type == "action.execute":
        opener = bodies.get(m.refs[0], {}).get("window", {})
        if "start" in opener and "end" in opener:
            started = parse_time(body["started"])
            low, high = parse_time(opener["start"]), min(parse_time(opener["end"]), wall)
            clamped = max(low, min(started, high)) if low <= high else wall
            body["started"] = format_time(clamped)
            if low > high:
                result.notes.append("executed before its (moved) window on the wall clock: compression artefact")
    if m.digest_of is not None:
        body["sha256"] = minutes_digest(bodies[m.digest_of])
    return body
