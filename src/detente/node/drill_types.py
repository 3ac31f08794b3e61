"""What a drill run is made of: its options, its feed, what happened to each step, what it leaves.

Also `preflight` (can these nodes play this plan?) and `clock_plan` (the clock of a run), which the
CLI uses before anything runs, and the bounds of the options (`speed_problem`, `pause_problem`),
which the CLI checks as usage errors and `DrillOptions` checks again for any other caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detente.core import notifications
from detente.core.drill_clock import ClockPlan
from detente.core.scenario import SPEED_RANGE, format_duration
from detente.core.scenario_plan import Plan
from detente.errors import Error, Invalid
from detente.node.drill_client import Target

FUTURE_MARGIN = timedelta(seconds=2)  # a future time in a body lies at least this far ahead of sending
# The real seconds an alternate office's scripted answer waits, past the node's wall-clock deadline,
# for the node's overdue record (its overdue check runs every few seconds).
OVERDUE_GRACE = 5.0
OUTAGE_REAL_SECONDS = 8.0  # an outage lasts at least this long on the wall clock, so link tests notice it
# The real seconds shown at a time jump: a pause is there to be seen, and the January 2024 drill
# has 42 and 73 jumps in its two variants, so a minute each is already over an hour of waiting.
MAX_PAUSE = 60.0


def speed_problem(speed: float) -> str | None:
    """Return why `speed` cannot be a drill's speed (the bounds of a scenario's `speed:`), or None."""
    low, high = SPEED_RANGE
    if not math.isfinite(speed) or not low <= speed <= high:
        return f"{speed:g} is not a speed: give drill seconds per real second, from {low:g} to {high:.0f}"
    return None


def pause_problem(pause: float) -> str | None:
    """Return why `pause` cannot be the real seconds shown at each time jump, or None."""
    if not math.isfinite(pause) or not 0 <= pause <= MAX_PAUSE:
        return f"{pause:g} is not a pause: give real seconds, from 0 to {MAX_PAUSE:g}"
    return None


class DrillIncomplete(Error):
    """Steps failed because the drill could not act on the nodes: the report does not measure the response."""


class DrillStepsFailed(Error):
    """Steps failed because a node refused what the scenario asked: the run did not play its script."""


@dataclass(frozen=True)
class DrillOptions:
    """How to run: compression, time jumps, and how long to wait for the nodes."""

    speed: float
    skip: bool = True
    pause: float = 0.5  # real seconds shown at each time jump
    hold_max: float = 5.0  # longest real wait for one of the drill's messages to arrive
    settle: float = 15.0  # longest real wait for the outboxes to drain at the end
    overdue_wait: float = 60.0  # longest real wait for a node to mark a message overdue (an alternate answers)
    tick: float = 0.02

    def __post_init__(self) -> None:
        """Raise `Invalid` for a speed or a pause out of bounds: the clock would stall or run backwards."""
        problem = speed_problem(self.speed) or pause_problem(self.pause)
        if problem is not None:
            raise Invalid(problem)


@dataclass(frozen=True)
class FeedItem:
    """One line of the live feed."""

    kind: str  # situation | sent | answer | silence | status | jump | seen | overdue | link | outage | error
    drill: datetime
    wall: datetime
    party: str | None
    text: str
    label: str | None = None


@dataclass
class StepResult:
    """What happened to one step."""

    n: int
    label: str | None
    kind: str
    line: int
    office: str | None
    operator: str | None
    drill: str  # the scheduled drill time
    wall: str | None = None  # when the engine acted
    status: str = "pending"  # shown | done | failed | skipped | interrupted
    id: str | None = None
    log_index: int | None = None
    error: str | None = None
    harness: bool = False  # failed because the drill could not act (401, 403, unreachable), not by a node's rule
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunRecord:
    """Everything a run leaves for the report: the clock, the steps, the streams."""

    plan: Plan
    options: DrillOptions
    clock: ClockPlan
    wall_start: datetime
    wall_end: datetime | None = None
    samples: list[tuple[datetime, datetime]] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    events: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    links_before: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    links_after: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # step label -> envelope id


def preflight(plan: Plan, target: Target, *, can_pause: bool) -> None:
    """Check that the target can play the plan. Raises `Invalid` listing every problem; touches nothing."""
    problems: list[str] = []
    agreement = target.agreement
    for step in plan.steps:
        where = f"line {step.line}"
        if step.kind == "outage" and not can_pause:
            problems.append(f"{where}: an outage needs nodes the drill started itself (--self-hosted)")
        if step.kind == "outage" and step.party not in target.parties:
            problems.append(f"{where}: no node for party {step.party}")
        if step.office is None:
            continue
        party = step.office.split(":")[0]
        operator = plan.scenario.operator_for(step.office)
        node = target.parties.get(party)
        if step.office not in agreement.offices:
            problems.append(f"{where}: the nodes' agreement has no office {step.office}")
        elif node is None:
            problems.append(f"{where}: no node for party {party}")
        elif operator not in node.tokens:
            problems.append(f"{where}: {party}'s node has no operator {operator!r} for {step.office}")
        elif step.office not in node.offices.get(operator, []):
            problems.append(f"{where}: operator {operator!r} is not bound to {step.office}")
        if step.message is not None:
            m = step.message
            try:
                notifications.check_route(m.type, m.channel, m.precedence, list(m.refs), agreement)
            except Invalid as exc:
                problems.append(f"{where}: on the nodes' agreement: {exc.detail}")
    if problems:
        raise Invalid("the nodes cannot play this scenario:\n" + "\n".join(sorted(set(problems))))


def speed_note(plan: Plan, options: DrillOptions) -> str:
    """Say at what speed the drill clock runs, and why wherever it runs slower than asked.

    An outage must last `OUTAGE_REAL_SECONDS` on the wall clock so that link tests notice it. With
    time jumps the clock slows only during the outage; without them (`--no-skip`, `--human`) it
    runs at one speed throughout, so the slowest outage sets the speed of the whole drill.
    """
    asked = options.speed
    outages = [(s.duration.total_seconds() / OUTAGE_REAL_SECONDS, s) for s in plan.steps if s.kind == "outage"]
    slow = min(outages, key=lambda o: (o[0], o[1].n), default=None)
    if slow is None or slow[0] >= asked:
        jumps = "quiet stretches jumped" if options.skip else "no time jumps"
        return f"speed {asked:g}× (drill seconds per real second), {jumps}"
    rate, step = slow
    outage = f"the {format_duration(step.duration)} outage at line {step.line}"
    lasts = f"{OUTAGE_REAL_SECONDS:g} real seconds, so that the link tests notice it"
    if options.skip:
        jumped = "quiet stretches jumped"
        return f"speed {asked:g}× (drill seconds per real second), {jumped}; {rate:g}× during {outage}, to last {lasts}"
    return (
        f"speed {rate:g}× for the whole drill, not the {asked:g}× asked: without time jumps the drill clock "
        f"runs at one speed, and {outage} must last {lasts}"
    )


def clock_plan(plan: Plan, options: DrillOptions) -> ClockPlan:
    """Return the clock plan of a run: slow around each step, outages long enough to be seen."""
    return ClockPlan.build(
        plan.start, plan.end, plan.time_points(), speed=options.speed, skip=options.skip, pause=options.pause,
        spans=plan.spans(OUTAGE_REAL_SECONDS), gaps=plan.gaps((FUTURE_MARGIN * 1.5).total_seconds()),
    )  # fmt: skip
