"""Building a step from an inject: who sends what to whom, on which channel, about which incident.

Shorthands (`ack`, `answer`, `consent`, `verify`, `cosign`, ...) are filled in from the message they
refer to and the roles of `core.workflow_base` (the counterpart answers, the counterpart's liaison
office verifies); a message about an incident joins the case its first `incident.report` opened.
Times in bodies are resolved to absolute drill times. Problems are collected, never raised. Pure.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from detente.core import codebook, notifications
from detente.core.agreement import Agreement
from detente.core.bodies import is_blank
from detente.core.precedence import Precedence, deadline_for, format_time, parse_time
from detente.core.scenario import WORKFLOW_SHORTHANDS, Inject, Path, Scenario, parse_duration, precedence_of
from detente.core.scenario_steps import Message, Problems, Step, body_problems, resolve_times
from detente.core.workflow_base import party as party_of
from detente.errors import Invalid

CONTROL_KEYS = ("ref", "refs", "from", "to", "channel", "precedence", "about", "case", "lang", "by")


SEND_KEYS = ("from", "to", "type", "precedence", "body", "channel", "refs", "case", "about", "lang")


CODE_KEYS = ("from", "to", "code", "params", "note", "precedence", "channel", "refs", "case", "about", "lang")


def build(
    scenario: Scenario, agreement: Agreement, inject: Inject, at: datetime, n: int,
    built: dict[str, Step], incidents: dict[str, Inject], problems: Problems,
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
        peer = spec.get("peer")
        others = [p for p in agreement.parties if p != own]
        if peer is None and len(others) == 1:
            peer = others[0]  # two parties: the status goes to the other one
        elif peer is None:
            # A status is one envelope to one peer; in a group the scenario says which.
            problems.add(base, f"say which party {own} tells: 'peer' (one of {', '.join(others)})")
        elif peer not in others:
            problems.add((*base, "peer"), f"{peer!r} is not another party of the agreement ({', '.join(others)})")
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
            _may_answer(office, target, at, inject.action, (*base, "by"), agreement, problems)
        text = str(spec.get("reason") or spec.get("note") or "")
        if inject.action == "decline" and is_blank(text):
            problems.add((*base, "reason"), "a decline says why (the reason must not be blank)")
        kind = inject.action
        return Step(n, inject, at, kind, office=office, target=target.label, text=text, about=target.about)
    message = _message(scenario, agreement, inject, at, built, problems)
    if message is None or len(problems.items) > before:
        return None
    if about is None:
        about = _inherited_about(message, built)
    if message.case is None and about is not None and message.type != "case.open" and spec.get("case") != "none":
        # A case stays between the two parties whose message opened it (a node refuses a third), so
        # in a group each pair's messages about one incident join the case that pair opened.
        pair = _parties(message)
        opener = next(
            (
                s for s in built.values()
                if s.about == about and s.message is not None and s.message.type in ("incident.report", "case.open")
                and _parties(s.message) == pair
            ),
            None,
        )  # fmt: skip
        if opener is not None and opener.message is not None:
            message = replace(message, case=opener.message.case or opener.label)
    return Step(n, inject, at, "message", office=message.sender, message=message, about=about)


def _parties(message: Message) -> frozenset[str]:
    """Return the two parties a message passes between."""
    return frozenset(party_of(office) for office in (message.sender, message.to))


def _may_answer(
    office: str, target: Step, at: datetime, kind: str, path: Path, agreement: Agreement, problems: Problems
) -> None:
    """Check, as a node does, that `office` may acknowledge or decline `target`'s message at `at`.

    The addressee may answer at any time; the alternates of its office only once the message is
    overdue (escalation), which in drill time is its precedence's deadline on its channel.
    """
    assert target.message is not None
    to, label = target.message.to, target.label
    if office == to:
        return
    alternates = agreement.alternates(to)
    if office not in alternates:
        chain = ", ".join(alternates) or "none"
        problems.add(path, f"{office} cannot answer {label!r}: it is addressed to {to} (its alternates: {chain})")
        return
    channel = agreement.channels.get(target.message.channel)
    due = deadline_for(target.at, target.message.precedence, channel.deadlines if channel else None)
    if at < due:
        problems.add(
            path,
            f"{office} is an alternate of {to}, so it may {'acknowledge' if kind == 'ack' else 'decline'} "
            f"{label!r} only once it is overdue, at its {target.message.precedence.value} deadline "
            f"{format_time(due)}; this step is at {format_time(at)}",
        )


def _about(spec: dict[str, Any], base: Path, incidents: dict[str, Inject], problems: Problems) -> str | None:
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


def _unknown(spec: dict[str, Any], base: Path, allowed: tuple[str, ...], problems: Problems) -> None:
    for key in spec:
        if key not in allowed:
            problems.add((*base, key), f"unknown key {key!r}; expected one of: {', '.join(allowed)}")


def _office(value: Any, path: Path, agreement: Agreement, problems: Problems) -> str | None:
    if not isinstance(value, str) or value not in agreement.offices:
        offices = ", ".join(sorted(agreement.offices))
        problems.add(path, f"{value!r} is not an office of the agreement ({offices})")
        return None
    return value


def _ref_step(value: Any, path: Path, built: dict[str, Step], problems: Problems, scenario: Scenario) -> Step | None:
    if not isinstance(value, str):
        problems.add(path, "must be the label of an earlier inject")
        return None
    step = built.get(value)
    if step is None:
        if any(i.label == value for i in scenario.injects):
            problems.add(path, problems.why_missing(value))
        else:
            problems.add(path, f"no inject is labelled {value!r}")
    return step


def _channel(sender: str, to: str, given: Any, path: Path, agreement: Agreement, problems: Problems) -> str | None:
    if given is not None:
        chan = agreement.channels.get(str(given))
        if chan is None or {sender, to} != set(chan.offices):
            problems.add(path, f"channel {given!r} does not link {sender} and {to}")
            return None
        return str(given)
    found = [c.name for c in agreement.channels.values() if set(c.offices) == {sender, to}]
    if len(found) > 1:
        problems.add(path, f"channels {', '.join(found)} all link {sender} and {to}: name one ('channel')")
        return None
    if not found:
        # In a group, channels are per pair of offices: say where the sender can reach, so that a
        # step sent to the wrong office (or between parties that have no channel) is plain.
        reach = ", ".join(f"{c.other(sender)} ({c.name})" for c in agreement.channels_of(sender)) or "none"
        problems.add(
            (*path[:-1], "to"), f"no channel of the agreement links {sender} and {to} ({sender} reaches: {reach})"
        )
        return None
    return found[0]


def _message(
    scenario: Scenario, agreement: Agreement, inject: Inject, at: datetime, built: dict[str, Step],
    problems: Problems,
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
    resolved, paths = resolve_times(kind, body, at, body_path, agreement, problems)
    if channel is None or precedence is None:
        try:  # still report what is wrong with the body, so every problem shows at once
            notifications.validate_body(kind, resolved, agreement)
        except Invalid as exc:
            body_problems(exc, body_path, base, kind, problems)
        return None
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
    role: str, opener: Message, spec: dict[str, Any], base: Path, agreement: Agreement, problems: Problems
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
