"""`detente drill check` says which step times are sourced and which are not (QA finding 6).

The "as it happened" variant of the January 2024 scenario acknowledges each message after a delay
no source gives, and several world events have only a "day" or a span in the sources: the check
lists each of them, so no figure built on them passes for history. The "with the hotline" variant
is a hypothesis: each of its delays is the scenario's choice, and marked so.
"""

from __future__ import annotations

from pathlib import Path

from cli_support import detente
from detente.cli.drill import load_plans

ROOT = Path(__file__).resolve().parents[3]
JAN = ROOT / "scenarios" / "jan-2024-iran-pakistan.yaml"


def test_every_as_it_happened_acknowledgement_is_marked_assumed_and_the_strike_time_uncertain() -> None:
    _, [happened, hotline] = load_plans(JAN)
    acks = [s for s in happened.steps if s.kind == "ack"]
    assert acks and all("scenario's choice" in s.inject.assumed for s in acks)
    strike = next(s for s in happened.steps if s.label == "koh-e-sabz")
    assert "12:45–14:00Z" in strike.inject.uncertain and "UNCERTAIN" in strike.inject.uncertain
    saravan = next(s for s in hotline.steps if s.label == "saravan")  # 04:30 IRST, sourced
    assert not saravan.inject.uncertain and not saravan.inject.assumed


def test_check_lists_the_times_that_are_not_sourced_facts() -> None:
    result = detente("drill", "check", str(JAN), "--variant", "as-it-happened")
    assert result.code == 0, result
    said = " ".join(result.stdout.split())
    assert "step times are not sourced facts:" in said
    assert "(situation koh-e-sabz, 16 Jan 13:15Z): uncertain: §6 #4: evening" in said
    assert "(ack, 16 Jan 20:30Z): assumed: no source says when this was acknowledged" in said


def test_every_with_hotline_delay_is_marked_assumed_and_listed_by_the_check() -> None:
    _, [_, hotline] = load_plans(JAN)
    delayed = [s for s in hotline.steps if s.inject.at is None]  # timed by a delay after another step
    acks = [s for s in delayed if s.kind == "ack"]
    assert len(acks) > 40 and len(delayed) > len(acks)
    for step in delayed:
        assert "with-hotline is a hypothesis" in step.inject.assumed, (step.line, step.kind)
        said = "would have been acknowledged" if step.kind == "ack" else "would have been sent"
        assert said in step.inject.assumed and "the scenario's choice" in step.inject.assumed, step.line
    result = detente("drill", "check", str(JAN), "--variant", "with-hotline")
    assert result.code == 0, result
    said = " ".join(result.stdout.split())
    assert (
        f"{sum(1 for s in hotline.steps if s.inject.assumed or s.inject.uncertain)} step times are not sourced" in said
    )
    first = acks[0]
    assert (
        f"line {first.line} (ack, {first.at:%d %b %H:%MZ}): assumed: with-hotline is a hypothesis: no source says "
        "when this would have been acknowledged" in said
    )
