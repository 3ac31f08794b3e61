"""The report of a drill among three states: each party, each pair, and workflows held by two nodes.

The facts are built by hand (three nodes, pk, ir and af, a clock at 600×, no jump), as the engine
collects them. Each pair also gets each incident's figures over its own messages (how fast one
told the other, and the other acknowledged and answered), on the page, in the summary and in a
comparison. A two-party report is left as it always was: no `pairs`, the same page and summary
(`test_drill_two_party_unchanged` holds it byte for byte).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli_support import detente
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


# --- incidents by pair -----------------------------------------------------------------------------


def incident_facts() -> dict[str, Any]:
    """`shots` at 04:05, written about on every pair; `quiet` at 05:00, which nobody wrote about.

    pk tells ir at 04:10 (acked 04:13) and af at 04:11 (acked 04:12: af acknowledged first, though
    told later); af asks pk a question at 04:25, answered at 04:35; ir tells af at 04:20, and af
    never answers (silent by script).
    """
    data = group_facts()
    [to_ir, ack_ir, to_af, ack_af, silent] = data["envelopes"]
    ack_af["created"] = format_time(w(1.2))
    to_af["response"]["at"] = ack_af["created"]
    ask = _env(6, "clarification.request", "af:dgmo", "pk:dgmo", 2.5, refs=["e3"])
    answer = _env(7, "clarification.response", "pk:dgmo", "af:dgmo", 3.5, refs=["e6"])
    data["envelopes"] = [to_ir, to_af, ack_af, ack_ir, silent, ask, answer]  # by created time, as collected
    data["incidents"].append({"label": "quiet", "kind": "other", "drill": format_time(T0 + timedelta(hours=1)),
                              "place": "y"})  # fmt: skip
    data["steps"][0]["about"] = "shots"  # ir's message to af; the others say it below
    data["steps"] += [
        {"n": 3, "label": f"report-{p}", "kind": "message", "line": 10 + n, "office": "pk:dgmo", "status": "done",
         "drill": format_time(T0 + timedelta(minutes=10 + n)), "id": i, "about": "shots", "target": None}
        for n, (p, i) in enumerate((("ir", "e1"), ("af", "e3")))
    ]  # fmt: skip
    return _redrill(data)


def _redrill(data: dict[str, Any]) -> dict[str, Any]:
    """Set each envelope's stored drill time and step from its created time and steps, as the engine does."""
    samples = [(parse_time(a), parse_time(b)) for a, b in data["clock"]["samples"]]
    labels = {s["id"]: s["label"] for s in data["steps"] if s.get("id")}
    for envelope in data["envelopes"]:
        envelope["drill"] = format_time(to_drill(samples, parse_time(envelope["created"])))
        envelope["step"] = labels.get(envelope["id"])
    return data


def by_pair(report: dict[str, Any], label: str = "shots") -> dict[str, dict[str, Any]]:
    """Each pair's figures of the incident `label`."""
    return {
        name: next(i for i in pair["incidents"] if i["label"] == label)
        for name, pair in report["figures"]["pairs"].items()
    }


def _drill(figure: dict[str, Any] | None) -> str | None:
    return None if figure is None else str(figure["drill"])


def test_each_pair_gets_its_own_incident_figures_and_the_run_its_figures_over_all_of_them() -> None:
    report = computed(incident_facts())
    pairs = by_pair(report)
    assert list(pairs) == ["pk-ir", "pk-af", "ir-af"]
    shown = {
        name: tuple(_drill(i[k]) for k in ("first_message", "acknowledged", "clarified")) for name, i in pairs.items()
    }
    assert shown == {"pk-ir": ("5m", "8m", None), "pk-af": ("6m", "7m", "30m"), "ir-af": ("15m", None, None)}
    assert [pairs[p]["clarification_asked"] for p in pairs] == [False, True, False]
    assert [pairs[p]["messages"] for p in pairs] == [1, 3, 1]
    # Each names its envelopes: pk-af's acknowledgement is af's ack of pk's report to af.
    assert (pairs["pk-af"]["acknowledged"]["via"]["id"], pairs["pk-af"]["acknowledged"]["to"]["id"]) == ("e3", "e4")
    assert pairs["pk-af"]["clarified"]["via"]["id"] == "e6" and pairs["pk-af"]["acknowledged"]["wall_seconds"] == 0.7
    # The run's first message is the earliest pair's; its acknowledgement is that message's (8m),
    # not af's quicker one (7m): which is what the figures by pair show and the run's cannot.
    [overall, _] = report["figures"]["incidents"]
    assert (_drill(overall["first_message"]), _drill(overall["acknowledged"]), _drill(overall["clarified"])) == (
        "5m", "8m", "30m",
    )  # fmt: skip
    assert overall["messages"] == sum(p["messages"] for p in pairs.values())


def test_an_unacknowledged_first_message_of_a_pair_reads_never_and_a_declined_one_names_its_decline() -> None:
    ir_af = by_pair(computed(incident_facts()))["ir-af"]
    assert ir_af["first_message"]["to"]["id"] == "e5" and ir_af["acknowledged"] is None and ir_af["declined"] is None
    data = incident_facts()
    decline = _env(8, "decline", "af:dgmo", "ir:dgmo", 2.2, refs=["e5"])
    data["envelopes"].insert(5, decline)
    _answered(data["envelopes"][4], decline)
    ir_af = by_pair(computed(_redrill(data)))["ir-af"]
    assert ir_af["acknowledged"] is None and _drill(ir_af["declined"]) == "17m"


def test_an_incident_a_pair_never_wrote_about_has_every_figure_empty() -> None:
    report = computed(incident_facts())
    for name, quiet in by_pair(report, "quiet").items():
        assert (quiet["label"], quiet["kind"], quiet["drill"]) == ("quiet", "other", "2024-05-04T05:00:00.000Z"), name
        assert [quiet[k] for k in ("notice", "first_message", "acknowledged", "declined", "clarified")] == [None] * 5
        assert (quiet["clarification_asked"], quiet["messages"]) == (False, 0)
    # In the facts of the first tests nothing is about `shots`: every pair lists it, empty.
    assert all(i["messages"] == 0 for i in by_pair(computed(group_facts())).values())


def test_ties_go_to_the_envelope_the_run_lists_first_and_a_message_at_the_incident_is_no_notice() -> None:
    data = incident_facts()
    to_ir, to_af = data["envelopes"][0], data["envelopes"][1]
    to_af["created"] = to_ir["created"]  # pk tells ir and af at one moment
    data["envelopes"][4]["created"] = format_time(w(0.5))  # ir tells af at the incident's very moment
    data["envelopes"].insert(0, data["envelopes"].pop(4))  # still by created time, then id
    report = computed(_redrill(data))
    pairs = by_pair(report)
    assert _drill(pairs["pk-ir"]["first_message"]) == _drill(pairs["pk-af"]["first_message"]) == "5m"
    assert pairs["ir-af"]["notice"] is None and _drill(pairs["ir-af"]["first_message"]) == "0s"
    [overall, _] = report["figures"]["incidents"]
    assert overall["first_message"]["to"]["id"] == "e5"  # the earliest of all: ir-af's, at 0s
    # Within a pair, two messages at one moment: the first listed (the lower id) is the first message.
    data = incident_facts()
    data["envelopes"][5]["created"] = data["envelopes"][1]["created"]  # af asks pk as pk's report reaches it
    data["envelopes"].insert(2, data["envelopes"].pop(5))
    pk_af = by_pair(computed(_redrill(data)))["pk-af"]
    assert pk_af["first_message"]["to"]["id"] == "e3" and _drill(pk_af["acknowledged"]) == "7m"


def test_an_edited_pair_incident_figure_is_refused_and_a_report_from_before_still_verifies() -> None:
    report = computed(incident_facts())
    drill_facts.check(report)
    older = json.loads(json.dumps(report))
    for pair in older["figures"]["pairs"].values():
        del pair["incidents"]  # as written before incidents were figured per pair
    drill_facts.check(older)
    assert not any(", pk-" in name for name, _, _ in drill_compare.headline(older))
    report["figures"]["pairs"]["pk-af"]["incidents"][0]["acknowledged"]["drill_seconds"] = 60.0
    with pytest.raises(
        Invalid,
        match=r"figures\.pairs\.pk-af\.incidents\[0\]\.acknowledged\.drill_seconds: the report says 60\.0, "
        r"its facts give 420",
    ):
        drill_facts.check(report)


def test_the_page_the_summary_and_the_comparison_show_each_pair_s_incident_figures(tmp_path: Path) -> None:
    report = computed(incident_facts())
    page = render_report(report)
    table = page[page.index("<h2>Incidents by pair</h2>") : page.index("<h2>De-escalation</h2>")]
    assert table.count("<b>shots</b>") == 3 and table.count("<b>quiet</b>") == 3
    assert "<b>pk–af</b></td>" in table and "no message about it" in table
    assert '<span class="num">7m</span>' in table and "asked in</span>" in table
    rows = {name: text for name, text, _ in drill_compare.headline(report)}
    assert rows["shots (non_state_attack, 04 May), pk-af: acknowledged"] == "7m"
    assert rows["shots (non_state_attack, 04 May), ir-af: acknowledged"] == "never"
    assert rows["shots (non_state_attack, 04 May), pk-ir: clarification answered"] == "not asked"
    assert rows["quiet (other, 04 May), ir-af: first message"] == "never"
    path = tmp_path / "tri.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    shown = detente("drill", "report", str(path))
    assert shown.code == 0, shown
    lines = [" ".join(line.replace("│", " ").split()) for line in shown.stdout.splitlines()]
    at = lines.index("Incidents by pair")
    assert "shots (non_state_attack) pk-af none 6m 7m 30m" in lines[at:]
    assert "shots (non_state_attack) ir-af none 15m never not asked" in lines[at:]
    assert "quiet (other) pk-ir none never — not asked" in lines[at:]


def test_a_two_party_and_a_three_party_report_compare_with_a_warning_and_strict_refuses(tmp_path: Path) -> None:
    two = group_facts({"pk": "https://a", "ir": "https://b"})
    two["envelopes"], two["steps"], two["links"]["events"], two["workflows"] = two["envelopes"][:2], [], [], {}
    a, b = computed(two), computed(incident_facts())
    says = "a drill of pk, ir and"
    [warning] = [text for text in drill_compare.not_comparable(a, b)]
    assert says in warning and "of pk, ir, af: the figures of a whole run cover other pairs" in warning
    rows = {name: (left, right) for name, left, right in drill_compare.compare(a, b)}
    assert rows["shots (non_state_attack, 04 May), pk-af: acknowledged"] == ("—", "7m")
    assert rows["shots (non_state_attack, 04 May): first message"] == ("never", "5m")
    paths = []
    for name, report in (("two.json", a), ("three.json", b)):
        paths.append(str(tmp_path / name))
        (tmp_path / name).write_text(json.dumps(report), encoding="utf-8")
    warned = detente("drill", "compare", *paths)
    assert warned.code == 0 and says in warned.stdout, warned
    refused = detente("drill", "compare", *paths, "--strict", "--html", str(tmp_path / "c.html"))
    assert refused.code == 1 and "NotComparable" in refused.stderr and says in refused.stderr, refused
    assert "Comparison" not in refused.stdout and not (tmp_path / "c.html").exists()
    # Two runs of one group compare pair by pair, with no such warning.
    again = computed(incident_facts())
    assert not drill_compare.not_comparable(b, again) and not any(says in t for t in drill_compare.warnings(b, again))
