"""Drill scenarios (`core.scenario`, `core.scenario_plan`), the drill clock and the report's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import drill_report
from detente.core.drill_clock import ClockPlan, ClockRun, to_drill, to_wall
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import ScenarioError, format_duration, load, parse_duration
from detente.core.scenario_plan import plan

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
T0 = datetime(2024, 1, 16, 12, 0, tzinfo=UTC)

HEAD = """\
detente-drill: 1
title: test
agreement: ../agreements/pk-ir.toml
start: 2024-01-16T12:00:00Z
speed: 600
seed: 1
"""
GOOD = (
    HEAD
    + """\
timeline:
  - at: +1h
    label: strike
    situation: {pk: "explosions", ir: "our strike"}
    incident: {kind: strike, by: ir, where: pk, place: Koh-e-Sabz}
  - label: report
    after: strike
    delay: 5m
    send:
      from: pk:dgmo
      to: ir:dgmo
      type: incident.report
      precedence: FLASH
      about: strike
      body:
        kind: strike
        time: "-5m"
        location: {lat: 26.7, lon: 63.4, place: Koh-e-Sabz}
        description: "missiles"
        assessment: "a violation"
  - ack: report
    delay: 3m..9m
"""
)


def problems(text: str, variant: str | None = None) -> list[tuple[int, str, str]]:
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "t.yaml"), AGREEMENT, variant)
    return caught.value.problems


def test_a_good_scenario_plans_into_timed_steps() -> None:
    p = plan(load(GOOD, "t.yaml"), AGREEMENT)
    kinds = [(s.kind, s.at) for s in p.steps]
    assert kinds[0] == ("situation", T0 + timedelta(hours=1))
    assert kinds[1] == ("message", T0 + timedelta(hours=1, minutes=5))
    assert kinds[2][0] == "ack" and timedelta(minutes=3) <= kinds[2][1] - kinds[1][1] <= timedelta(minutes=9)
    report = p.steps[1].message
    assert report is not None and report.channel == "dgmo" and report.body["time"] == "2024-01-16T13:00:00.000Z"
    assert p.end == p.steps[-1].at + timedelta(hours=1)
    assert p.steps[2].office == "ir:dgmo" and p.steps[2].about == "strike"


def test_the_seed_fixes_random_delays_and_shared_injects_keep_them_across_variants() -> None:
    text = GOOD.replace("seed: 1", "seed: 5").replace("timeline:", "variants: {a: one, b: two}\ntimeline:")
    text += "  - situation: only in b\n    at: +3h\n    variants: b\n"
    first = plan(load(text, "t.yaml"), AGREEMENT, "a")
    again = plan(load(text, "t.yaml"), AGREEMENT, "a")
    other = plan(load(text, "t.yaml"), AGREEMENT, "b")
    assert [s.at for s in first.steps] == [s.at for s in again.steps]
    assert [s.at for s in first.steps] == [s.at for s in other.steps][:3]
    assert len(other.steps) == 4


@pytest.mark.parametrize(
    ("change", "line", "needle"),
    [
        (("speed: 600", "speed: fast"), 5, "must be a number of drill seconds"),
        (("    delay: 5m\n", "    delay: 5 minutes\n"), 14, "not a duration"),
        (("precedence: FLASH", "precedence: URGENT"), 19, "'URGENT' is not FLASH"),
        (("type: incident.report", "type: incident.rapport"), 18, "not a message type"),
        (("about: strike", "about: nowhere"), 20, "not the label of an incident"),
        (("  - ack: report", "  - ack: repor"), 27, "no inject is labelled 'repor'"),
        (("    delay: 3m..9m", "    delay: 9m..3m"), 28, "from the shorter delay"),
        (("lat: 26.7", "lat: 126.7"), 24, "less than or equal to 90"),
        (("kind: strike\n        time", "kind: bombing\n        time"), 22, "Input should be 'airspace_violation'"),
        (('time: "-5m"', 'time: "+5h"'), 23, "must be in the past"),
        (("to: ir:dgmo", "to: ir:fs"), 17, "no channel of the agreement links pk:dgmo and ir:fs"),
        (("  - label: report", "  - label: strike"), 12, "label 'strike' is already used at line 8"),
        (("after: strike", "after: later"), 13, "no inject is labelled 'later'"),
    ],
)
def test_each_problem_is_reported_at_its_line(change: tuple[str, str], line: int, needle: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    found = problems(text)
    assert any(at == line and needle in message for at, _, message in found), found


def test_yaml_syntax_errors_and_duplicate_keys_name_their_line() -> None:
    assert problems(HEAD + "timeline:\n  - at: +1h\n    situation: [unclosed\n")[0][0] == 10
    twice = GOOD.replace("  - label: report\n", "  - label: report\n    label: again\n")
    assert any(at == 13 and "appears twice" in m for at, _, m in problems(twice))


def test_every_problem_is_listed_at_once_with_file_and_line() -> None:
    text = GOOD.replace("speed: 600", "speed: -1").replace("  - ack: report", "  - ack: report\n    colour: red")
    with pytest.raises(ScenarioError) as caught:
        load(text, "t.yaml")
    detail = caught.value.detail
    assert "t.yaml:5: speed:" in detail
    assert "t.yaml:28: timeline[2].colour: unknown key 'colour'" in detail
    text = GOOD.replace("precedence: FLASH", "precedence: URGENT").replace("lat: 26.7", "lat: 126.7")
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "t.yaml"), AGREEMENT)
    detail = caught.value.detail
    assert "t.yaml:19: timeline[1].send.precedence:" in detail and "t.yaml:24: timeline[1].send.body.location" in detail
    assert caught.value.diagnostics().startswith("scenario t.yaml has 3 problems")


def test_lead_times_are_checked_in_drill_time_against_the_agreement() -> None:
    notice = (
        HEAD
        + """\
timeline:
  - at: +1h
    send:
      from: ir:dgmo
      to: pk:dgmo
      type: operation.prenotify
      precedence: IMMEDIATE
      body:
        area: {center: {lat: 26.7, lon: 63.4}, radius_km: 10}
        window: {start: "+20h", end: "+22h"}
        forces: drones
        target_group: Jaish al-Adl
        objective: strike
"""
    )
    found = problems(notice)
    assert any(at == 16 and "lead time 20 h is below the agreement's 24 h" in m for at, _, m in found), found
    assert plan(load(notice.replace('"+20h"', '"+25h"').replace('"+22h"', '"+26h"')), AGREEMENT).steps


def test_workflow_transitions_and_answers_are_dry_run() -> None:
    base = (
        HEAD
        + """\
timeline:
  - at: +1h
    label: ask
    send:
      from: pk:dgmo
      to: ir:dgmo
      type: clarification.request
      precedence: IMMEDIATE
      body: {questions: ["who?", "why?"]}
  - answer: {ref: ask, answers: ["us"]}
    delay: 10m
"""
    )
    assert any(at == 16 and "gives 1 answer(s) to 2 question(s)" in m for at, _, m in problems(base))
    twice = base.replace('answers: ["us"]', 'answers: ["us", "because"]') + "  - ack: ask\n  - ack: ask\n"
    assert any("already acknowledged" in m for _, _, m in problems(twice))
    late_ack = base.replace('answers: ["us"]', 'answers: ["a", "b"]') + "  - ack: ask\n    at: +30m\n"
    # The reason, with both times, not "has problems of its own, comes later, or is not in this variant".
    says = "'ask' (line 8) happens at 2024-01-16T13:00:00.000Z, after this step at 2024-01-16T12:30:00.000Z"
    assert any(says in m for _, _, m in problems(late_ack)), problems(late_ack)
    assert not any("problems of its own" in m for _, _, m in problems(late_ack))


def test_shipped_scenarios_plan_in_every_variant() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario = load(path.read_text(encoding="utf-8"), str(path))
        agreement = agreement_mod.load((path.parent / scenario.agreement).read_text(encoding="utf-8"))
        for variant in scenario.variant_names():
            p = plan(scenario, agreement, variant)
            assert p.steps and p.incidents, (path, variant)


def test_the_jan_2024_variants_share_the_world_and_differ_in_the_channels() -> None:
    path = ROOT / "scenarios" / "jan-2024-iran-pakistan.yaml"
    scenario = load(path.read_text(encoding="utf-8"), str(path))
    happened, hotline = (plan(scenario, AGREEMENT, v) for v in ("as-it-happened", "with-hotline"))
    assert [(s.label, s.at) for s, _ in happened.incidents] == [(s.label, s.at) for s, _ in hotline.incidents]
    types = {s.message.type for s in hotline.steps if s.message}
    assert {"operation.prenotify", "action.consent", "action.object", "action.verify", "code"} <= types
    assert not {"operation.prenotify", "incident.report", "clarification.request"} & {
        s.message.type for s in happened.steps if s.message
    }


def test_durations_read_and_print() -> None:
    assert parse_duration("2d03h") == timedelta(days=2, hours=3)
    assert parse_duration("+1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("-10m") == -timedelta(minutes=10)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")
    assert format_duration(timedelta(days=1, hours=15, minutes=10)) == "1d 15h 10m"
    assert format_duration(timedelta(minutes=4, seconds=30)) == "4m 30s"
    assert format_duration(None) == "—"


# --- the clock ------------------------------------------------------------------------------------


def test_the_plan_runs_slowly_around_points_and_jumps_quiet_stretches() -> None:
    points = [T0 + timedelta(hours=1), T0 + timedelta(days=2)]
    clock = ClockPlan.build(T0, T0 + timedelta(days=3), points, speed=60, pause=0.5)
    assert clock.jumps() and all(b > a for a, b in clock.jumps())
    assert clock.at(clock.offset_of(points[1])) == points[1]
    assert clock.duration < 60  # three days in well under a minute
    flat = ClockPlan.build(T0, T0 + timedelta(hours=1), [], speed=60, skip=False)
    assert flat.duration == pytest.approx(60)
    stretched = ClockPlan.build(
        T0, T0 + timedelta(days=3), points, speed=60, pause=0, gaps=((points[0], points[1], 5),)
    )
    assert stretched.offset_of(points[1]) - stretched.offset_of(points[0]) >= 5 - 1e-9


def test_the_run_stops_at_each_step_holds_and_keeps_a_verifiable_history() -> None:
    step = T0 + timedelta(minutes=30)
    plan_ = ClockPlan.build(T0, T0 + timedelta(hours=2), [step], speed=600, skip=False)
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    run = ClockRun(plan_, wall)
    run.advance(wall + timedelta(seconds=30), until=step)
    assert run.now == step  # stopped at the step, however late the tick
    run.hold(wall + timedelta(seconds=31))
    run.advance(wall + timedelta(seconds=40))
    assert run.now == step  # held
    run.release(wall + timedelta(seconds=41))
    run.advance(wall + timedelta(seconds=42))
    assert run.now == step + timedelta(seconds=600)
    assert to_drill(run.samples, wall + timedelta(seconds=35)) == step
    assert to_drill(run.samples, wall + timedelta(seconds=41.5)) == step + timedelta(seconds=300)
    assert to_wall(run.samples, step + timedelta(seconds=300)) == wall + timedelta(seconds=41.5)
    now = wall + timedelta(seconds=42)
    assert run.body_time(step, now) <= now < run.body_time(step + timedelta(hours=1), now)


# --- the report -----------------------------------------------------------------------------------


def _env(i: int, kind: str, sender: str, to: str, drill: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e{i}", "type": kind, "channel": "dgmo", "from": sender, "to": to, "precedence": "FLASH",
        "created": format_time(datetime(2030, 1, 1, tzinfo=UTC) + (drill - T0) / 600), "drill": format_time(drill),
        "refs": [], "case": None, "needs_ack": kind not in ("ack", "decline"), "response": None,
        "overdue_at": None, "log": {"pk": i, "ir": i + 100}, **extra,
    }  # fmt: skip


def test_report_figures_come_from_the_envelopes() -> None:
    strike = T0 + timedelta(hours=1)
    wall0 = datetime(2030, 1, 1, tzinfo=UTC)
    report = _env(1, "incident.report", "pk:dgmo", "ir:dgmo", strike + timedelta(minutes=5))
    ack = _env(2, "ack", "ir:dgmo", "pk:dgmo", strike + timedelta(minutes=25), refs=["e1"])
    report["response"] = {"id": "e2", "type": "ack", "at": ack["created"], "by": "ir-dgmo"}
    silent = _env(3, "statement", "ir:dgmo", "pk:dgmo", strike + timedelta(minutes=30))
    proposal = _env(4, "deescalation.proposal", "pk:dgmo", "ir:dgmo", strike + timedelta(hours=2))
    yes = _env(5, "ack", "ir:dgmo", "pk:dgmo", strike + timedelta(hours=3), refs=["e4"])
    proposal["response"] = {"id": "e5", "type": "ack", "at": yes["created"], "by": "ir-dgmo"}
    facts = {
        "scenario": {"title": "t", "variant": None},
        "run": {"speed": 600.0, "drill_start": format_time(T0), "drill_end": format_time(T0 + timedelta(hours=6)),
                "wall_start": format_time(wall0), "wall_end": format_time(wall0 + timedelta(seconds=36)),
                "nodes": {"pk": "", "ir": ""}},
        "clock": {"samples": [[format_time(wall0), format_time(T0)],
                              [format_time(wall0 + timedelta(seconds=36)), format_time(T0 + timedelta(hours=6))]]},
        "deadlines": {"dgmo": {"FLASH": 600.0}},
        "incidents": [{"label": "strike", "kind": "strike", "drill": format_time(strike), "place": "x"}],
        "steps": [{"id": "e1", "about": "strike", "kind": "message", "status": "done", "target": None},
                  {"id": "e3", "about": "strike", "kind": "message", "status": "done", "target": None}],
        "envelopes": [report, ack, silent, proposal, yes],
        "links": {"events": [
            {"node": "pk", "peer": "ir", "state": "DEGRADED", "wall": format_time(wall0 + timedelta(seconds=6)),
             "reason": "x"},
            {"node": "pk", "peer": "ir", "state": "UP", "wall": format_time(wall0 + timedelta(seconds=12)),
             "reason": "answered"},
        ], "before": {}},
    }  # fmt: skip
    figures = drill_report.compute(facts)["figures"]
    incident = figures["incidents"][0]
    assert incident["first_message"]["drill_seconds"] == 300
    assert incident["first_message"]["to"]["log"] == {"pk": 1, "ir": 101}
    assert incident["acknowledged"]["drill_seconds"] == 1500 and incident["acknowledged"]["to"]["id"] == "e2"
    assert incident["clarified"] is None and incident["notice"] is None
    assert [m["envelope"]["id"] for m in figures["unanswered"]] == ["e3"]
    assert {m["envelope"]["id"] for m in figures["overdue"]} == {"e1", "e3", "e4"}  # each past its 10 min
    assert figures["deescalation"]["accepted"]["drill_seconds"] == 3 * 3600
    [outage] = figures["links"]
    assert outage["drill_seconds"] == 3600 and outage["wall_seconds"] == 6
    assert figures["parties"]["ir"]["unanswered"] == 0 and figures["parties"]["pk"]["unanswered"] == 1
    rows = dict((name, text) for name, text, _ in drill_report.headline(drill_report.compute(facts)))
    assert rows["first strike → de-escalation accepted"] == "3h 00m"
    assert parse_time(incident["wall"]) == wall0 + timedelta(seconds=6)
