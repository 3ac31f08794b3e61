"""The report of a drill among three states: each party, each pair, and workflows held by two nodes.

The facts are built by hand (three nodes, pk, ir and af, a clock at 600×, no jump), as the engine
collects them. A two-party report is left as it always was: no `pairs`, the same page and summary.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detente.core import drill_compare, drill_facts, drill_report
from detente.core.drill_clock import to_drill
from detente.core.precedence import format_time, parse_time
from detente.errors import Invalid
from detente.web.drill_report import render_report

T0 = datetime(2024, 5, 4, 4, 0, tzinfo=UTC)
W0 = datetime(2030, 1, 1, tzinfo=UTC)
NODES = {"pk": "https://a", "ir": "https://b", "af": "https://c"}


def w(seconds: float) -> datetime:
    return W0 + timedelta(seconds=seconds)


def _env(i: int, kind: str, sender: str, to: str, wall: float, **extra: Any) -> dict[str, Any]:
    parties = sorted({sender.split(":")[0], to.split(":")[0]})
    return {
        "id": f"e{i}", "type": kind, "channel": "dgmo-" + "-".join(p for p in NODES if p in parties), "from": sender,
        "to": to, "precedence": "FLASH", "created": format_time(w(wall)), "drill": "", "refs": [], "case": None,
        "deadline": None, "needs_ack": False, "response": None, "overdue_at": None, "author": f"op-{sender}",
        "log": {p: i for p in parties}, **extra,
    }  # fmt: skip


def _answered(message: dict[str, Any], answer: dict[str, Any]) -> None:
    message["response"] = {"id": answer["id"], "type": answer["type"], "at": answer["created"], "by": "op"}


def group_facts(nodes: dict[str, str] = NODES) -> dict[str, Any]:
    """pk reports to ir (acked after 3 drill minutes) and to af (acked after 6); ir writes to af, never
    answered; af's node is down 04:30–04:50 and pk sees it DOWN; a case on pk and ir, one on pk only."""
    samples = [(w(0), T0), (w(15), T0 + timedelta(minutes=150))]  # 600×, no jump

    def needs(wall: float) -> dict[str, Any]:  # the node's deadline, on the wall clock
        return {"needs_ack": True, "deadline": format_time(w(wall + 1))}

    to_ir = _env(1, "incident.report", "pk:dgmo", "ir:dgmo", 1.0, **needs(1.0))
    ack_ir = _env(2, "ack", "ir:dgmo", "pk:dgmo", 1.3, refs=["e1"])
    to_af = _env(3, "incident.report", "pk:dgmo", "af:dgmo", 1.1, **needs(1.1))
    ack_af = _env(4, "ack", "af:dgmo", "pk:dgmo", 1.7, refs=["e3"])
    silent = _env(5, "hotline.text", "ir:dgmo", "af:dgmo", 2.0, **needs(2.0))
    _answered(to_ir, ack_ir)
    _answered(to_af, ack_af)
    data: dict[str, Any] = {
        "format": "detente-drill-report/1",
        "scenario": {"title": "tri", "variant": None, "source": "tri.yaml", "seed": 1, "notices": []},
        "run": {"speed": 600.0, "skip": True, "nodes": nodes, "agreement": "x", "wall_start": format_time(w(0)),
                "wall_end": format_time(w(15)), "drill_start": format_time(T0),
                "drill_end": format_time(T0 + timedelta(minutes=150))},
        "clock": {"samples": [[format_time(a), format_time(b)] for a, b in samples], "jumps": []},
        "deadlines": {c: {"FLASH": 600.0} for c in ("dgmo-pk-ir", "dgmo-pk-af", "dgmo-ir-af")},
        "incidents": [{"label": "shots", "kind": "non_state_attack", "drill": format_time(T0 + timedelta(minutes=5)),
                       "place": "x"}],
        "steps": [
            {"n": 0, "label": "silent", "kind": "message", "line": 30, "office": "ir:dgmo", "drill": format_time(
             T0 + timedelta(minutes=20)), "status": "done", "id": "e5", "target": None},
            {"n": 1, "label": None, "kind": "silence", "line": 31, "office": "af:dgmo", "drill": format_time(
             T0 + timedelta(minutes=21)), "status": "shown", "target": "silent"},
            {"n": 2, "label": None, "kind": "outage", "line": 40, "office": None, "drill": format_time(
             T0 + timedelta(minutes=30)), "wall": format_time(w(3)), "status": "done", "target": None, "party": "af",
             "duration": 1200.0},
        ],
        "envelopes": [to_ir, ack_ir, to_af, ack_af, silent],
        "links": {"events": [
            {"node": "pk", "peer": "af", "state": "DOWN", "wall": format_time(w(7))},
            {"node": "pk", "peer": "af", "state": "UP", "wall": format_time(w(11.1))},
        ], "before": {}},
        "workflows": {"case": {"e1": {"pk": {"status": "open"}, "ir": {"status": "open"}},
                               "e3": {"pk": {"status": "open"}}}},
    }  # fmt: skip
    for envelope in data["envelopes"]:
        envelope["drill"] = format_time(to_drill(samples, parse_time(envelope["created"])))
        envelope["step"] = "silent" if envelope["id"] == "e5" else None
    return data


def computed(data: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(json.dumps(drill_report.compute(data)))  # exactly what the JSON file holds
    return report


def test_each_pair_gets_its_messages_answers_times_to_acknowledge_and_outages() -> None:
    pairs = computed(group_facts())["figures"]["pairs"]
    assert list(pairs) == ["pk-ir", "pk-af", "ir-af"]  # in the order the run lists its nodes
    pk_ir, pk_af, ir_af = pairs.values()
    assert (pk_ir["sent"], pk_ir["channels"], pk_ir["acknowledged"], pk_ir["median_ack"]) == (
        {"pk": 1, "ir": 0}, ["dgmo-pk-ir"], 1, "3m",
    )  # fmt: skip
    assert (pk_af["acknowledged"], pk_af["max_ack_seconds"], pk_af["unanswered"]) == (1, 360.0, 0)
    assert (ir_af["to_answer"], ir_af["unanswered"], ir_af["silent_by_script"], ir_af["overdue"]) == (1, 1, 1, 1)
    assert ir_af["median_ack"] == "—" and ir_af["max_ack_seconds"] is None
    # Only pk saw af's node go, on pk and af's link: not a figure of the two other pairs.
    [seen] = pk_af["outages"]
    assert (seen["node"], seen["peer"], seen["worst"], seen["scripted"]) == ("pk", "af", "DOWN", True)
    assert pk_ir["outages"] == ir_af["outages"] == []


def test_every_party_is_listed_even_one_that_sent_nothing() -> None:
    parties = computed(group_facts())["figures"]["parties"]
    assert list(parties) == ["af", "ir", "pk"]
    assert (parties["af"]["sent"], parties["af"]["to_answer"], parties["af"]["unanswered"]) == (0, 2, 1)


def test_a_workflow_is_held_by_its_two_parties_and_a_third_node_without_it_is_no_disagreement() -> None:
    flows = {w["id"]: w for w in computed(group_facts())["figures"]["workflows"]}
    assert flows["e1"]["agree"]  # pk and ir hold it; af never had it
    assert not flows["e3"]["agree"]  # af should hold its case with pk, and does not
    assert computed(group_facts())["figures"]["summary"]["workflows_disagreeing"] == 1


def test_a_group_report_verifies_and_an_edited_pair_figure_is_refused() -> None:
    report = computed(group_facts())
    drill_facts.check(report)
    report["figures"]["pairs"]["pk-af"]["max_ack_seconds"] = 60.0
    with pytest.raises(
        Invalid, match=r"figures\.pairs\.pk-af\.max_ack_seconds: the report says 60\.0, its facts give 360"
    ):
        drill_facts.check(report)


def test_the_page_and_the_comparison_show_each_pair() -> None:
    report = computed(group_facts())
    page = render_report(report)
    assert "<h2>By pair</h2>" in page and "<b>pk–af</b>" in page and "pk saw af DOWN" in page
    assert "1</span> (1 silent by script)" in page
    lanes = [page.index(f">{lane}</text>") for lane in ("pk → ir", "ir → pk", "pk → af", "af → pk", "ir → af")]
    assert lanes == sorted(lanes)
    names = [name for name, _, _ in drill_compare.headline(report)]
    assert "pk-af: median time to acknowledge" in names and "ir-af: never answered" in names


def test_a_two_party_report_has_no_pair_figures_and_reads_as_before() -> None:
    facts = group_facts({"pk": "https://a", "ir": "https://b"})
    facts["envelopes"] = facts["envelopes"][:2]  # pk and ir only
    facts["steps"] = []
    facts["links"]["events"] = []
    facts["workflows"] = {"case": {"e1": {"pk": {"status": "open"}, "ir": {"status": "open"}}}}
    report = computed(facts)
    figures = report["figures"]
    assert "pairs" not in figures and list(figures["parties"]) == ["ir", "pk"]
    assert [w["agree"] for w in figures["workflows"]] == [True]
    page = render_report(report)
    assert "By pair" not in page and "both nodes saw the link up throughout" in page
    lanes = [page.index(f">{lane}</text>") for lane in ("ir → pk", "pk → ir")]  # alphabetical, as always
    assert lanes == sorted(lanes)
    assert not any("never answered" in name and name.startswith("pk-") for name, _, _ in drill_compare.headline(report))
