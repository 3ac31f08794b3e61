"""A scenario variant resolved into timed steps, and dry-run against the agreement in drill time.

`plan(scenario, agreement, variant)` draws every delay from the scenario's seed (the same draw for
an inject in every variant, so variants that share an inject share its timing), orders the steps by
drill time, fills in what shorthands leave out (sender, addressee, channel, precedence, case), and
then runs each message through the same rules a node applies (`notifications.check_route`,
`notifications.validate_message` with `created` = the step's drill time) and through the workflow
state machines (`core.workflows`), on synthetic envelopes. Lead times, deadlines, answer counts and
transitions are therefore checked in drill time, before any node is touched, and every problem is
reported at its line. Pure: no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detente.core import codebook, notifications, workflows
from detente.core.agreement import Agreement
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence, format_time, parse_time
from detente.core.scenario import (
    WORKFLOW_SHORTHANDS,
    Incident,
    Inject,
    Path,
    Scenario,
    ScenarioError,
    parse_duration,
    precedence_of,
    show,
)
from detente.core.workflows_consultation import minutes_digest
from detente.errors import Invalid, InvalidTransition

CONTROL_KEYS = ("ref", "refs", "from", "to", "channel", "precedence", "about", "case", "lang", "by")
SEND_KEYS = ("from", "to", "type", "precedence", "body", "channel", "refs", "case", "about", "lang")
CODE_KEYS = ("from", "to", "code", "params", "note", "precedence", "channel", "refs", "case", "about", "lang")
DEFAULT_TAIL = timedelta(hours=1)  # ENDEX after the last step, when the scenario names no end


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
                    value = _get(step.message.body, path)
                    if isinstance(value, str):
                        points.append(parse_time(value))
        return sorted(p for p in points if self.start <= p <= self.end)


class _Problems:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.items: list[tuple[int, str, str]] = []

    def add(self, path: Path, message: str) -> None:
        self.items.append((self.scenario.line_of(path), show(path), message))


def plan(
    scenario: Scenario, agreement: Agreement, variant: str | None = None, *, humans: frozenset[str] = frozenset()
) -> Plan:
    """Resolve `variant` into steps and dry-run them. Raises `ScenarioError` listing every problem.

    Offices in `humans` are played by people: their scripted steps, and steps that need what those
    would have sent, are left out (each noted in `Plan.notices`).
    """
    problems = _Problems(scenario)
    if variant is not None and variant not in scenario.variants:
        problems.add(("variants",), f"no variant {variant!r}; variants: {', '.join(scenario.variants) or 'none'}")
        raise ScenarioError(scenario.source, problems.items)
    _check_parties(scenario, agreement, problems)
    times = _times(scenario, variant, problems)
    injects = [i for i in scenario.injects if i.in_variant(variant) and i.index in times]
    ordered = sorted(injects, key=lambda i: (times[i.index], i.index))
    incidents = {i.label: i for i in injects if i.label and i.incident is not None}
    steps: list[Step] = []
    built: dict[str, Step] = {}
    for n, inject in enumerate(ordered):
        step = _build(scenario, agreement, inject, times[inject.index], n, built, incidents, problems)
        if step is None:
            continue
        steps.append(step)
        if inject.label:
            built[inject.label] = step
    if not problems.items:
        _dry_run(agreement, steps, problems)
    if problems.items:
        raise ScenarioError(scenario.source, problems.items)
    end = scenario.end or (max(s.at for s in steps) + DEFAULT_TAIL if steps else scenario.start + DEFAULT_TAIL)
    late = [s for s in steps if s.at > end]
    if late:
        problems.add(("end",), f"ENDEX {format_time(end)} is before step at line {late[0].line}")
        raise ScenarioError(scenario.source, problems.items)
    kept, notices = _without_humans(steps, humans)
    return Plan(scenario, variant, tuple(kept), scenario.start, end, tuple(notices))


def _check_parties(scenario: Scenario, agreement: Agreement, problems: _Problems) -> None:
    for party in scenario.parties:
        if party not in agreement.parties:
            problems.add(("parties", party), f"the agreement has no party {party!r}")
    for office in scenario.operators:
        if office not in agreement.offices:
            problems.add(("operators", office), f"the agreement has no office {office!r}")


def _times(scenario: Scenario, variant: str | None, problems: _Problems) -> dict[int, datetime]:
    rng = random.Random(scenario.seed)
    draws = {i.index: rng.random() for i in scenario.injects}  # one draw per inject, in file order
    labels = {i.label: i for i in scenario.injects if i.label}
    times: dict[int, datetime] = {}
    for inject in scenario.injects:
        if not inject.in_variant(variant):
            continue
        spread = (inject.delay.high - inject.delay.low).total_seconds()
        delay = inject.delay.low + timedelta(seconds=round(spread * draws[inject.index]))
        base: datetime | None
        if inject.at is not None:
            base, delay = inject.at, timedelta(0)
        elif inject.after == "":
            base = scenario.start
        elif inject.after is not None:
            ref = labels.get(inject.after)
            where: Path = ("timeline", inject.index, "after" if _explicit_after(inject) else inject.action)
            if ref is None:
                problems.add(where, f"no inject is labelled {inject.after!r}")
                continue
            if ref.index >= inject.index:
                problems.add(where, f"{inject.after!r} (line {ref.line}) must come earlier in the timeline")
                continue
            if not ref.in_variant(variant):
                problems.add(where, f"{inject.after!r} (line {ref.line}) is not part of variant {variant!r}")
                continue
            base = times.get(ref.index)
        else:
            continue
        if base is None:
            continue
        moment = base + delay
        if moment < scenario.start:
            problems.add(("timeline", inject.index, "at"), f"{format_time(moment)} is before the start")
            continue
        times[inject.index] = moment
    return times


def _explicit_after(inject: Inject) -> bool:
    ref = inject.spec.get("ref")
    return not (isinstance(ref, str) and ref == inject.after)


def _build(
    scenario: Scenario, agreement: Agreement, inject: Inject, at: datetime, n: int,
    built: dict[str, Step], incidents: dict[str, Inject], problems: _Problems,
) -> Step | None:  # fmt: skip
    base: Path = ("timeline", inject.index, inject.action)
    spec = inject.spec
    before = len(problems.items)
    about = _about(spec, base, incidents, problems)
    if inject.action == "situation":
        return Step(n, inject, at, "situation", about=inject.label if inject.incident else None)
    if inject.action == "outage":
        party = spec.get("party")
        if party not in agreement.parties:
            problems.add((*base, "party"), f"{party!r} is not a party of the agreement")
        try:
            duration = parse_duration(spec.get("for"))
        except Invalid as exc:
            problems.add((*base, "for"), exc.detail)
            return None
        if duration <= timedelta(0):
            problems.add((*base, "for"), "an outage lasts some time")
        _unknown(spec, base, ("party", "for"), problems)
        return Step(n, inject, at, "outage", party=str(party), duration=duration)
    if inject.action == "status":
        _unknown(spec, base, ("from", "code", "note", "peer"), problems)
        office = _office(spec.get("from"), (*base, "from"), agreement, problems)
        code = spec.get("code")
        if code not in ("TECH", "DECLINED", "AWAITING_AUTHORITY", "BUSY", "OK"):
            problems.add((*base, "code"), f"{code!r} is not TECH, DECLINED, AWAITING_AUTHORITY, BUSY or OK")
        own = office.split(":")[0] if office else ""
        peer = spec.get("peer") or next((p for p in agreement.parties if p != own), "")
        text = str(spec.get("note", ""))
        return Step(n, inject, at, "status", office=office, code=str(code), party=str(peer), text=text)
    if inject.action in ("ack", "decline", "silence"):
        allowed = {"ack": ("ref", "note", "by"), "decline": ("ref", "reason", "by"), "silence": ("ref", "note")}
        _unknown(spec, base, allowed[inject.action], problems)
        target = _ref_step(spec.get("ref"), (*base, "ref"), built, problems, scenario)
        if target is None or target.message is None:
            if target is not None:
                problems.add((*base, "ref"), f"{spec.get('ref')!r} is not a message")
            return None
        office = target.message.to
        if spec.get("by") is not None:
            office = _office(spec.get("by"), (*base, "by"), agreement, problems) or office
        text = str(spec.get("reason") or spec.get("note") or "")
        if inject.action == "decline" and not text.strip():
            problems.add((*base, "reason"), "a decline says why")
        kind = inject.action
        return Step(n, inject, at, kind, office=office, target=target.label, text=text, about=target.about)
    message = _message(scenario, agreement, inject, at, built, problems)
    if message is None or len(problems.items) > before:
        return None
    if about is None:
        about = _inherited_about(message, built)
    if message.case is None and about is not None and message.type != "case.open" and spec.get("case") != "none":
        opener = next(
            (
                s for s in built.values()
                if s.about == about and s.message is not None and s.message.type in ("incident.report", "case.open")
            ),
            None,
        )  # fmt: skip
        if opener is not None and opener.message is not None:
            message = replace(message, case=opener.message.case or opener.label)
    return Step(n, inject, at, "message", office=message.sender, message=message, about=about)


def _about(spec: dict[str, Any], base: Path, incidents: dict[str, Inject], problems: _Problems) -> str | None:
    """The incident a message is about; it may come later (a pre-notification is about what follows)."""
    about = spec.get("about")
    if about is None:
        return None
    if str(about) not in incidents:
        problems.add((*base, "about"), f"{about!r} is not the label of an incident (a situation with 'incident') here")
        return None
    return str(about)


def _inherited_about(message: Message, built: dict[str, Step]) -> str | None:
    for label in (*message.refs, message.case):
        step = built.get(label) if label else None
        if step is not None and step.about:
            return step.about
    return None


def _unknown(spec: dict[str, Any], base: Path, allowed: tuple[str, ...], problems: _Problems) -> None:
    for key in spec:
        if key not in allowed:
            problems.add((*base, key), f"unknown key {key!r}; expected one of: {', '.join(allowed)}")


def _office(value: Any, path: Path, agreement: Agreement, problems: _Problems) -> str | None:
    if not isinstance(value, str) or value not in agreement.offices:
        offices = ", ".join(sorted(agreement.offices))
        problems.add(path, f"{value!r} is not an office of the agreement ({offices})")
        return None
    return value


def _ref_step(value: Any, path: Path, built: dict[str, Step], problems: _Problems, scenario: Scenario) -> Step | None:
    if not isinstance(value, str):
        problems.add(path, "must be the label of an earlier inject")
        return None
    step = built.get(value)
    if step is None:
        known = {i.label: i for i in scenario.injects if i.label}
        if value in known:
            problems.add(path, f"{value!r} (line {known[value].line}) does not happen before this in this variant")
        else:
            problems.add(path, f"no inject is labelled {value!r}")
    return step


def _channel(sender: str, to: str, given: Any, path: Path, agreement: Agreement, problems: _Problems) -> str | None:
    if given is not None:
        chan = agreement.channels.get(str(given))
        if chan is None or {sender, to} != set(chan.offices):
            problems.add(path, f"channel {given!r} does not link {sender} and {to}")
            return None
        return str(given)
    found = [c.name for c in agreement.channels.values() if set(c.offices) == {sender, to}]
    if len(found) != 1:
        problems.add(path, f"no channel of the agreement links {sender} and {to}")
        return None
    return found[0]


def _message(
    scenario: Scenario, agreement: Agreement, inject: Inject, at: datetime, built: dict[str, Step],
    problems: _Problems,
) -> Message | None:  # fmt: skip
    base: Path = ("timeline", inject.index, inject.action)
    spec = inject.spec
    refs: list[str] = []
    opener: Step | None = None
    digest_of = None
    if inject.action == "send":
        _unknown(spec, base, SEND_KEYS, problems)
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in notifications.CATALOG:
            problems.add((*base, "type"), f"{kind!r} is not a message type of the catalog")
            return None
        body = spec.get("body", {})
        if not isinstance(body, dict):
            problems.add((*base, "body"), "must be a mapping")
            return None
        body_path: Path = (*base, "body")
        sender = _office(spec.get("from"), (*base, "from"), agreement, problems)
        to = _office(spec.get("to"), (*base, "to"), agreement, problems)
    elif inject.action == "code":
        _unknown(spec, base, CODE_KEYS, problems)
        kind = "code"
        body = {"code": spec.get("code"), "params": spec.get("params", {}), "note": spec.get("note", "")}
        if not body["note"]:
            del body["note"]
        body_path = base
        sender = _office(spec.get("from"), (*base, "from"), agreement, problems)
        to = _office(spec.get("to"), (*base, "to"), agreement, problems)
        entry = codebook.codebook(agreement.raw).get(str(spec.get("code")))
        if entry is None:
            problems.add((*base, "code"), f"{spec.get('code')!r} is not in the agreement's codebook")
            return None
        if spec.get("precedence") is None:
            spec = {**spec, "precedence": (entry.precedence or Precedence.IMMEDIATE).value}
    else:
        kind, role = WORKFLOW_SHORTHANDS[inject.action]
        opener = _ref_step(spec.get("ref"), (*base, "ref"), built, problems, scenario)
        if opener is None or opener.message is None:
            return None
        if inject.action == "cosign":
            minutes = opener
            if minutes.message is None or minutes.message.type != "consultation.minutes":
                problems.add((*base, "ref"), "cosign refers to the minutes it co-signs")
                return None
            opener = built.get(minutes.message.refs[0]) if minutes.message.refs else None
            if opener is None or opener.message is None:
                return None
            refs = [opener.label or "", minutes.label or ""]
            digest_of = minutes.label
        else:
            refs = [opener.label or ""]
        assert opener.message is not None
        body = {k: v for k, v in spec.items() if k not in CONTROL_KEYS}
        body_path = base
        sender, to = _roles(role, opener.message, spec, base, agreement, problems)
        if kind == "action.execute":
            body.setdefault("started", format_time(at))
        if kind == "consultation.held":
            body.setdefault("held_at", format_time(at))
        if kind == "consultation.cosign":
            body["sha256"] = "0" * 64  # filled in from the minutes as sent
        if spec.get("precedence") is None:
            spec = {**spec, "precedence": opener.message.precedence.value}
    if sender is None or to is None:
        return None
    if sender.split(":")[0] == to.split(":")[0]:
        problems.add((*base, "to"), f"{sender} and {to} belong to the same party")
        return None
    channel = _channel(sender, to, spec.get("channel"), (*base, "channel"), agreement, problems)
    precedence = precedence_of(spec.get("precedence"))
    if precedence is None:
        problems.add((*base, "precedence"), f"{spec.get('precedence')!r} is not FLASH, IMMEDIATE, PRIORITY or ROUTINE")
    for index, label in enumerate(spec.get("refs", []) if inject.action in ("send", "code") else []):
        if _ref_step(label, (*base, "refs", index), built, problems, scenario) is not None:
            refs.append(str(label))
    case = spec.get("case")
    if case is not None and case != "none":
        case_step = _ref_step(case, (*base, "case"), built, problems, scenario)
        opener_types = ("incident.report", "case.open")
        if case_step is not None and (case_step.message is None or case_step.message.type not in opener_types):
            problems.add((*base, "case"), f"{case!r} did not open a case (an incident.report or case.open does)")
    lang = spec.get("lang")
    if lang is not None and lang not in agreement.languages:
        problems.add((*base, "lang"), f"{lang!r} is not a language of the agreement")
    if channel is None or precedence is None:
        return None
    resolved, paths = _resolve_times(kind, body, at, body_path, agreement, problems)
    if kind == "clarification.request" and "deadline" not in resolved:
        due = codebook.response_deadline(agreement.raw, kind)
        if due is not None:
            resolved["deadline"] = format_time(at + due)
            paths.append(("deadline",))
    if kind == "operation.prenotify" and "respond_by" not in resolved:
        due = codebook.response_deadline(agreement.raw, kind)
        window = resolved.get("window")
        if due is not None and isinstance(window, dict) and isinstance(window.get("start"), str):
            try:
                resolved["respond_by"] = format_time(min(at + due, parse_time(window["start"])))
                paths.append(("respond_by",))
            except Invalid:
                pass
    return Message(
        type=kind, channel=channel, sender=sender, to=to, precedence=precedence, body=resolved,
        refs=tuple(refs), case=None if case in (None, "none") else str(case),
        lang=lang if isinstance(lang, str) else None, time_paths=tuple(paths), digest_of=digest_of,
    )  # fmt: skip


def _roles(
    role: str, opener: Message, spec: dict[str, Any], base: Path, agreement: Agreement, problems: _Problems
) -> tuple[str | None, str | None]:
    given_from = spec.get("from")
    if given_from is not None:
        sender = _office(given_from, (*base, "from"), agreement, problems)
    elif role == "counterpart":
        sender = opener.to
    elif role == "liaison":
        party = opener.to.split(":")[0]
        liaisons = [o for o in agreement.offices if o.startswith(party + ":lo-")]
        if len(liaisons) != 1:
            problems.add((*base, "from"), f"say which liaison office of {party} acts: 'from'")
            return None, None
        sender = liaisons[0]
    else:
        sender = opener.sender
    if sender is None:
        return None, None
    if spec.get("to") is not None:
        return sender, _office(spec.get("to"), (*base, "to"), agreement, problems)
    if sender == opener.sender:
        return sender, opener.to
    if sender == opener.to:
        return sender, opener.sender
    ends = [c.other(sender) for c in agreement.channels_of(sender)]
    if len(ends) != 1:
        problems.add((*base, "to"), f"say to which office {sender} sends it: 'to'")
        return sender, None
    return sender, ends[0]


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


def _get(body: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        body = body[int(part)] if isinstance(body, list) else body.get(part) if isinstance(body, dict) else None
    return body


def _set(body: Any, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        body = body[int(part)] if isinstance(body, list) else body[part]
    if isinstance(body, list):
        body[int(path[-1])] = value
    else:
        body[path[-1]] = value


def with_times(body: dict[str, Any], paths: tuple[tuple[str, ...], ...], convert: Any) -> dict[str, Any]:
    """Return a deep copy of `body` with the time at each path replaced by `convert(path, drill time)`."""
    import copy

    out = copy.deepcopy(body)
    for path in paths:
        value = _get(out, path)
        if isinstance(value, str):
            _set(out, path, convert(path, parse_time(value)))
    return out


def _resolve_times(
    kind: str, body: dict[str, Any], at: datetime, base: Path, agreement: Agreement, problems: _Problems
) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    """Turn relative times (`+26h`, `-10m`, from the step's drill time) into absolute drill times."""
    import copy

    out = copy.deepcopy(body)
    paths = time_fields(kind, out, agreement)
    for path in paths:
        value = _get(out, path)
        if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
            try:
                _set(out, path, format_time(at + parse_duration(value)))
            except Invalid as exc:
                problems.add((*base, *path), exc.detail)
        elif isinstance(value, str):
            try:
                parse_time(value)
            except Invalid as exc:
                problems.add((*base, *path), exc.detail + ", or an offset from this inject like +26h")
    return out, paths


def _dry_run(agreement: Agreement, steps: list[Step], problems: _Problems) -> None:
    """Check every step as a node would, on synthetic envelopes with `created` = the step's drill time."""
    ids = {s.label: f"00000000-0000-7000-8000-{s.n:012d}" for s in steps if s.label}
    sent: dict[str, Step] = {}
    answered: set[str] = set()
    states: dict[str, Any] = {}
    bodies: dict[str, dict[str, Any]] = {}
    for step in steps:
        base: Path = ("timeline", step.inject.index, step.inject.action)
        if step.kind in ("ack", "decline", "silence"):
            target = sent.get(step.target or "")
            if target is None or target.message is None:
                continue
            if step.at < target.at:
                problems.add(("timeline", step.inject.index), f"answers {step.target!r} before it is sent")
            if not notifications.get(target.message.type).needs_ack:
                problems.add((*base, "ref"), f"a {target.message.type} message is not acknowledged")
            if step.kind != "silence":
                if step.target in answered:
                    problems.add((*base, "ref"), f"{step.target!r} is already acknowledged or declined")
                answered.add(step.target or "")
                if step.office and step.office.split(":")[0] != target.message.to.split(":")[0]:
                    problems.add((*base, "by"), f"only {target.message.to}'s side can answer {step.target!r}")
            continue
        message = step.message
        if message is None:
            continue
        body = message.body
        if message.digest_of is not None:
            body = {**body, "sha256": minutes_digest(bodies[message.digest_of])}
        if step.label:
            bodies[step.label] = body
        refs = [ids[r] for r in message.refs]
        case = ids.get(message.case) if message.case else None
        where: Path = (*base, "body") if step.inject.action == "send" else base
        try:
            notifications.check_route(message.type, message.channel, message.precedence, refs, agreement)
            notifications.validate_message(
                message.type, body, agreement, created=step.at, precedence=message.precedence, refs=refs, case=case,
            )  # fmt: skip
        except Invalid as exc:
            fields = exc.extra.get("fields")
            if isinstance(fields, dict) and fields:
                for key, text in fields.items():
                    parts = tuple(str(key).split("."))
                    target_path = (*base, parts[0]) if parts[0] in ("precedence", "refs", "case") else (*where, *parts)
                    problems.add(target_path, f"{message.type}: {text}")
            else:
                problems.add(base, f"{message.type}: {exc.detail}")
            continue
        envelope = _synthetic(step, ids, refs, case, body, agreement)
        for kind, target_id in workflows.targets(envelope):
            try:
                states[target_id] = workflows.APPLY[kind](states.get(target_id), envelope)
            except InvalidTransition as exc:
                problems.add(base, f"{message.type}: {exc.detail}")
        if step.label:
            sent[step.label] = step


def _synthetic(
    step: Step, ids: dict[str, str], refs: list[str], case: str | None, body: dict[str, Any], agreement: Agreement
) -> Envelope:
    message = step.message
    assert message is not None
    data = {
        "v": 1, "id": ids.get(step.label or "", f"00000000-0000-7000-9000-{step.n:012d}"),
        "agreement": agreement.hash, "channel": message.channel, "from": message.sender, "to": message.to,
        "seq": step.n + 1, "author": "drill", "precedence": message.precedence.value, "type": message.type,
        "lang": message.lang or agreement.languages[0], "refs": refs, "case": case,
        "created": format_time(step.at), "body": body, "sig": "",
    }  # fmt: skip
    return Envelope(data, b"")


def _without_humans(steps: list[Step], humans: frozenset[str]) -> tuple[list[Step], list[str]]:
    if not humans:
        return steps, []
    dropped: set[str] = set()
    kept: list[Step] = []
    notices: list[str] = []
    for step in steps:
        needs = set()
        if step.message is not None:
            needs = {*step.message.refs, *([step.message.case] if step.message.case else [])}
        if step.target:
            needs.add(step.target)
        if step.office in humans or needs & dropped:
            why = f"{step.office} is played by a person" if step.office in humans else "it needs a step left out"
            notices.append(f"line {step.line}: {step.kind} {step.label or ''} left out: {why}".replace("  ", " "))
            if step.label:
                dropped.add(step.label)
            continue
        kept.append(step)
    return [replace(s, n=i) for i, s in enumerate(kept)], notices


def operators_needed(plan_: Plan) -> dict[str, str]:
    """Return office -> demo operator name for every office that acts in the plan."""
    return {office: plan_.scenario.operator_for(office) for office in sorted(plan_.offices())}


__all__ = ["Message", "Plan", "Step", "operators_needed", "plan", "time_fields", "with_times"]
