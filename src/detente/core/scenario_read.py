"""Reading a scenario's YAML: every value with its line, every problem of shape and type reported.

`core.scenario_yaml` turns the text into data and the line of each value (a key given twice, a
cyclic alias and text that is not YAML are problems there); the data is then read into the model of
`core.scenario`, collecting every problem (line, path, message) instead of stopping at the first.
Times stay strings and are parsed by `core.precedence`. Pure: it reads the text it is given.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from detente.core.precedence import parse_time
from detente.core.scenario import (
    ACTIONS,
    COMMON_KEYS,
    FIRST_YEAR,
    FORMAT_VERSION,
    INCIDENT_KINDS,
    LABEL,
    LAST_YEAR,
    MAX_DURATION,
    OFFICE_ID,
    SPEED_RANGE,
    TOP_KEYS,
    WORKFLOW_SHORTHANDS,
    Delay,
    Incident,
    Inject,
    Path,
    Scenario,
    ScenarioError,
    parse_duration,
    show,
)
from detente.core.scenario_yaml import document
from detente.errors import Invalid


class _Reader:
    """Collects problems with their lines while reading a decoded document."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.problems: list[tuple[int, str, str]] = []
        self.broken: set[int] = set()  # timeline indexes of injects with a problem

    def line(self, path: Path) -> int:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return self.lines.get(probe, 1)

    def fail(self, path: Path, message: str) -> None:
        self.problems.append((self.line(path), show(path), message))
        if len(path) >= 2 and path[0] == "timeline" and isinstance(path[1], int):
            self.broken.add(path[1])

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
        if not isinstance(value, str) or not OFFICE_ID.match(value):
            self.fail(path, f"{value!r} is not an office id like 'pk:dgmo'")
            return None
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a text", bool: "true/false"}.get(type(value), type(value).__name__)


def read(text: str, source: str = "scenario", *, partial: bool = False) -> Scenario:
    """Read and check a scenario's YAML text. Raises `ScenarioError` listing every problem by line.

    With `partial`, problems found in a scenario that could still be read (its start is known) are
    returned in it (`Scenario.problems`, the injects concerned in `Scenario.broken`) instead.
    """
    data, lines, dupes = document(text, source)
    reader = _Reader(lines)
    reader.problems.extend(dupes)
    for _, where, _ in dupes:
        inject = re.match(r"^timeline\[(\d+)\]", where)
        if inject:
            reader.broken.add(int(inject.group(1)))
    scenario = _read(reader, data, source)
    if scenario is None or (reader.problems and not partial):
        raise ScenarioError(source, reader.problems or [(1, "", "the scenario is empty")])
    if not reader.problems:
        return scenario
    return replace(scenario, problems=tuple(reader.problems), broken=frozenset(reader.broken))


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
    low, high = SPEED_RANGE
    if not isinstance(speed, int | float) or isinstance(speed, bool) or not low <= speed <= high:
        r.fail(("speed",), f"must be a number of drill seconds per real second, from {low:g} to {high:.0f}")
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
    operators = _string_map(r, doc.get("operators", {}), ("operators",), key_pattern=OFFICE_ID)
    variants = _string_map(r, doc.get("variants", {}), ("variants",), key_pattern=LABEL)
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
    for key, moment in (("start", start), ("end", end)):
        if moment is not None and not FIRST_YEAR <= moment.year <= LAST_YEAR:
            r.fail((key,), f"must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    if start is not None and end is not None and end <= start:
        r.fail(("end",), "must be after start")
    elif start is not None and end is not None and end - start > MAX_DURATION:
        r.fail(("end",), f"a drill spans at most {MAX_DURATION.days}d (ten years) of drill time")
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
    if label is not None and (not isinstance(label, str) or not LABEL.match(label)):
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
    assumed = r.text(spec.get("assumed"), (*path, "assumed"), required=False, limit=2000)
    uncertain = r.text(spec.get("uncertain"), (*path, "uncertain"), required=False, limit=2000)
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
        assumed=assumed, uncertain=uncertain,
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
        if not isinstance(after, str) or not LABEL.match(after):
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
