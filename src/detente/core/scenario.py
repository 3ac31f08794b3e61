"""Drill scenarios: the YAML format, read with the line of every value, and checked before anything runs.

A scenario is a scripted crisis: world events shown to the operators (`situation`), incidents the
report measures from (`incident`), and scripted operator actions (`send`, `code`, `ack`, `decline`,
`silence`, `answer`, `consent`, `object`, `execute`, `report`, `verify`, ...), each at a drill time
(the scenario's clock) given absolutely, as an offset from `start`, or as a delay after an earlier
inject (`after: LABEL`, `delay: 5m` or a seeded range `3m..8m`). `docs/drills.md` is the reference.

Reading (`load`) checks the document's shape and every value's type; `core.scenario_plan` then
resolves a variant into timed steps and dry-runs them against the agreement (routes, bodies, lead
times, workflow transitions) in drill time. Every problem is reported with the file, the line and
the path of the offending value (`jan.yaml:42: timeline[7].send.precedence: ...`), all at once,
before any node is touched. This module is pure: it reads text it is given and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from detente.core.precedence import Precedence, parse_time
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
COMMON_KEYS = ("at", "after", "delay", "label", "variants", "note")
INCIDENT_KINDS = (
    "airspace_violation", "cross_border_fire", "strike", "drone", "border_crossing",
    "non_state_attack", "accidental_launch", "other",
)  # fmt: skip
TOP_KEYS = (
    "detente-drill", "title", "description", "agreement", "start", "end", "speed", "seed", "skip_quiet",
    "parties", "operators", "variants", "timeline",
)  # fmt: skip
_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_DURATION = re.compile(r"^([+-])?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")
_OFFICE = re.compile(r"^[a-z]{2,8}:[a-z0-9][a-z0-9-]{0,31}$")


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
    """Parse `2d03h`, `+45m`, `-10m`, `90s`, `1h30m` or a number of seconds. Raises `Invalid`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or not any(match.group(i) for i in range(2, 6)):
        raise Invalid(f"{value!r} is not a duration like 2d03h, 45m, 90s or a number of seconds")
    sign, days, hours, minutes, seconds = match.groups()
    delta = timedelta(
        days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0)
    )
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


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps times as strings (the scenario parses them itself)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


def _marks(node: yaml.Node, path: Path, out: dict[Path, int], dupes: list[tuple[int, str, str]]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            sub = (*path, name)
            if name in seen:
                dupes.append((key.start_mark.line + 1, show(sub), f"key {name!r} appears twice"))
            seen.add(name)
            out[sub] = key.start_mark.line + 1
            _marks(value, sub, out, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _marks(item, (*path, index), out, dupes)


def show(path: Path) -> str:
    """Return a path as people read it: `timeline[3].send.body.window.start`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _Reader:
    """Collects problems with their lines while reading a decoded document."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.problems: list[tuple[int, str, str]] = []

    def line(self, path: Path) -> int:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return self.lines.get(probe, 1)

    def fail(self, path: Path, message: str) -> None:
        self.problems.append((self.line(path), show(path), message))

    def keys(self, value: dict[str, Any], path: Path, allowed: tuple[str, ...], what: str) -> None:
        for key in value:
            if key not in allowed:
                self.fail((*path, key), f"unknown key {key!r} in {what}; expected one of: {', '.join(allowed)}")

    def text(self, value: Any, path: Path, *, required: bool = True, limit: int = 10_000) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "must be a non-empty text")
            return ""
        if len(value) > limit:
            self.fail(path, f"is {len(value)} characters long; at most {limit}")
        return value

    def mapping(self, value: Any, path: Path) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping (key: value), not {_kind(value)}")
            return None
        return value

    def time(self, value: Any, path: Path) -> datetime | None:
        try:
            return parse_time(value) if isinstance(value, str) else parse_time("")
        except Invalid as exc:
            self.fail(path, exc.detail)
            return None

    def office(self, value: Any, path: Path) -> str | None:
        if not isinstance(value, str) or not _OFFICE.match(value):
            self.fail(path, f"{value!r} is not an office id like 'pk:dgmo'")
            return None
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a text", bool: "true/false"}.get(type(value), type(value).__name__)


def load(text: str, source: str = "scenario") -> Scenario:
    """Read and check a scenario's YAML text. Raises `ScenarioError` listing every problem by line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(source, [(line, "", f"not valid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [(1, "", f"not valid YAML: {exc}")]) from None
    lines: dict[Path, int] = {}
    dupes: list[tuple[int, str, str]] = []
    if node is not None:
        _marks(node, (), lines, dupes)
    reader = _Reader(lines)
    reader.problems.extend(dupes)
    scenario = _read(reader, data, source)
    if reader.problems or scenario is None:
        raise ScenarioError(source, reader.problems or [(1, "", "the scenario is empty")])
    return scenario


def _read(r: _Reader, data: Any, source: str) -> Scenario | None:
    doc = r.mapping(data, ())
    if doc is None:
        return None
    r.keys(doc, (), TOP_KEYS, "the scenario")
    version = doc.get("detente-drill")
    if version != FORMAT_VERSION:
        r.fail(("detente-drill",), f"say which format this is: 'detente-drill: {FORMAT_VERSION}' (got {version!r})")
    title = r.text(doc.get("title"), ("title",), limit=200)
    description = r.text(doc.get("description"), ("description",), required=False)
    agreement = r.text(doc.get("agreement"), ("agreement",), limit=500)
    start = r.time(doc.get("start"), ("start",))
    end = r.time(doc["end"], ("end",)) if doc.get("end") is not None else None
    speed = doc.get("speed", 600)
    if not isinstance(speed, int | float) or isinstance(speed, bool) or not 1 <= speed <= 10_000_000:
        r.fail(("speed",), "must be a number of drill seconds per real second, from 1 to 10000000")
        speed = 600
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        r.fail(("seed",), "must be a whole number")
        seed = 0
    skip = doc.get("skip_quiet", True)
    if not isinstance(skip, bool):
        r.fail(("skip_quiet",), "must be true or false")
        skip = True
    parties = _string_map(r, doc.get("parties", {}), ("parties",), key_pattern=re.compile(r"^[a-z]{2,8}$"))
    operators = _string_map(r, doc.get("operators", {}), ("operators",), key_pattern=_OFFICE)
    variants = _string_map(r, doc.get("variants", {}), ("variants",), key_pattern=_LABEL)
    timeline = doc.get("timeline")
    injects: list[Inject] = []
    if not isinstance(timeline, list) or not timeline:
        r.fail(("timeline",), "must be a non-empty list of injects")
    else:
        for index, item in enumerate(timeline):
            inject = _inject(r, item, index, set(variants))
            if inject is not None:
                injects.append(inject)
    _check_labels(r, injects)
    if start is not None and end is not None and end <= start:
        r.fail(("end",), "must be after start")
    if start is None:
        return None
    return Scenario(
        source=source, title=title, description=description, agreement=agreement, start=start, end=end,
        speed=float(speed), seed=seed, skip_quiet=skip, parties=parties, operators=operators,
        variants=variants, injects=tuple(injects), lines=r.lines,
    )  # fmt: skip


def _string_map(r: _Reader, value: Any, path: Path, *, key_pattern: re.Pattern[str]) -> dict[str, str]:
    table = r.mapping(value, path)
    out: dict[str, str] = {}
    for key, text in (table or {}).items():
        if not key_pattern.match(str(key)):
            r.fail((*path, key), f"{key!r} is not a valid name here")
        out[str(key)] = r.text(text, (*path, key), limit=2000)
    return out


def _inject(r: _Reader, item: Any, index: int, variants: set[str]) -> Inject | None:
    path: Path = ("timeline", index)
    spec = r.mapping(item, path)
    if spec is None:
        return None
    actions = [k for k in spec if k in ACTIONS]
    extra = ("incident",) if "situation" in spec else ()
    r.keys(spec, path, (*COMMON_KEYS, *ACTIONS, *extra), "an inject")
    if len(actions) != 1:
        found = ", ".join(actions) or "none"
        r.fail(path, f"an inject does exactly one thing ({', '.join(ACTIONS)}); found {found}")
        return None
    action = actions[0]
    label = spec.get("label")
    if label is not None and (not isinstance(label, str) or not _LABEL.match(label)):
        r.fail((*path, "label"), f"{label!r} is not a label (lowercase letters, digits and '-')")
        label = None
    at, after, delay = _timing(r, spec, path, action)
    chosen = spec.get("variants")
    variant_list: tuple[str, ...] | None = None
    if chosen is not None:
        names = [chosen] if isinstance(chosen, str) else chosen
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            r.fail((*path, "variants"), "must be a variant name or a list of them")
        else:
            for name in names:
                if name not in variants:
                    known = ", ".join(sorted(variants)) or "none are declared under 'variants'"
                    r.fail((*path, "variants"), f"unknown variant {name!r} (variants: {known})")
            variant_list = tuple(names)
    note = r.text(spec.get("note"), (*path, "note"), required=False, limit=2000)
    raw = spec[action]
    body: dict[str, Any]
    situation: dict[str, str] = {}
    incident = None
    if action == "situation":
        situation = _situation(r, raw, (*path, action))
        body = {}
        if "incident" in spec:
            incident = _incident(r, spec["incident"], (*path, "incident"))
    elif isinstance(raw, str) and action in ("ack", "silence", *WORKFLOW_SHORTHANDS):
        body = {"ref": raw, **({"note": note} if note and action in ("ack", "silence") else {})}
    else:
        body = r.mapping(raw, (*path, action)) or {}
    return Inject(
        index=index, line=r.line(path), action=action, spec=body, label=label, at=at, after=after,
        delay=delay, variants=variant_list, note=note, situation=situation, incident=incident,
    )  # fmt: skip


def _timing(r: _Reader, spec: dict[str, Any], path: Path, action: str) -> tuple[datetime | None, str | None, Delay]:
    at_value, after, delay_value = spec.get("at"), spec.get("after"), spec.get("delay")
    zero = Delay(timedelta(0), timedelta(0))
    delay = zero
    if delay_value is not None:
        delay = _delay(r, delay_value, (*path, "delay"))
    if at_value is not None and after is not None:
        r.fail((*path, "at"), "give either 'at' or 'after' (with 'delay'), not both")
        return None, None, zero
    if after is not None:
        if not isinstance(after, str) or not _LABEL.match(after):
            r.fail((*path, "after"), "must be the label of an earlier inject")
            return None, None, delay
        return None, after, delay
    if at_value is None:
        ref = spec.get(action)
        ref = ref if isinstance(ref, str) else (ref.get("ref") if isinstance(ref, dict) else None)
        if isinstance(ref, str) and action not in ("situation", "send", "code", "status", "outage"):
            return None, ref, delay  # a reaction happens `delay` after what it reacts to
        r.fail(path, "say when: 'at' (a time or an offset from start) or 'after' an earlier inject")
        return None, None, delay
    if delay_value is not None:
        r.fail((*path, "delay"), "'delay' goes with 'after'; put an offset in 'at' instead")
    if isinstance(at_value, str) and at_value.strip().startswith(("+", "-")) or isinstance(at_value, int | float):
        try:
            offset = parse_duration(at_value)
        except Invalid as exc:
            r.fail((*path, "at"), exc.detail)
            return None, None, zero
        if offset < timedelta(0):
            r.fail((*path, "at"), "an offset from start cannot be negative")
        return None, "", Delay(offset, offset)  # after "" = after the start
    moment = r.time(at_value, (*path, "at"))
    return moment, None, zero


def _delay(r: _Reader, value: Any, path: Path) -> Delay:
    try:
        if isinstance(value, str) and ".." in value:
            low_text, high_text = value.split("..", 1)
            low, high = parse_duration(low_text), parse_duration(high_text)
            if high < low:
                r.fail(path, "a range goes from the shorter delay to the longer one")
                return Delay(low, low)
        else:
            low = high = parse_duration(value)
    except Invalid as exc:
        r.fail(path, exc.detail + " (or a range like 3m..8m)")
        return Delay(timedelta(0), timedelta(0))
    if low < timedelta(0):
        r.fail(path, "a delay cannot be negative")
    return Delay(low, high)


def _situation(r: _Reader, value: Any, path: Path) -> dict[str, str]:
    if isinstance(value, str):
        return {"all": r.text(value, path)}
    table = r.mapping(value, path)
    out: dict[str, str] = {}
    for key, text in (table or {}).items():
        if not re.match(r"^[a-z]{2,8}$", str(key)):
            r.fail((*path, key), "situation texts are keyed by party id (pk, ir) or 'all'")
        out[str(key)] = r.text(text, (*path, key))
    if table is not None and not out:
        r.fail(path, "give the situation text, or one per party")
    return out


def _incident(r: _Reader, value: Any, path: Path) -> Incident | None:
    table = r.mapping(value, path)
    if table is None:
        return None
    r.keys(table, path, ("kind", "place", "by", "where"), "an incident")
    kind = table.get("kind")
    if kind not in INCIDENT_KINDS:
        r.fail((*path, "kind"), f"{kind!r} is not an incident kind: {', '.join(INCIDENT_KINDS)}")
    place = r.text(table.get("place"), (*path, "place"), limit=200)
    by, where = table.get("by"), table.get("where")
    for key, party in (("by", by), ("where", where)):
        if party is not None and (not isinstance(party, str) or not re.match(r"^[a-z]{2,8}$", party)):
            r.fail((*path, key), "must be a party id like 'pk'")
    return Incident(str(kind), place, by if isinstance(by, str) else None, where if isinstance(where, str) else None)


def _check_labels(r: _Reader, injects: list[Inject]) -> None:
    seen: dict[str, Inject] = {}
    for inject in injects:
        if inject.label is None:
            continue
        if inject.label in seen:
            first = seen[inject.label]
            r.fail(("timeline", inject.index, "label"), f"label {inject.label!r} is already used at line {first.line}")
        else:
            seen[inject.label] = inject


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
