"""What a planned drill is made of: timed steps, the messages they send, and the times in bodies.

A `Plan` is one variant of a scenario resolved into `Step`s in drill-time order (`core.scenario_plan`
makes it). A step's `Message` carries its body with drill times; `time_fields` finds the RFC 3339
times a body holds (from the type's JSON Schema, and the codebook's `time` parameters), so that the
engine can map each to the wall clock (`with_times`). Pure.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detente.core import codebook, notifications
from detente.core.agreement import Agreement
from detente.core.precedence import Precedence, format_time, parse_time
from detente.core.scenario import MAX_DURATION, Incident, Inject, Path, Scenario, parse_duration, show
from detente.errors import Invalid


@dataclass(frozen=True)
class Message:
    """A message a step sends, with drill times in its body (the engine maps them to wall time)."""

    type: str
    channel: str
    sender: str
    to: str
    precedence: Precedence
    body: dict[str, Any]
    refs: tuple[str, ...] = ()  # labels of earlier message steps
    case: str | None = None  # label of the step whose message opened the case
    lang: str | None = None
    time_paths: tuple[tuple[str, ...], ...] = ()  # body paths holding RFC 3339 times
    digest_of: str | None = None  # cosign: the label of the minutes whose digest the body carries


@dataclass(frozen=True)
class Step:
    """One thing the drill does at a drill time."""

    n: int
    inject: Inject
    at: datetime
    kind: str  # situation | message | ack | decline | silence | status | outage
    office: str | None = None  # the office that acts (None for situations and outages)
    message: Message | None = None
    target: str | None = None  # ack, decline, silence: the label of the message
    text: str = ""  # ack note, decline reason, status note
    code: str = ""  # status code
    party: str | None = None  # outage: whose node goes dark; status: the peer told
    duration: timedelta = timedelta(0)  # outage
    about: str | None = None  # the incident label the step is about

    @property
    def label(self) -> str | None:
        return self.inject.label

    @property
    def line(self) -> int:
        return self.inject.line


@dataclass(frozen=True)
class Plan:
    """A variant of a scenario, ready to run: its steps in drill-time order."""

    scenario: Scenario
    variant: str | None
    steps: tuple[Step, ...]
    start: datetime
    end: datetime
    notices: tuple[str, ...] = ()

    @property
    def incidents(self) -> list[tuple[Step, Incident]]:
        return [(s, s.inject.incident) for s in self.steps if s.inject.incident is not None]

    def by_label(self) -> dict[str, Step]:
        return {s.label: s for s in self.steps if s.label}

    def offices(self) -> set[str]:
        """Return every office that acts in the plan."""
        return {s.office for s in self.steps if s.office}

    def spans(self, real: float) -> tuple[tuple[datetime, datetime, float], ...]:
        """Return the stretches the clock must run through, not jump, and their minimum real length (outages)."""
        return tuple((s.at, s.at + s.duration, real) for s in self.steps if s.kind == "outage")

    def gaps(self, real: float) -> tuple[tuple[datetime, datetime, float], ...]:
        """Return (sent, window start, real seconds) for each notified operation: on the wall clock its
        window must start far enough after the notice for the nodes to accept it, and its execution,
        later, falls inside it."""
        out = []
        for step in self.steps:
            m = step.message
            if m is not None and m.type == "operation.prenotify" and isinstance(m.body.get("window"), dict):
                start = m.body["window"].get("start")
                if isinstance(start, str):
                    out.append((step.at, parse_time(start), real))
        return tuple(out)

    def time_points(self) -> list[datetime]:
        """Return every drill time the clock must pass slowly: each step and each time its messages name."""
        points = [s.at for s in self.steps]
        for step in self.steps:
            if step.message is not None:
                for path in step.message.time_paths:
                    value = get_path(step.message.body, path)
                    if isinstance(value, str):
                        points.append(parse_time(value))
        return sorted(p for p in points if self.start <= p <= self.end)


class Problems:
    """The problems found so far, with what planning knows that a problem must name.

    `times` (inject index -> drill time), `failed` (labels of steps that have problems) and `at`
    (the drill time of the step being built) let a reference to a step that is missing say why:
    it has problems of its own, comes later (both times named) or is in another variant.
    """

    def __init__(self, scenario: Scenario, variant: str | None = None) -> None:
        self.scenario = scenario
        self.variant = variant
        self.items: list[tuple[int, str, str]] = []
        self.times: dict[int, datetime] = {}
        self.failed: set[str] = set()
        self.at: datetime | None = None

    def add(self, path: Path, message: str) -> None:
        self.items.append((self.scenario.line_of(path), show(path), message))

    def why_missing(self, label: str) -> str:
        """Say why the step labelled `label` is not there to refer to (it is known to be labelled)."""
        inject = next(i for i in self.scenario.injects if i.label == label)
        name = f"{label!r} (line {inject.line})"
        if not inject.in_variant(self.variant):
            return f"{name} is not part of variant {self.variant!r}"
        if label in self.failed or inject.index in self.scenario.broken or inject.index not in self.times:
            return f"{name} has problems of its own, so this step cannot be checked against it"
        when = self.times[inject.index]
        if self.at is not None and when > self.at:
            return (
                f"{name} happens at {format_time(when)}, after this step at {format_time(self.at)}: "
                "a step can refer only to one that happens before it"
            )
        return f"{name} comes later in the file at the same drill time {format_time(when)}: put it first"


def time_fields(kind: str, body: dict[str, Any], agreement: Agreement) -> list[tuple[str, ...]]:
    """Return the paths of the RFC 3339 times a body of type `kind` holds (codebook `time` params too)."""
    if kind == "code":
        entry = codebook.codebook(agreement.raw).get(str(body.get("code")))
        params = body.get("params")
        if entry is None or not isinstance(params, dict):
            return []
        return [("params", name) for name, typ in entry.params.items() if typ == "time" and name in params]
    schema = notifications.get(kind).json_schema()
    out: list[tuple[str, ...]] = []
    _walk(schema, schema.get("$defs", {}), body, (), out)
    return out


def _walk(schema: dict[str, Any], defs: dict[str, Any], value: Any, path: tuple[str, ...], out: list[Any]) -> None:
    if "$ref" in schema:
        schema = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    for option in schema.get("anyOf", []):
        _walk(option, defs, value, path, out)
    if schema.get("format") == "date-time" and isinstance(value, str):
        if path not in out:
            out.append(path)
    elif isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            sub = schema["properties"].get(key)
            if isinstance(sub, dict):
                _walk(sub, defs, item, (*path, key), out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _walk(schema["items"], defs, item, (*path, str(index)), out)


def get_path(body: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        body = body[int(part)] if isinstance(body, list) else body.get(part) if isinstance(body, dict) else None
    return body


def set_path(body: Any, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        body = body[int(part)] if isinstance(body, list) else body[part]
    if isinstance(body, list):
        body[int(path[-1])] = value
    else:
        body[path[-1]] = value


def with_times(body: dict[str, Any], paths: tuple[tuple[str, ...], ...], convert: Any) -> dict[str, Any]:
    """Return a deep copy of `body` with the time at each path replaced by `convert(path, drill time)`."""

    out = copy.deepcopy(body)
    for path in paths:
        value = get_path(out, path)
        if isinstance(value, str):
            set_path(out, path, convert(path, parse_time(value)))
    return out


def resolve_times(
    kind: str, body: dict[str, Any], at: datetime, base: Path, agreement: Agreement, problems: Problems
) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    """Turn relative times (`+26h`, `-10m`, from the step's drill time) into absolute drill times."""

    out = copy.deepcopy(body)
    paths = time_fields(kind, out, agreement)
    for path in paths:
        value = get_path(out, path)
        if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
            try:
                set_path(out, path, format_time(at + parse_duration(value)))
            except Invalid as exc:
                problems.add((*base, *path), exc.detail)
        elif isinstance(value, str):
            try:
                moment = parse_time(value)
            except Invalid as exc:
                problems.add((*base, *path), exc.detail + ", or an offset from this inject like +26h")
                continue
            if abs(moment - at) > MAX_DURATION:  # as far as an offset may reach (`parse_duration`)
                problems.add((*base, *path), f"lies more than {MAX_DURATION.days}d from this inject's time")
    return out, paths


def body_problems(exc: Invalid, where: Path, base: Path, kind: str, problems: Problems) -> None:
    fields = exc.extra.get("fields")
    if isinstance(fields, dict) and fields:
        for key, text in fields.items():
            parts = tuple(str(key).split("."))
            target = (*base, parts[0]) if parts[0] in ("precedence", "refs", "case") else (*where, *parts)
            problems.add(target, f"{kind}: {text}")
    else:
        problems.add(base, f"{kind}: {exc.detail}")
