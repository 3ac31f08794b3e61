"""The drill engine's own decisions, without nodes: what it says of its speed, and steps it must not play.

Regression tests for the exercise director's QA of drills: `--human pk:dgmo --speed 600` ran the
whole short drill at 300× without a word (finding 5), and a deliberate silence on a message that
was never sent was shown as if the message existed (finding 3a).
"""

from __future__ import annotations

from pathlib import Path

from detente.cli.drill import load_plans
from detente.core import agreement as agreement_mod
from detente.node.drill import Drill
from detente.node.drill_client import Target
from detente.node.drill_types import DrillOptions, FeedItem, speed_note
from support import run_async

ROOT = Path(__file__).resolve().parents[3]
SHORT = ROOT / "scenarios" / "border-drone.yaml"


def test_the_speed_used_is_said_with_the_reason_it_is_slower_than_asked() -> None:
    _, [plan] = load_plans(SHORT)
    jumped = speed_note(plan, DrillOptions(speed=600, skip=True))
    assert jumped == (
        "speed 600× (drill seconds per real second), quiet stretches jumped; 300× during the 40m outage at "
        "line 85, to last 8 real seconds, so that the link tests notice it"
    )
    assert speed_note(plan, DrillOptions(speed=600, skip=False)) == (
        "speed 300× for the whole drill, not the 600× asked: without time jumps the drill clock runs at one "
        "speed, and the 40m outage at line 85 must last 8 real seconds, so that the link tests notice it"
    )
    assert speed_note(plan, DrillOptions(speed=200, skip=False)) == (
        "speed 200× (drill seconds per real second), no time jumps"
    )


def test_a_silence_on_a_message_that_was_not_sent_is_skipped_not_shown() -> None:
    _, [plan] = load_plans(SHORT)
    silence = next(s for s in plan.steps if s.kind == "silence")
    seen: list[FeedItem] = []
    agreement = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
    target = Target({}, agreement, "", "test")  # no node: a silence never reaches one
    drill = Drill(plan, target, DrillOptions(speed=600), feed=seen.append)
    run_async(drill.execute(silence))
    [result] = drill.record.steps
    assert (result.status, result.error) == ("skipped", f"{silence.target} was not sent")
    assert [item.kind for item in seen] == ["error"]
    assert "stays silent" not in seen[0].text
