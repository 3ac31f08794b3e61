"""`detente drill check` says which step times are sourced and which are not (QA finding 6).

The "as it happened" variant of the January 2024 scenario acknowledges each message after a delay
no source gives, and several world events have only a "day" or a span in the sources: the check
lists each of them, so no figure built on them passes for history.
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
