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
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from detente.core import notifications, workflows
from detente.core.agreement import Agreement
from detente.core.bodies import require_words
from detente.core.envelope import Envelope
from detente.core.precedence import format_time
from detente.core.scenario import (
    MAX_DURATION,
    Inject,
    Path,
    Scenario,
    ScenarioError,
)
from detente.core.scenario_build import build
from detente.core.scenario_steps import Message, Plan, Problems, Step, body_problems, time_fields, with_times
from detente.core.workflow_base import party as party_of
from detente.core.workflows_consultation import minutes_digest
from detente.errors import Invalid, InvalidTransition

DEFAULT_TAIL = timedelta(hours=1)  # ENDEX after the last step, when the scenario names no end


def plan(
    scenario: Scenario, agreement: Agreement, variant: str | None = None, *, humans: frozenset[str] = frozenset()
) -> Plan:
    """Resolve `variant` into steps and dry-run them. Raises `ScenarioError` listing every problem.

    Offices in `humans` are played by people: their scripted steps, and steps that need what those
    would have sent, are left out (each noted in `Plan.notices`).
    """
    problems = Problems(scenario, variant)
    # What reading found comes first: one run lists every problem of the file, not one pass's.
    problems.items.extend(scenario.problems)
    if variant is not None and variant not in scenario.variants:
        problems.add(("variants",), f"no variant {variant!r}; variants: {', '.join(scenario.variants) or 'none'}")
        raise ScenarioError(scenario.source, problems.items)
    _check_parties(scenario, agreement, problems)
    times = _times(scenario, variant, problems)
    problems.times = times
    problems.failed = {i.label for i in scenario.injects if i.label and i.index in scenario.broken}
    injects = [i for i in scenario.injects if i.in_variant(variant) and i.index in times]
    ordered = sorted(injects, key=lambda i: (times[i.index], i.index))
    incidents = {i.label: i for i in injects if i.label and i.incident is not None}
    steps: list[Step] = []
    built: dict[str, Step] = {}
    for n, inject in enumerate(ordered):
        problems.at = times[inject.index]
        step = build(scenario, agreement, inject, times[inject.index], n, built, incidents, problems)
        if step is None:
            if inject.label:
                problems.failed.add(inject.label)
            continue
        steps.append(step)
        if inject.label:
            built[inject.label] = step
    # Always dry-run what could be built, so that its problems show with the others.
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


def _check_parties(scenario: Scenario, agreement: Agreement, problems: Problems) -> None:
    """Add a problem for each party or office the scenario names and the agreement lacks.

    Besides `parties:` and `operators:`, the parties a situation is shown to and those an incident
    names (`by`, `where`): a situation for a party with no node would never be shown, and in a
    group of states a typo there (`fa` for `af`) is otherwise silent.
    """
    known = ", ".join(agreement.parties)
    for party in scenario.parties:
        if party not in agreement.parties:
            problems.add(("parties", party), f"the agreement has no party {party!r} (its parties: {known})")
    for office in scenario.operators:
        if office not in agreement.offices:
            problems.add(("operators", office), f"the agreement has no office {office!r}")
    for inject in scenario.injects:
        base: Path = ("timeline", inject.index)
        for shown in inject.situation:
            if shown != "all" and shown not in agreement.parties:
                problems.add(
                    (*base, "situation", shown), f"the agreement has no party {shown!r} (its parties: {known})"
                )
        incident = inject.incident
        for key, named in (("by", incident.by), ("where", incident.where)) if incident else ():
            if named is not None and named not in agreement.parties:
                problems.add((*base, "incident", key), f"the agreement has no party {named!r} (its parties: {known})")


def _times(scenario: Scenario, variant: str | None, problems: Problems) -> dict[int, datetime]:
    rng = random.Random(scenario.seed)
    draws = {i.index: rng.random() for i in scenario.injects}  # one draw per inject, in file order
    labels = {i.label: i for i in scenario.injects if i.label}
    times: dict[int, datetime] = {}
    for inject in scenario.injects:
        if not inject.in_variant(variant) or inject.index in scenario.broken:
            continue  # an inject with problems of its own gets no time: planning leaves it out
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
            if base is None:
                why = "has problems of its own, so this time is not known"
                problems.add(where, f"{inject.after!r} (line {ref.line}) {why}")
                continue
        else:
            continue
        moment = base + delay
        if moment < scenario.start:
            problems.add(("timeline", inject.index, "at"), f"{format_time(moment)} is before the start")
            continue
        if moment - scenario.start > MAX_DURATION:
            # A chain of `after`s could otherwise walk past the last date Python can hold.
            where = ("timeline", inject.index, "at" if inject.at is not None or inject.after == "" else "after")
            span = f"a drill spans at most {MAX_DURATION.days}d (ten years) of drill time"
            problems.add(where, f"{format_time(moment)} is more than {MAX_DURATION.days}d after the start: {span}")
            continue
        times[inject.index] = moment
    return times


def _explicit_after(inject: Inject) -> bool:
    ref = inject.spec.get("ref")
    return not (isinstance(ref, str) and ref == inject.after)


def _dry_run(agreement: Agreement, steps: list[Step], problems: Problems) -> None:
    """Check every step as a node would, on synthetic envelopes with `created` = the step's drill time."""
    ids = {s.label: f"00000000-0000-7000-8000-{s.n:012d}" for s in steps if s.label}
    lines = {s.label: s.line for s in steps if s.label}
    failed: set[str] = set()  # labels of messages with problems: what needs them is not checked against them
    sent: dict[str, Step] = {}
    answered: set[str] = set()
    states: dict[str, Any] = {}
    bodies: dict[str, dict[str, Any]] = {}
    for step in steps:
        base: Path = ("timeline", step.inject.index, step.inject.action)
        if step.kind in ("ack", "decline", "silence"):
            target = sent.get(step.target or "")
            if target is None or target.message is None:
                if step.target in failed:
                    problems.add((*base, "ref"), _needs_failed(step.target or "", lines))
                continue
            if step.at < target.at:
                problems.add(("timeline", step.inject.index), f"answers {step.target!r} before it is sent")
            if not notifications.get(target.message.type).needs_ack:
                problems.add((*base, "ref"), f"a {target.message.type} message is not acknowledged")
            if step.kind != "silence":
                if step.target in answered:
                    problems.add((*base, "ref"), f"{step.target!r} is already acknowledged or declined")
                answered.add(step.target or "")
            continue
        message = step.message
        if message is None:
            continue
        broken = [label for label in (*message.refs, message.case) if label in failed]
        if broken:
            # Its envelope would refer to one that was never made: say so, not what the synthetic
            # placeholder id would make a workflow say.
            problems.add(base, _needs_failed(broken[0] or "", lines))
            if step.label:
                failed.add(step.label)
            continue
        strays = _not_exchanged(step, sent)
        if strays:
            for path, why in strays:
                problems.add((*base, *path), why)
            if step.label:
                failed.add(step.label)
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
            # As the sending node does: its own rules too (`sending`), the sender's blank rule on
            # the body (`validate_body`) and the free text a person must write (`require_words`).
            notifications.validate_message(
                message.type, body, agreement, created=step.at, precedence=message.precedence, refs=refs, case=case,
                sending=True,
            )  # fmt: skip
            notifications.validate_body(message.type, body, agreement)
            require_words(message.type, body)
        except Invalid as exc:
            body_problems(exc, where, base, message.type, problems)
            if step.label:
                failed.add(step.label)
            continue
        envelope = _synthetic(step, ids, refs, case, body, agreement)
        for kind, target_id in workflows.targets(envelope):
            try:
                states[target_id] = workflows.APPLY[kind](states.get(target_id), envelope)
            except InvalidTransition as exc:
                detail = exc.detail if exc.detail.startswith(message.type) else f"{message.type}: {exc.detail}"
                problems.add(base, _named(detail, ids, lines))
        if step.label:
            sent[step.label] = step


def _not_exchanged(step: Step, sent: dict[str, Step]) -> list[tuple[Path, str]]:
    """Return (path, why) for each message `step` refers to that its recipient's party never had.

    As the sending node does: in a group of states a message may refer only to one exchanged with
    its recipient's party (sent by it or to it), since the others never reached that party's node.
    Between two parties every message was exchanged with the other, so this never applies.
    """
    assert step.message is not None
    peer = party_of(step.message.to)
    out: list[tuple[Path, str]] = []
    for index, label in enumerate(step.message.refs):
        target = sent.get(label)
        if target is None or target.message is None:
            continue
        between = sorted({party_of(target.message.sender), party_of(target.message.to)})
        if peer not in between:
            path: Path = ("refs", index) if step.inject.action in ("send", "code") else ("ref",)
            out.append(
                (path, f"{label!r} (line {target.line}) is between {' and '.join(between)}: {peer} never had it")
            )
    return out


def _needs_failed(label: str, lines: dict[str, int]) -> str:
    return f"it needs {label!r} (line {lines.get(label, '?')}), which has problems of its own"


def _named(detail: str, ids: dict[str, str], lines: dict[str, int]) -> str:
    """Return `detail` with each synthetic envelope id replaced by the step it stands for."""
    for label, envelope_id in ids.items():
        detail = detail.replace(envelope_id, f"{label!r} (line {lines[label]})")
    return detail


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
