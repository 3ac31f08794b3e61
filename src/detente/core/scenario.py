"""Drill scenarios: the YAML format, read with the line of every value, and checked before anything runs.

A scenario is a scripted crisis: world events shown to the operators (`situation`), incidents the
report measures from (`incident`), and scripted operator actions (`send`, `code`, `ack`, `decline`,
`silence`, `answer`, `consent`, `object`, `execute`, `report`, `verify`, ...), each at a drill time
(the scenario's clock) given absolutely, as an offset from `start`, or as a delay after an earlier
inject (`after: LABEL`, `delay: 5m` or a seeded range `3m..8m`). `docs/drills.md` is the reference.

Reading (`load`, in `core.scenario_read`) checks the document's shape and every value's type;
`core.scenario_plan` then
resolves a variant into timed steps and dry-runs them against the agreement (routes, bodies, lead
times, workflow transitions) in drill time. Every problem is reported with the file, the line and
the path of the offending value (`jan.yaml:42: timeline[7].send.precedence: ...`), all at once,
before any node is touched. This module is pure: it reads text it is given and nothing else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from detente.core.precedence import Precedence
from detente.errors import Invalid

FORMAT_VERSION = 1
Path = tuple[str | int, ...]

# Scripted actions and what each carries (besides the keys every inject may have).
ACTIONS = (
    "situation", "send", "code", "ack", "decline", "silence", "answer", "status", "outage",
    "consent", "object", "request_info", "provide_info", "withdraw", "execute", "report", "verify", "dispute",
    "agree", "held", "minutes", "cosign",
)  # fmt: skip
# Shorthands for workflow messages: action -> (message type, who sends it relative to the opener).
WORKFLOW_SHORTHANDS: dict[str, tuple[str, str]] = {
    "consent": ("action.consent", "counterpart"),
    "object": ("action.object", "counterpart"),
    "request_info": ("action.request_info", "counterpart"),
    "provide_info": ("action.provide_info", "proposer"),
    "withdraw": ("action.withdraw", "proposer"),
    "execute": ("action.execute", "proposer"),
    "report": ("action.report", "proposer"),
    "verify": ("action.verify", "liaison"),
    "dispute": ("action.dispute", "liaison"),
    "answer": ("clarification.response", "counterpart"),
    "agree": ("consultation.agree", "counterpart"),
    "held": ("consultation.held", "either"),
    "minutes": ("consultation.minutes", "either"),
    "cosign": ("consultation.cosign", "either"),
}
# `assumed` and `uncertain` say where an inject's time comes from when it is not a sourced fact:
# `assumed: "why"` (the scenario's choice, e.g. an acknowledgement delay no source gives) and
# `uncertain: "range or source"` (the sources disagree or give only a span). `drill check` and
# `drill run` list them, and the report's facts carry them, so no figure built on them passes for
# a measured one.
COMMON_KEYS = ("at", "after", "delay", "label", "variants", "note", "assumed", "uncertain")
INCIDENT_KINDS = (
    "airspace_violation", "cross_border_fire", "strike", "drone", "border_crossing",
    "non_state_attack", "accidental_launch", "other",
)  # fmt: skip
TOP_KEYS = (
    "detente-drill", "title", "description", "agreement", "start", "end", "speed", "seed", "skip_quiet",
    "parties", "operators", "variants", "timeline",
)  # fmt: skip
LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_DURATION = re.compile(r"^([+-])?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")
OFFICE_ID = re.compile(r"^[a-z]{2,8}:[a-z0-9][a-z0-9-]{0,31}$")
# Drill seconds per real second, for a scenario's `speed:` and `drill run --speed`: a drill runs
# no slower than the real crisis, and at most ten million times faster (a year in three seconds).
SPEED_RANGE = (1.0, 10_000_000.0)
# The longest duration a scenario may give (a delay, an offset, an outage), and the longest a
# drill may span from its start: ten years. Longer is a typo, and these bounds, with those on
# `start` below, keep every drill time and every time in a body inside the dates Python can hold
# (years 1 to 9999), so no arithmetic on them overflows.
MAX_DURATION = timedelta(days=3650)
FIRST_YEAR, LAST_YEAR = 1000, 8999  # `start` and `end` lie in these years


class ScenarioError(Invalid):
    """A scenario breaks the format or the agreement; `problems` lists (line, path, message)."""

    def __init__(self, source: str, problems: list[tuple[int, str, str]]) -> None:
        ordered = sorted(set(problems))
        lines = [f"{source}:{line}: {path + ': ' if path else ''}{message}" for line, path, message in ordered]
        super().__init__("\n".join(lines), problems=[{"line": a, "path": b, "problem": c} for a, b, c in ordered])
        self.source = source
        self.problems = ordered

    def diagnostics(self) -> str:
        count = len(self.problems)
        return f"scenario {self.source} has {count} problem{'s' if count != 1 else ''}:\n{self.detail}"


def parse_duration(value: Any) -> timedelta:
    """Parse `2d03h`, `+45m`, `-10m`, `90s`, `1h30m` or a number of seconds.

    Raises `Invalid` for anything else, and for a duration longer than `MAX_DURATION` either way.
    """
    limit = MAX_DURATION.total_seconds()
    too_long = f"{value!r} is longer than {MAX_DURATION.days}d (ten years), the longest a scenario may give"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise Invalid(f"{value!r} is not a duration like 2d03h, 45m, 90s or a number of seconds")
        if abs(value) > limit:
            raise Invalid(too_long)
        return timedelta(seconds=value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or not any(match.group(i) for i in range(2, 6)):
        raise Invalid(f"{value!r} is not a duration like 2d03h, 45m, 90s or a number of seconds")
    sign, days, hours, minutes, seconds = match.groups()
    # Compared as integers first: `timedelta` (and float) overflow on the digits a typo can hold.
    whole = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60
    if whole > limit or whole + float(seconds or 0) > limit:
        raise Invalid(too_long)
    delta = timedelta(seconds=whole + float(seconds or 0))
    return -delta if sign == "-" else delta


def format_duration(delta: timedelta | float | None, *, signed: bool = False) -> str:
    """Return a duration as `2d 03h 15m`, `4m 30s`, `-1d 02h 00m` (None: `—`)."""
    if delta is None:
        return "—"
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    sign = "-" if seconds < 0 else ("+" if signed and seconds > 0 else "")
    rest = int(round(abs(seconds)))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s" if secs else f"{sign}{minutes}m"
    if abs(seconds) < 10 and abs(seconds) != int(abs(seconds)):
        return f"{sign}{abs(seconds):.2f}s"
    return f"{sign}{secs}s"


@dataclass(frozen=True)
class Delay:
    """A fixed delay, or a range drawn from the scenario's seeded random generator."""

    low: timedelta
    high: timedelta

    @property
    def fixed(self) -> bool:
        return self.low == self.high


@dataclass(frozen=True)
class Incident:
    """A world event the report measures from: a strike, an attack, a violation."""

    kind: str
    place: str
    by: str | None = None  # the party that carried it out (None: a non-state or unknown actor)
    where: str | None = None  # the party on whose territory it happened


@dataclass(frozen=True)
class Inject:
    """One timeline entry: when, for which variants, and what happens."""

    index: int
    line: int
    action: str
    spec: dict[str, Any]  # the action's own mapping (or {"ref": label} for a bare label)
    label: str | None = None
    at: datetime | None = None  # absolute drill time (from `at`)
    after: str | None = None  # or: a delay after this label
    delay: Delay = Delay(timedelta(0), timedelta(0))
    variants: tuple[str, ...] | None = None
    note: str = ""
    situation: dict[str, str] = field(default_factory=dict)  # party or "all" -> text
    incident: Incident | None = None
    assumed: str = ""  # why the time is the scenario's choice, not a source's
    uncertain: str = ""  # the span or the sources when they disagree

    @property
    def path(self) -> str:
        return f"timeline[{self.index}]"

    def in_variant(self, variant: str | None) -> bool:
        return self.variants is None or variant is None or variant in self.variants


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file (the agreement it names is loaded by the caller)."""

    source: str
    title: str
    description: str
    agreement: str  # the agreement file as written, relative to the scenario's directory
    start: datetime
    end: datetime | None
    speed: float
    seed: int
    skip_quiet: bool
    parties: dict[str, str]
    operators: dict[str, str]
    variants: dict[str, str]
    injects: tuple[Inject, ...]
    lines: Mapping[Path, int]
    # Problems found while reading (`load(..., partial=True)`), which planning reports with its own
    # so that every problem of the file shows at once; and the injects they concern, which
    # planning leaves out rather than guess at.
    problems: tuple[tuple[int, str, str], ...] = ()
    broken: frozenset[int] = frozenset()

    def line_of(self, path: Path) -> int:
        """Return the line of the value at `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return 1

    def variant_names(self) -> list[str | None]:
        """Return the variants to run: each named variant, or [None] for a scenario without variants."""
        return list(self.variants) if self.variants else [None]

    def operator_for(self, office: str) -> str:
        """Return the demo operator who acts for `office` (default: `pk:dgmo` -> `pk-dgmo`)."""
        return self.operators.get(office, office.replace(":", "-"))


def load(text: str, source: str = "scenario", *, partial: bool = False) -> Scenario:
    """Read and check a scenario's YAML text. Raises `ScenarioError` listing every problem by line.

    With `partial`, a scenario whose injects have problems is still returned when it can be (its
    start is known), holding those problems (`Scenario.problems`) for `core.scenario_plan.plan`
    to report with its own; `ScenarioError` is raised only when nothing could be read.
    """
    from detente.core.scenario_read import read

    return read(text, source, partial=partial)


def show(path: Path) -> str:
    """Return a path as people read it: `timeline[3].send.body.window.start`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def iter_refs(inject: Inject) -> Iterator[tuple[Path, str]]:
    """Yield (path, label) for every label an inject refers to (after, ref, refs, about, case)."""
    base: Path = ("timeline", inject.index)
    if inject.after:
        yield (*base, "after"), inject.after
    spec = inject.spec
    for key in ("ref", "about", "case"):
        value = spec.get(key)
        if isinstance(value, str) and not (key == "case" and value == "none"):
            yield (*base, inject.action, key), value
    refs = spec.get("refs")
    if isinstance(refs, list):
        for index, value in enumerate(refs):
            if isinstance(value, str):
                yield (*base, inject.action, "refs", index), value


def precedence_of(value: Any) -> Precedence | None:
    """Return the precedence named `value`, or None."""
    try:
        return Precedence(value) if isinstance(value, str) else None
    except ValueError:
        return None
