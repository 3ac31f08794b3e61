"""The bounds of a scenario and of a drill: what no typo, alias or option may push past.

Durations, spans and years are bounded so that no drill time overflows Python's dates; YAML
aliases may not loop or multiply without end; a drill's speed and pause stay where its clock works;
and a step the drill could not play is told apart from one a node refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core.scenario import MAX_DURATION, ScenarioError, load, parse_duration
from detente.core.scenario_plan import plan
from detente.errors import Invalid, Unavailable
from detente.node.drill_access import is_harness_failure, needed
from detente.node.drill_client import NodeRefused
from detente.node.drill_types import DrillOptions

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
HEAD = "detente-drill: 1\ntitle: t\nagreement: a.toml\nstart: 2024-01-16T12:00:00Z\n"
REPORT = """\
    send:
      from: pk:dgmo
      to: ir:dgmo
      type: incident.report
      precedence: FLASH
      body:
        kind: strike
        time: "{time}"
        location: {{lat: 26.7, lon: 63.4, place: Koh-e-Sabz}}
        description: "missiles"
        assessment: "a violation"
"""


def problems(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "t.yaml"), AGREEMENT)
    return caught.value.problems


def test_durations_are_at_most_ten_years_whatever_their_digits() -> None:
    assert parse_duration("3650d") == MAX_DURATION and parse_duration(-MAX_DURATION.total_seconds()) == -MAX_DURATION
    for value in ("3650d1s", "+3651d", "-99999999999999999999d", "9" * 400 + "s", 1e400, 10**30, float("nan")):
        with pytest.raises(Invalid, match="longer than 3650d|not a duration"):
            parse_duration(value)


def test_start_end_and_every_step_stay_within_ten_years_of_a_start_in_bounded_years() -> None:
    late = HEAD.replace("2024-01-16", "9999-12-30") + "timeline:\n  - at: +1h\n    situation: s\n"
    assert any(path == "start" and "between the years 1000 and 8999" in m for _, path, m in problems(late))
    long = HEAD + "end: 2034-02-01T00:00:00Z\ntimeline:\n  - at: +1h\n    situation: s\n"
    assert any(path == "end" and "at most 3650d" in m for _, path, m in problems(long))
    # A chain of `after`s, each within bounds, walks past the span: the inject where it does is named.
    chain = HEAD + "timeline:\n  - {label: a0, at: +3000d, situation: s}\n"
    chain += "  - {label: a1, after: a0, delay: 3000d, situation: s}\n  - {after: a1, delay: 3000d, situation: s}\n"
    found = problems(chain)
    assert [(line, path) for line, path, _ in found] == [(7, "timeline[1].after"), (8, "timeline[2].after")]
    assert found[1][2] == "'a1' (line 7) has problems of its own, so this time is not known"


def test_a_time_in_a_body_lies_within_ten_years_of_its_inject() -> None:
    text = HEAD + "timeline:\n  - at: +1h\n" + REPORT
    far = problems(text.format(time="2044-01-16T12:00:00Z"))
    assert [(line, path) for line, path, _ in far] == [(14, "timeline[0].send.body.time")]
    assert "lies more than 3650d from this inject's time" in far[0][2]


@pytest.mark.parametrize(
    ("yaml", "says"),
    [
        ("a: &x [*x]\n", "line 1: a YAML alias refers to the value at line 1, which contains it"),
        ("a:\n  b: &x {c: [1, {d: *x}]}\n", "line 2: a YAML alias refers to the value at line 2, which contains it"),
        ("a: " + "[" * 70 + "]" * 70 + "\n", "nested more than 64 levels deep"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 64 levels deep"),
        ("".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'x'] * 9)}]\n" for i in range(8)), "100000 values"),
    ],
)
def test_yaml_that_loops_nests_or_multiplies_without_end_is_a_problem_not_a_crash(yaml: str, says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load(yaml, "t.yaml")
    line, _, message = caught.value.problems[0]
    assert says in f"line {line}: {message}", caught.value.problems


def test_a_drill_runs_at_speeds_from_1_to_ten_million_and_pauses_up_to_a_minute() -> None:
    DrillOptions(speed=1, pause=0)
    DrillOptions(speed=10_000_000, pause=60)
    for speed, pause in ((0.5, 0.5), (float("nan"), 0.5), (float("inf"), 0.5), (600, -1), (600, float("nan"))):
        with pytest.raises(Invalid, match="is not a (speed|pause)"):
            DrillOptions(speed=speed, pause=pause)


def test_a_step_the_drill_could_not_play_is_told_from_one_a_node_refused() -> None:
    def refused(status: int) -> NodeRefused:
        return NodeRefused(status, {"error": "E", "detail": "d"})

    assert is_harness_failure(refused(401)) and is_harness_failure(refused(403))
    assert is_harness_failure(Unavailable("cannot reach ir's node: connection refused"))
    assert not any(is_harness_failure(refused(status)) for status in (409, 422, 500))


def test_the_access_check_covers_each_operator_for_each_office_it_acts_for() -> None:
    text = (ROOT / "scenarios" / "border-drone.yaml").read_text(encoding="utf-8")
    scenario = load(text, str(ROOT / "scenarios" / "border-drone.yaml"))
    acting: dict[str, Any] = needed([plan(scenario, AGREEMENT)])
    assert acting == {"pk": {"pk-dgmo": {"pk:dgmo"}}, "ir": {"ir-dgmo": {"ir:dgmo"}, "ir-fs": {"ir:fs"}}}
