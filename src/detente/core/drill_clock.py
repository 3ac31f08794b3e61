"""The drill clock: scenario (drill) time compressed onto real (wall) time, with time jumps and holds.

The plan (`ClockPlan.build`) runs the drill clock at `speed` drill seconds per real second around
every moment something happens (each step, each time a message names) and, when `skip` is on,
jumps over the quiet stretches between them (an exercise's "time jump"), pausing `pause` real
seconds at each jump so people can follow. Planned real offsets map to drill times by a
non-decreasing piecewise-linear function.

At run time (`ClockRun`) the clock follows the plan but *holds* (stops) while the drill acts on a
node, so that the real milliseconds of a request are not multiplied by the speed; the run then
lasts that much longer than planned (the time is never "caught up", so a time promised in a body,
such as the start of a notified window, is never reached early). Every stretch of the clock as it actually ran
is kept (`ClockRun.samples`: wall time -> drill time breakpoints) and goes into the report, so any
envelope's `created` time converts to drill time by the same table (`to_drill`). The breakpoints are
kept to the millisecond, the precision of the report's JSON, so the table read back from a report
converts every `created` time to exactly the drill time the run gave it.

A link a node sees down holds back the next time jump (`ClockRun.see_link`): a jump that started
while a node still sees its peer down would put the peer's return, drill hours later, on the far
side of the jump, and the outage would read hours longer than scripted. The clock waits at the jump
instead, at most `JUMP_WAIT` real seconds per outage a node sees, so a link that never comes back
cannot stall the drill.

Times in message bodies are written in drill time in the scenario; the engine sends the wall time
that lies as far from now, along the plan, as the drill time lies from the clock's current drill
time (`ClockRun.body_time`), so a window, a deadline and an execution keep their order and meaning.
Pure: every function takes the times it needs.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

LEAD_IN = timedelta(minutes=1)  # drill time run slowly before each moment
TAIL = timedelta(minutes=2)  # and after it
JUMP_OVER = timedelta(minutes=10)  # quiet stretches at least this long are jumped
# Link tests run every second on drill nodes and a node needs a few tests to see a peer come back;
# ten real seconds covers that with room, and bounds what a link that stays down can cost per outage.
JUMP_WAIT = 10.0


@dataclass(frozen=True)
class Segment:
    """A stretch of the plan: real offsets [r0, r1) carry drill times d0 .. d1 linearly."""

    r0: float
    r1: float
    d0: datetime
    d1: datetime

    @property
    def pause(self) -> bool:
        return self.d0 == self.d1


@dataclass(frozen=True)
class ClockPlan:
    """Where the drill clock should be at each real offset from the start of the run."""

    start: datetime
    end: datetime
    speed: float
    segments: tuple[Segment, ...]

    @classmethod
    def build(
        cls, start: datetime, end: datetime, points: list[datetime], *, speed: float, skip: bool = True,
        pause: float = 0.5, lead_in: timedelta = LEAD_IN, tail: timedelta = TAIL, jump_over: timedelta = JUMP_OVER,
        spans: tuple[tuple[datetime, datetime, float], ...] = (),
        gaps: tuple[tuple[datetime, datetime, float], ...] = (),
    ) -> ClockPlan:  # fmt: skip
        """Plan a run from `start` to `end` that passes slowly through `points` (drill times).

        Each of `spans` (drill start, drill end, real seconds) is never jumped and lasts at least
        that many real seconds (an outage must last long enough for the nodes to notice it). Each
        of `gaps` (drill from, drill to, real seconds) is at least that long on the wall clock (a
        window notified at one moment starts far enough ahead of it for the nodes to accept it).
        """
        if not skip:
            rate = min([speed, *(_secs(b - a) / real for a, b, real in spans if real > 0 and b > a)])
            return cls(start, end, speed, (Segment(0.0, _secs(end - start) / rate, start, end),))
        windows: list[list[datetime]] = []
        marks = sorted([(max(start, p - lead_in), min(end, p + tail)) for p in {start, *points, end}])
        marks += [(max(start, a), min(end, b)) for a, b, _ in spans]
        for low, high in sorted(marks):
            if windows and low - windows[-1][1] < jump_over:
                windows[-1][1] = max(windows[-1][1], high)
            else:
                windows.append([low, high])
        segments: list[Segment] = []
        r, cur = 0.0, start
        for low, high in windows:
            if low > cur:
                # a quiet stretch: pause, then jump to `low`
                segments.append(Segment(r, r + pause, cur, cur))
                r += pause
            cuts = sorted({low, high, *(t for a, b, _ in spans for t in (a, b) if low < t < high)})
            for d0, d1 in zip(cuts, cuts[1:], strict=False):
                rate = speed  # slower only inside a span, so that it lasts its real seconds
                for a, b, real in spans:
                    if a <= d0 and d1 <= b and real > 0 and b > a:
                        rate = min(rate, _secs(b - a) / real)
                length = _secs(d1 - d0) / rate
                segments.append(Segment(r, r + length, d0, d1))
                r += length
            cur = high
        plan = cls(start, end, speed, tuple(s for s in segments if s.r1 > s.r0 or not s.pause))
        for d_from, d_to, real in sorted(gaps, key=lambda g: g[1]):
            plan = plan._stretched(d_from, d_to, real)
        return plan

    def _stretched(self, d_from: datetime, d_to: datetime, real: float) -> ClockPlan:
        """Return the plan with a pause before `d_to` long enough to put it `real` seconds after `d_from`."""
        r_from, r_to = self.offset_of(d_from), self.offset_of(d_to)
        deficit = real - (r_to - r_from)
        if deficit <= 0 or d_to <= d_from:
            return self
        segments = list(self.segments)
        pauses = [i for i, seg in enumerate(segments) if seg.pause and r_from <= seg.r0 <= r_to]
        if pauses:
            i = pauses[-1]
            seg = segments[i]
            segments[i] = Segment(seg.r0, seg.r1 + deficit, seg.d0, seg.d1)
        else:
            i = next(i for i, seg in enumerate(segments) if not seg.pause and seg.d0 <= d_to <= seg.d1)
            seg = segments[i]
            at = max(seg.d0, d_to - timedelta(seconds=1))
            r_at = seg.r0 + _secs(at - seg.d0) / max(_secs(seg.d1 - seg.d0), 1e-9) * (seg.r1 - seg.r0)
            segments[i : i + 1] = [
                Segment(seg.r0, r_at, seg.d0, at),
                Segment(r_at, r_at + deficit, at, at),
                Segment(r_at, seg.r1, at, seg.d1),  # shifted with the rest below
            ]
            i += 1
        shifted = [
            *segments[: i + 1],
            *(Segment(s.r0 + deficit, s.r1 + deficit, s.d0, s.d1) for s in segments[i + 1 :]),
        ]
        return ClockPlan(self.start, self.end, self.speed, tuple(x for x in shifted if x.r1 > x.r0 or not x.pause))

    @property
    def duration(self) -> float:
        """Planned real seconds of the whole run."""
        return self.segments[-1].r1 if self.segments else 0.0

    def at(self, r: float) -> datetime:
        """Return the drill time at planned real offset `r`."""
        for seg in self.segments:
            if seg.r0 <= r < seg.r1:
                return _lerp(seg, r)
        return self.end if r >= self.duration else self.start

    def offset_of(self, moment: datetime) -> float:
        """Return the earliest planned real offset at which the drill clock reads `moment` or later."""
        for seg in self.segments:
            if seg.d1 >= moment and not seg.pause:
                if moment <= seg.d0:
                    return seg.r0
                return seg.r0 + _secs(moment - seg.d0) / _secs(seg.d1 - seg.d0) * (seg.r1 - seg.r0)
        return self.duration

    def segment_at(self, r: float) -> Segment | None:
        for seg in self.segments:
            if seg.r0 <= r < seg.r1:
                return seg
        return None

    def next_boundary(self, r: float) -> float | None:
        """Return the next segment boundary after `r`, or None past the end."""
        for seg in self.segments:
            if seg.r1 > r:
                return seg.r1
        return None

    def jumps(self) -> list[tuple[datetime, datetime]]:
        """Return each time jump as (from, to) drill times."""
        out = []
        for before, after in zip(self.segments, self.segments[1:], strict=False):
            if after.d0 > before.d1:
                out.append((before.d1, after.d0))
        return out


@dataclass
class ClockRun:
    """The clock as it runs: follows the plan, holds while messages are in flight, keeps its history."""

    plan: ClockPlan
    wall_start: datetime
    e: float = 0.0  # how far along the plan the clock is (planned real seconds)
    last: datetime | None = None
    holding: bool = False
    samples: list[tuple[datetime, datetime]] = field(default_factory=list)  # (wall, drill) breakpoints
    waiting: tuple[datetime, datetime] | None = None  # a jump held back while a link is seen down
    down: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, peer) -> real seconds waited
    seen_at: datetime | None = None  # when the newest link change was seen

    def __post_init__(self) -> None:
        self.wall_start = _ms(self.wall_start)
        self.last = self.wall_start
        self.samples.append((self.wall_start, _ms(self.plan.start)))

    @property
    def now(self) -> datetime:
        """The drill time on the clock."""
        if self.waiting is not None:
            return self.waiting[0]
        return self.plan.at(self.e)

    @property
    def done(self) -> bool:
        return self.e >= self.plan.duration

    def lag(self, wall: datetime) -> float:
        """Real seconds the clock is behind its plan (time spent holding, not yet caught up)."""
        return _secs(wall - self.wall_start) - self.e

    def see_link(self, node: str, peer: str, state: str, wall: datetime) -> None:
        """Note that `node` sees its link to `peer` in `state` (UP, DEGRADED or DOWN) since real time `wall`."""
        self.seen_at = max(self.seen_at or wall, _ms(wall))
        if state == "UP":
            self.down.pop((node, peer), None)
        else:
            self.down.setdefault((node, peer), 0.0)

    def _jump_held(self) -> bool:
        return any(waited < JUMP_WAIT for waited in self.down.values())

    def advance(self, wall: datetime, until: datetime | None = None) -> list[tuple[datetime, datetime]]:
        """Move the clock to real time `wall`, but not past drill time `until` (the next step is due then).

        Returns the time jumps it made, as (from, to) drill times. A clock stopped at `until`, or at
        a jump while a link is seen down, falls behind its plan like a held one.
        """
        assert self.last is not None
        wall = _ms(wall)
        t, remaining = self.last, max(0.0, _secs(wall - self.last))
        stop = self.plan.offset_of(until) if until is not None else None
        jumps: list[tuple[datetime, datetime]] = []
        while not self.holding and remaining > 1e-9 and not self.done:
            if self.waiting is not None:
                if until is not None and until <= self.waiting[0]:
                    break
                if self._jump_held():
                    for key in self.down:  # the wait counts against each outage seen
                        self.down[key] += remaining
                    break
                if self.seen_at is not None and self.seen_at >= t:
                    # The clock reached the jump before the tick that takes it; a link change seen
                    # meanwhile must stay on this side of the jump (a millisecond before it), where
                    # it happened, or the table would put it drill hours later.
                    late = self.seen_at + timedelta(milliseconds=1)
                    if late > wall:
                        break  # the next tick takes the jump
                    remaining -= _secs(late - t)
                    self._point(t, self.waiting[0])
                    t = late
                    self._point(t, self.waiting[0])
                jumps.append(self.waiting)
                self._point(t, self.waiting[1])
                self.waiting = None
                continue
            seg = self.plan.segment_at(self.e)
            if seg is None:
                break
            if stop is not None and self.e >= stop:
                break
            left = seg.r1 - self.e  # planned seconds to the end of this segment
            if stop is not None and seg.r0 <= stop < seg.r1 and not seg.pause:
                left = stop - self.e
                if left <= remaining:
                    self.e, t, remaining = stop, _ms(t + timedelta(seconds=left)), 0.0
                    self._point(t, self.now)
                    break
            if left <= remaining:
                self.e, t, remaining = seg.r1, _ms(t + timedelta(seconds=left)), remaining - left
                self._point(t, seg.d1)
                nxt = self.plan.segment_at(self.e)
                if nxt is not None and nxt.d0 > seg.d1:
                    self.waiting = (seg.d1, nxt.d0)  # taken at the top of the loop unless a link is down
            else:
                self.e += remaining
                t, remaining = wall, 0.0
        self.last = wall
        self._sample(wall)
        return jumps

    def hold(self, wall: datetime) -> None:
        """Stop the clock where it is (the drill is acting; the time it takes is not drill time)."""
        self.advance(wall, until=self.now)
        self.holding = True

    def release(self, wall: datetime) -> None:
        """Let the clock run again."""
        self.advance(wall)
        self.holding = False

    def body_time(self, moment: datetime, wall: datetime) -> datetime:
        """Return the wall time to write in a body for drill time `moment`, sent at real time `wall`.

        It lies as far from `wall` along the plan as `moment` lies from the clock's drill time, so
        times in the past of the drill clock are in the past of the wall clock, and future ones in
        its future.
        """
        if moment <= self.now:
            return wall - timedelta(seconds=self.e - self.plan.offset_of(moment)) - self._pre_start(moment)
        return wall + timedelta(seconds=self.plan.offset_of(moment) - self.e) + self._post_end(moment)

    def _pre_start(self, moment: datetime) -> timedelta:
        return (self.plan.start - moment) / self.plan.speed if moment < self.plan.start else timedelta(0)

    def _post_end(self, moment: datetime) -> timedelta:
        return (moment - self.plan.end) / self.plan.speed if moment > self.plan.end else timedelta(0)

    def _point(self, wall: datetime, drill: datetime) -> None:
        wall, drill = _ms(wall), _ms(drill)
        if not self.samples or self.samples[-1] != (wall, drill):
            self.samples.append((wall, drill))

    def _sample(self, wall: datetime) -> None:
        wall, drill = _ms(wall), _ms(self.now)
        if self.samples and len(self.samples) >= 2:
            (w1, d1), (w2, d2) = self.samples[-2], self.samples[-1]
            if w2 > w1 and wall > w2 and d2 >= d1 and _collinear(w1, d1, w2, d2, wall, drill):
                self.samples[-1] = (wall, drill)
                return
        if self.samples and self.samples[-1] == (wall, drill):
            return
        self.samples.append((wall, drill))


def _collinear(w1: datetime, d1: datetime, w2: datetime, d2: datetime, w3: datetime, d3: datetime) -> bool:
    # The points are cut to the millisecond, so allow the drill time a millisecond of wall time
    # (at the clock's rate) may carry, and a millisecond of its own.
    rate = _secs(d2 - d1) / _secs(w2 - w1)
    expected = d2 + (w3 - w2) * rate
    return abs(_secs(d3 - expected)) <= 0.002 * max(1.0, rate) + 0.002


def to_drill(samples: list[tuple[datetime, datetime]], wall: datetime) -> datetime:
    """Return the drill time at real time `wall`, from a run's (wall, drill) breakpoints.

    Between breakpoints the clock ran linearly; at a jump (two breakpoints at one wall time) the
    later drill time counts. Before the first breakpoint the first drill time; after the last, the
    clock is taken to run on at its last rate (held clocks stay held).
    """
    walls = [w for w, _ in samples]
    i = bisect.bisect_right(walls, wall) - 1
    if i < 0:
        return samples[0][1]
    w1, d1 = samples[i]
    if i + 1 < len(samples):
        w2, d2 = samples[i + 1]
        return d1 + (d2 - d1) * (_secs(wall - w1) / _secs(w2 - w1)) if w2 > w1 else d2
    return d1


def to_wall(samples: list[tuple[datetime, datetime]], drill: datetime) -> datetime:
    """Return the first real time at which the drill clock read `drill` or later."""
    for (w1, d1), (w2, d2) in zip(samples, samples[1:], strict=False):
        if d2 >= drill:
            if drill <= d1 or d2 == d1:
                return w1 if drill <= d1 else w2
            return w1 + (w2 - w1) * (_secs(drill - d1) / _secs(d2 - d1))
    return samples[-1][0]


def _ms(moment: datetime) -> datetime:
    """Return `moment` cut to the millisecond, as `format_time` writes it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _lerp(seg: Segment, r: float) -> datetime:
    if seg.r1 <= seg.r0:
        return seg.d1
    return seg.d0 + (seg.d1 - seg.d0) * ((r - seg.r0) / (seg.r1 - seg.r0))


def _secs(delta: timedelta) -> float:
    return delta.total_seconds()
