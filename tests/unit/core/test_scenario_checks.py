"""`drill check` finds what a run would meet: every problem at once, each with its real reason.

Regression tests for the exercise director's QA of drills (findings 3, 4 and 6): a blank text and
an alternate's early acknowledgement passed the check and failed at run time; the file was read in
two passes, so one problem hid the rest; a step that needed a broken one was told of with a
placeholder envelope id, and a step scheduled before the one it answers was told "has problems of
its own, comes later, or is not in this variant".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detente.core import agreement as agreement_mod
from detente.core.scenario import ScenarioError, load
from detente.core.scenario_plan import plan

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))

HEAD = """\
detente-drill: 1
title: test
agreement: ../agreements/pk-ir.toml
start: 2024-01-16T12:00:00Z
seed: 1
timeline:
"""
FLASH = """\
  - at: +1h
    label: flash
    send: {from: pk:dgmo, to: ir:dgmo, type: hotline.text, precedence: FLASH, body: {text: "answer"}}
"""
REPORT = """\
  - at: +1h
    label: report
    send:
      from: pk:dgmo
      to: ir:dgmo
      type: incident.report
      precedence: FLASH
      body:
        kind: strike
        time: "-5m"
        location: {lat: 26.7, lon: 63.4, place: Koh-e-Sabz}
        description: "missiles"
        assessment: "a violation"
  - label: ask
    after: report
    delay: 5m
    send:
      from: pk:dgmo
      to: ir:dgmo
      type: clarification.request
      precedence: IMMEDIATE
      case: report
      body: {questions: ["who?"]}
"""


def problems(text: str) -> list[tuple[int, str, str]]:
    """Plan `text` as `drill check` does (reading problems carried to the planner); return the problems."""
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "t.yaml", partial=True), AGREEMENT)
    return caught.value.problems


def test_a_blank_text_is_refused_by_the_check_as_the_node_refuses_it() -> None:
    for blank in ('"   "', '"\\u200b"'):
        text = HEAD + FLASH.replace('"answer"', blank) + "  - silence: flash\n"
        found = problems(text)
        assert (9, "timeline[0].send.body.text", "hotline.text: must not be blank") in found, found
        # The silence that needs it says so, rather than pass for a step on a message that exists.
        assert (10, "timeline[1].silence.ref", "it needs 'flash' (line 7), which has problems of its own") in found


def test_a_blank_decline_reason_is_refused() -> None:
    found = problems(HEAD + FLASH + '  - decline: {ref: flash, reason: "\\u200b "}\n    delay: 1m\n')
    assert any(path == "timeline[1].decline.reason" and "must not be blank" in m for _, path, m in found), found


def test_an_alternate_answers_only_once_the_message_is_overdue() -> None:
    early = HEAD + FLASH + "  - ack: {ref: flash, by: ir:fs}\n    delay: 5m\n"
    [(line, path, message)] = problems(early)
    assert (line, path) == (10, "timeline[1].ack.by")
    assert message == (
        "ir:fs is an alternate of ir:dgmo, so it may acknowledge 'flash' only once it is overdue, at its FLASH "
        "deadline 2024-01-16T13:10:00.000Z; this step is at 2024-01-16T13:05:00.000Z"
    )
    late = plan(load(HEAD + FLASH + "  - ack: {ref: flash, by: ir:fs}\n    delay: 10m\n", "t.yaml"), AGREEMENT)
    assert late.steps[-1].office == "ir:fs"
    other = HEAD + FLASH + "  - ack: {ref: flash, by: ir:lo-turbat}\n    delay: 20m\n"
    says = "ir:lo-turbat cannot answer 'flash': it is addressed to ir:dgmo (its alternates: ir:fs)"
    assert problems(other) == [(10, "timeline[1].ack.by", says)]


def test_reading_and_planning_problems_are_listed_together() -> None:
    text = (
        HEAD
        + FLASH
        + "  - situation: later\n    label: flash\n    at: +2h\n"  # a label used twice
        + "  - ack: flash\n    delay: 5 minutes\n"  # a bad duration
        + "  - at: +3h\n    send: {from: pk:dgmo, to: ir:dgmo, type: hotline.text, precedence: URGENT,"
        + " body: {text: x}}\n"
    )
    found = problems(text)
    says = [m for _, _, m in found]
    assert any("label 'flash' is already used at line 7" in m for m in says), found
    assert any("'5 minutes' is not a duration" in m for m in says), found
    assert any("'URGENT' is not FLASH" in m for m in says), found
    with pytest.raises(ScenarioError) as caught:  # read strictly, reading problems still stop it alone
        load(text, "t.yaml")
    assert not any("URGENT" in m for _, _, m in caught.value.problems)


def test_a_step_that_needs_a_broken_one_says_so_never_with_a_placeholder_id() -> None:
    text = HEAD + REPORT.replace('        assessment: "a violation"\n', "")
    found = problems(text)
    assert (14, "timeline[0].send.body.assessment", "incident.report: Field required") in found, found
    assert (22, "timeline[1].send", "it needs 'report' (line 7), which has problems of its own") in found
    assert not any("00000000-0000-7000" in m for _, _, m in found), found


def test_a_reference_to_a_later_step_names_both_times() -> None:
    text = HEAD + FLASH + "  - ack: flash\n    at: +30m\n"
    [(line, path, message)] = problems(text)
    assert (line, path) == (10, "timeline[1].ack.ref")
    assert message == (
        "'flash' (line 7) happens at 2024-01-16T13:00:00.000Z, after this step at 2024-01-16T12:30:00.000Z: "
        "a step can refer only to one that happens before it"
    )
    other = HEAD.replace("timeline:", "variants: {a: one, b: two}\ntimeline:") + FLASH + "    variants: a\n"
    other += "  - ack: flash\n    at: +2h\n    variants: b\n"
    assert any("'flash' (line 8) is not part of variant 'b'" in m for _, _, m in problems_of(other, "b"))


def problems_of(text: str, variant: str) -> list[tuple[int, str, str]]:
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "t.yaml", partial=True), AGREEMENT, variant)
    return caught.value.problems


def test_assumed_and_uncertain_times_are_read_and_must_be_text() -> None:
    text = HEAD + FLASH + '    uncertain: "12:45-14:00Z [S113]"\n'
    text += '  - ack: flash\n    delay: 1h\n    assumed: "no source"\n'
    p = plan(load(text, "t.yaml"), AGREEMENT)
    assert [(s.inject.uncertain, s.inject.assumed) for s in p.steps] == [("12:45-14:00Z [S113]", ""), ("", "no source")]
    found = problems(HEAD + FLASH + "    assumed: [1, 2]\n")
    assert any(path == "timeline[0].assumed" and "non-empty text" in m for _, path, m in found), found
