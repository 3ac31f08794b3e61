"""A two-party drill report reads exactly as it did before groups of states: byte for byte.

Figures added for three parties or more (by party, by pair, incidents by pair) must never change
what a report of two parties writes, prints or compares: its JSON file (as a run writes it), its
HTML page, its terminal summary, the comparison of two of its variants (terminal and page). The
expected texts are stored beside this module (`drill_two_party/`), written once from the facts
below; a change to any of them is a change every reader of a two-party report sees, so it must be
made on purpose, by replacing the stored file.

The facts (pk and ir, a clock at 600×, no jump) hold every kind of incident figure: an advance
notice, a first message acknowledged, a clarification asked and answered, a report declined, an
incident nobody wrote about, a de-escalation accepted, a message left unanswered by script, and
an outage of ir's node that pk saw.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli_support import detente
from detente.core import drill_report
from detente.core.drill_clock import to_drill
from detente.core.precedence import format_time, parse_time
from detente.web.drill_report import render_comparison, render_report

GOLDEN = Path(__file__).parent / "drill_two_party"
T0 = datetime(2024, 1, 16, 12, 0, tzinfo=UTC)
W0 = datetime(2030, 1, 1, tzinfo=UTC)
DEADLINES = {"FLASH": 600.0, "IMMEDIATE": 1800.0, "PRIORITY": 3600.0, "ROUTINE": 86400.0}


def w(seconds: float) -> datetime:
    return W0 + timedelta(seconds=seconds)


def drill(minutes: float) -> str:
    return format_time(T0 + timedelta(minutes=minutes))


def _env(i: int, kind: str, sender: str, to: str, wall: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e{i:02d}", "type": kind, "channel": "dgmo", "from": sender, "to": to, "precedence": "FLASH",
        "created": format_time(w(wall)), "drill": "", "refs": [], "case": None, "deadline": None,
        "needs_ack": False, "response": None, "overdue_at": None, "author": f"op-{sender}",
        "log": {"pk": 2 * i, "ir": 2 * i + 1}, **extra,
    }  # fmt: skip


def _needs(wall: float) -> dict[str, Any]:
    return {"needs_ack": True, "deadline": format_time(w(wall + 1))}


def _answer(message: dict[str, Any], answer: dict[str, Any]) -> None:
    message["response"] = {"id": answer["id"], "type": answer["type"], "at": answer["created"], "by": "op"}


def two_party_facts(variant: str = "with-hotline", ack_delay: float = 0.3) -> dict[str, Any]:
    """pk and ir, 12:00 → 17:00 drill time in 30 s real (600×): every kind of incident figure."""
    samples = [(w(0), T0), (w(30), T0 + timedelta(hours=5))]
    notice = _env(1, "operation.prenotify", "pk:dgmo", "ir:dgmo", 1.0, **_needs(1.0))
    notice_ack = _env(2, "ack", "ir:dgmo", "pk:dgmo", 2.0, refs=["e01"])
    report = _env(3, "incident.report", "pk:dgmo", "ir:dgmo", 4.0, **_needs(4.0))
    report_ack = _env(4, "ack", "ir:dgmo", "pk:dgmo", 4.0 + ack_delay, refs=["e03"])
    ask = _env(5, "clarification.request", "ir:dgmo", "pk:dgmo", 5.0, refs=["e03"], **_needs(5.0))
    ask_ack = _env(6, "ack", "pk:dgmo", "ir:dgmo", 5.2, refs=["e05"])
    answer = _env(7, "clarification.response", "pk:dgmo", "ir:dgmo", 7.0, refs=["e05"], **_needs(7.0))
    answer_ack = _env(8, "ack", "ir:dgmo", "pk:dgmo", 7.2, refs=["e07"])
    raid = _env(9, "incident.report", "ir:dgmo", "pk:dgmo", 10.0, **_needs(10.0))
    refused = _env(10, "decline", "pk:dgmo", "ir:dgmo", 10.5, refs=["e09"])
    proposal = _env(11, "deescalation.proposal", "ir:dgmo", "pk:dgmo", 13.0, **_needs(13.0))
    accepted = _env(12, "ack", "pk:dgmo", "ir:dgmo", 14.0, refs=["e11"])
    silent = _env(13, "hotline.text", "pk:dgmo", "ir:dgmo", 15.0, precedence="IMMEDIATE", **_needs(15.0))
    for message, response in ((notice, notice_ack), (report, report_ack), (ask, ask_ack), (answer, answer_ack),
                              (raid, refused), (proposal, accepted)):  # fmt: skip
        _answer(message, response)
    envelopes = [notice, notice_ack, report, report_ack, ask, ask_ack, answer, answer_ack, raid, refused, proposal,
                 accepted, silent]  # fmt: skip

    def step(n: int, label: str | None, kind: str, line: int, office: str | None, minutes: float, **more: Any) -> Any:
        return {"n": n, "label": label, "kind": kind, "line": line, "office": office, "drill": drill(minutes),
                "status": "done", "target": None, **more}  # fmt: skip

    steps = [
        step(0, "notice", "message", 10, "pk:dgmo", 10, id="e01", about="strike", operator="pk-dgmo",
             assumed="the notice's time is the scenario's premise"),
        step(1, None, "ack", 12, "ir:dgmo", 20, id="e02", target="notice", operator="ir-dgmo"),
        step(2, "report", "message", 20, "pk:dgmo", 40, id="e03", about="strike", operator="pk-dgmo"),
        step(3, None, "ack", 24, "ir:dgmo", 40 + 10 * ack_delay, id="e04", target="report", operator="ir-dgmo"),
        step(4, "ask", "message", 30, "ir:dgmo", 50, id="e05", operator="ir-dgmo"),
        step(5, None, "ack", 33, "pk:dgmo", 52, id="e06", target="ask", operator="pk-dgmo"),
        step(6, "answer", "answer", 36, "pk:dgmo", 70, id="e07", target="ask", operator="pk-dgmo"),
        step(7, None, "ack", 39, "ir:dgmo", 72, id="e08", target="answer", operator="ir-dgmo"),
        step(8, "raid-report", "message", 50, "ir:dgmo", 100, id="e09", about="raid", operator="ir-dgmo"),
        step(9, None, "decline", 53, "pk:dgmo", 105, id="e10", target="raid-report", operator="pk-dgmo"),
        step(10, "propose", "message", 60, "ir:dgmo", 130, id="e11", operator="ir-dgmo"),
        step(11, None, "ack", 63, "pk:dgmo", 140, id="e12", target="propose", operator="pk-dgmo"),
        step(12, "nudge", "message", 70, "pk:dgmo", 150, id="e13", operator="pk-dgmo"),
        step(13, None, "silence", 73, "ir:dgmo", 151, target="nudge", status="shown"),
        step(14, None, "outage", 80, None, 180, wall=format_time(w(18)), party="ir", duration=1200.0),
    ]  # fmt: skip
    data: dict[str, Any] = {
        "format": "detente-drill-report/1",
        "scenario": {"title": "Two parties", "variant": variant, "source": "two.yaml", "seed": 7, "notices": []},
        "run": {"speed": 600.0, "skip": True, "nodes": {"pk": "https://127.0.0.1:1", "ir": "https://127.0.0.1:2"},
                "agreement": "c34c6ad7038f", "wall_start": format_time(w(0)), "wall_end": format_time(w(30)),
                "drill_start": format_time(T0), "drill_end": format_time(T0 + timedelta(hours=5))},
        "clock": {"samples": [[format_time(a), format_time(b)] for a, b in samples], "jumps": []},
        "deadlines": {"dgmo": dict(DEADLINES)},
        "incidents": [
            {"label": "strike", "kind": "strike", "drill": drill(30), "place": "Panjgur", "by": "ir", "where": "pk"},
            {"label": "raid", "kind": "non_state_attack", "drill": drill(90), "place": "Saravan", "where": "ir"},
            {"label": "quiet", "kind": "other", "drill": drill(120), "place": "Taftan",
             "uncertain": "≈14:00Z [S1]"},
        ],
        "steps": steps,
        "envelopes": envelopes,
        "links": {"events": [
            {"node": "pk", "peer": "ir", "state": "DOWN", "wall": format_time(w(18.5))},
            {"node": "pk", "peer": "ir", "state": "UP", "wall": format_time(w(20.5))},
        ], "before": {}},
        "workflows": {"case": {"e03": {"pk": {"status": "open"}, "ir": {"status": "open"}}}},
    }  # fmt: skip
    labels = {s["id"]: (s["label"], s["line"]) for s in steps if s.get("id")}
    for envelope in envelopes:
        envelope["drill"] = format_time(to_drill(samples, parse_time(envelope["created"])))
        envelope["step"], envelope["line"] = labels[envelope["id"]]
    return data


def outputs(tmp_path: Path) -> dict[str, str]:
    """Every form of the two-party report and of a comparison of two of its variants, by file name."""
    a = drill_report.compute(two_party_facts())
    b = drill_report.compute(two_party_facts("as-it-happened", ack_delay=1.2))
    files = {}
    for name, report in (("a.json", a), ("b.json", b)):
        files[name] = json.dumps(report, indent=1, ensure_ascii=False)  # as `drill run` writes it
        (tmp_path / name).write_text(files[name], encoding="utf-8")
    shown = detente("drill", "report", str(tmp_path / "a.json"), width=200)
    compared = detente("drill", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), width=200)
    assert shown.code == compared.code == 0, (shown, compared)
    files["a.html"] = render_report(a)
    files["a.summary.txt"] = shown.stdout
    files["compare.txt"] = compared.stdout
    files["compare.html"] = render_comparison(a, b)
    return files


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return outputs(tmp_path_factory.mktemp("two-party"))


@pytest.mark.parametrize("name", ["a.json", "b.json", "a.html", "a.summary.txt", "compare.txt", "compare.html"])
def test_a_two_party_report_writes_prints_and_compares_exactly_as_before(written: dict[str, str], name: str) -> None:
    expected = (GOLDEN / name).read_text(encoding="utf-8")
    assert written[name] == expected, f"{name} changed for a two-party report: compare it with {GOLDEN / name}"


def test_the_facts_hold_every_kind_of_incident_figure() -> None:
    # So that the stored texts above cover each incident figure, not only the easy ones.
    [strike, raid, quiet] = drill_report.compute(two_party_facts())["figures"]["incidents"]
    assert strike["notice"] and strike["acknowledged"] and strike["clarified"]
    assert raid["declined"] and raid["acknowledged"] is None and not raid["clarification_asked"]
    assert quiet["first_message"] is None and quiet["messages"] == 0
