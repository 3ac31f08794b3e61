"""The drill report is honest about time: clock jumps, compression, and values a reader could edit.

Each test builds a report's facts by hand (a clock table, envelopes, link events, steps), as the
engine collects them, and checks what the report computes from them, or refuses.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detente.core import drill_compare, drill_facts, drill_report, keys
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.drill_clock import JUMP_WAIT, ClockPlan, ClockRun, to_drill
from detente.core.note import add_signatures, cosign
from detente.core.precedence import format_time, parse_time
from detente.errors import Invalid
from detente.web.drill_report import render_comparison, render_report

T0 = datetime(2024, 1, 16, 13, 0, tzinfo=UTC)
W0 = datetime(2030, 1, 1, tzinfo=UTC)


def w(seconds: float) -> datetime:
    return W0 + timedelta(seconds=seconds)


# --- the clock: no jump while a link is seen down ------------------------------------------------------


def _jumping_run() -> ClockRun:
    """A clock at 600× that reaches a jump (13:03 → 14:59) at 0.3 s real."""
    plan = ClockPlan.build(T0, T0 + timedelta(hours=2), [T0 + timedelta(minutes=1)], speed=600, pause=0)
    assert plan.jumps() == [(EDGE, T0 + timedelta(minutes=119))]
    return ClockRun(plan, W0)


EDGE = T0 + timedelta(minutes=3)


def test_a_jump_waits_while_a_node_sees_its_link_down_and_the_return_stays_before_it() -> None:
    run = _jumping_run()
    run.see_link("pk", "ir", "DOWN", w(0.1))
    assert run.advance(w(1)) == [] and run.now == EDGE  # reached the jump at 0.3 s; it waits
    assert run.advance(w(2)) == [] and run.now == EDGE
    run.see_link("pk", "ir", "UP", w(2.5))
    assert run.advance(w(3)) == [(EDGE, T0 + timedelta(minutes=119))]
    assert to_drill(run.samples, w(2.5)) == EDGE  # the link came back before the jump, on this side of it


def test_a_link_seen_back_between_two_ticks_stays_before_the_jump_taken_at_the_second() -> None:
    run = _jumping_run()
    run.advance(w(0.29))
    run.see_link("pk", "ir", "UP", w(0.31))  # the clock reached the jump at 0.3 s, between the ticks
    run.advance(w(0.32))
    assert to_drill(run.samples, w(0.31)) == EDGE
    assert run.now > T0 + timedelta(minutes=119)


def test_a_link_that_never_comes_back_holds_the_jump_for_a_bounded_time() -> None:
    run = _jumping_run()
    run.see_link("pk", "ir", "DOWN", w(0.1))
    ticks = [0.3 + 0.5 * i for i in range(1, int(JUMP_WAIT * 2) + 3)]
    held = [t for t in ticks if run.advance(w(t)) == [] and run.now == EDGE]
    assert JUMP_WAIT - 0.5 <= held[-1] - 0.3 <= JUMP_WAIT + 0.5
    assert run.now > T0 + timedelta(minutes=119)


def test_the_clock_table_read_back_from_json_gives_the_same_drill_times() -> None:
    plan = ClockPlan.build(T0, T0 + timedelta(hours=1), [], speed=3000, skip=False)
    run = ClockRun(plan, W0 + timedelta(microseconds=123_456))
    for tick in range(1, 40):
        run.advance(W0 + timedelta(seconds=tick * 0.0217, microseconds=123_456))
    table = [(parse_time(format_time(a)), parse_time(format_time(b))) for a, b in run.samples]
    for tick in range(1, 80):
        created = parse_time(format_time(W0 + timedelta(seconds=tick * 0.0101)))
        assert format_time(to_drill(run.samples, created)) == format_time(to_drill(table, created))


# --- facts of a small run ------------------------------------------------------------------------------


def _env(i: int, kind: str, sender: str, to: str, wall: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e{i}", "type": kind, "channel": "dgmo", "from": sender, "to": to, "precedence": "FLASH",
        "created": format_time(w(wall)), "drill": "", "refs": [], "case": None, "deadline": None,
        "needs_ack": False, "response": None, "overdue_at": None, "author": f"op-{sender}", "log": {"pk": i, "ir": i},
        **extra,
    }  # fmt: skip


def facts(**run: Any) -> dict[str, Any]:
    """A run at 600×: strike at 13:10 (1 s), a report, its acknowledgement; ir's node down 13:40 for 20 m.

    The clock: 13:00 → 13:40 in 4 s; the outage 13:40 → 14:00 in 8 s (150×); a jump to 15:00 at 12 s.
    """
    samples = [(w(0), T0), (w(4), T0 + timedelta(minutes=40)), (w(12), T0 + timedelta(hours=1)),
               (w(12), T0 + timedelta(hours=2)), (w(13), T0 + timedelta(hours=2, minutes=10))]  # fmt: skip
    report = _env(1, "incident.report", "pk:dgmo", "ir:dgmo", 1.5, deadline=format_time(w(2.5)), needs_ack=True)
    ack = _env(2, "ack", "ir:dgmo", "pk:dgmo", 2.0, refs=["e1"])
    report["response"] = {"id": "e2", "type": "ack", "at": ack["created"], "by": "op-ir"}
    data: dict[str, Any] = {
        "format": "detente-drill-report/1",
        "scenario": {"title": "t", "variant": "v", "source": "t.yaml", "seed": 1, "notices": []},
        "run": {"speed": 600.0, "skip": True, "nodes": {"pk": "https://a", "ir": "https://b"}, "agreement": "x",
                "wall_start": format_time(w(0)), "wall_end": format_time(w(13)), "drill_start": format_time(T0),
                "drill_end": format_time(T0 + timedelta(hours=2, minutes=10)), **run},
        "clock": {"samples": [[format_time(a), format_time(b)] for a, b in samples], "jumps": []},
        "deadlines": {"dgmo": {"FLASH": 600.0}},
        "incidents": [{"label": "strike", "kind": "strike", "drill": format_time(T0 + timedelta(minutes=10)),
                       "place": "x"}],
        "steps": [
            {"n": 0, "label": "report", "kind": "message", "line": 10, "office": "pk:dgmo", "operator": "pk-dgmo",
             "drill": format_time(T0 + timedelta(minutes=15)), "status": "done", "id": "e1", "about": "strike",
             "target": None},
            {"n": 1, "label": None, "kind": "ack", "line": 20, "office": "ir:dgmo", "operator": "ir-dgmo",
             "drill": format_time(T0 + timedelta(minutes=20)), "status": "done", "id": "e2", "target": "report"},
            {"n": 2, "label": None, "kind": "outage", "line": 30, "office": None, "drill": format_time(T0 + timedelta(
             minutes=40)), "wall": format_time(w(4)), "status": "done", "target": None, "party": "ir",
             "duration": 1200.0},
        ],
        "envelopes": [report, ack],
        "links": {"events": [
            {"node": "pk", "peer": "ir", "state": "DEGRADED", "wall": format_time(w(8.4))},
            {"node": "pk", "peer": "ir", "state": "UP", "wall": format_time(w(11.9))},
        ], "before": {}},
        "workflows": {},
    }  # fmt: skip
    for envelope in data["envelopes"]:
        envelope["drill"] = format_time(to_drill(samples, parse_time(envelope["created"])))
        envelope["step"] = {"e1": "report"}.get(envelope["id"])
        envelope["line"] = {"e1": 10, "e2": 20}[envelope["id"]]
    return data


def computed(data: dict[str, Any]) -> dict[str, Any]:
    report = drill_report.compute(data)
    return json.loads(json.dumps(report))  # exactly what the JSON file holds


# --- H1: the scripted outage beside what each node saw -------------------------------------------------


def test_a_scripted_outage_is_set_beside_what_each_node_saw_with_the_real_delays_stated() -> None:
    figures = computed(facts())["figures"]
    [outage] = figures["outages"]
    assert (outage["party"], outage["drill_from"], outage["drill"]) == (
        "ir",
        format_time(T0 + timedelta(minutes=40)),
        "20m",
    )
    [seen] = outage["seen"]
    assert seen["node"] == "pk" and seen["noticed_after"] == 4.4 and seen["back_after"] == -0.1
    assert seen["drill_to"] == format_time(T0 + timedelta(minutes=59, seconds=45))
    assert seen["distorted"] and "4.4 s real after the node stopped" in seen["distortions"][0]
    assert "11m" in seen["distortions"][0]  # 4.4 s at 150×
    assert figures["summary"]["outages_scripted"] == 1 and figures["summary"]["outages_not_scripted"] == 0


def test_an_outage_seen_across_a_time_jump_is_marked_not_presented_as_fact() -> None:
    data = facts()
    data["links"]["events"][1]["wall"] = format_time(w(12.5))  # UP after the jump
    [seen] = computed(data)["figures"]["outages"][0]["seen"]
    assert seen["drill_seconds"] > 3600 and seen["jumped_seconds"] == 3600
    assert any("time jumps of 1h 00m lie inside it" in r for r in seen["distortions"])
    row = dict((n, t) for n, t, _ in drill_compare.headline(computed(data)))
    assert row["ir's node down 16 Jan 13:40Z for 20m (scripted): pk saw ir DEGRADED"].startswith("1h 14m")
    assert "*" in row["ir's node down 16 Jan 13:40Z for 20m (scripted): pk saw ir DEGRADED"]


def test_a_report_from_before_outages_were_kept_shows_what_the_nodes_saw_as_not_scripted() -> None:
    data = facts()
    del data["steps"][2]["party"], data["steps"][2]["duration"]
    figures = computed(data)["figures"]
    assert figures["outages"] == [] and figures["links"][0]["outage"] is None
    assert figures["links"][0]["distortions"]  # 3.5 s real shown as minutes


# --- M6: the speed the clock actually ran at ------------------------------------------------------------


def test_the_report_says_the_clock_ran_slower_than_asked_and_why() -> None:
    data = facts(skip=False)
    data["run"]["speed"] = 1200.0  # asked 1200, ran at 600 outside the outage
    data["scenario"]["notices"] = [
        "line 40: message reply left out: ir:fs is played by a person",
        "line 44: ack left out: it needs a step left out",
    ]
    clock = computed(data)["figures"]["clock"]
    assert clock["rate"] == 600 and clock["speed"] == 1200
    assert "without time jumps the clock runs at one rate" in clock["why"] and "line 30: 20m in 8.0 s" in clock["why"]
    assert clock["left_out"] == 2 and clock["people"] == ["ir:fs"]
    assert computed(facts())["figures"]["clock"]["why"] is None


# --- H2: an edited report is refused -------------------------------------------------------------------


def test_a_report_as_written_passes_its_own_check() -> None:
    drill_facts.check(computed(facts()))


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda r: r["envelopes"][1].__setitem__("drill", "2024-01-16T13:05:00.000Z"),
            "envelope e2 (ack): its drill time is 2024-01-16T13:05:00.000Z, but its created time "
            "2030-01-01T00:00:02.000Z converts to 2024-01-16T13:20:00.000Z",
        ),
        (
            lambda r: r["figures"]["incidents"][0]["acknowledged"].__setitem__("drill", "1m"),
            "figures.incidents[0].acknowledged.drill: the report says '1m', its facts give '10m'",
        ),
        (
            lambda r: r["figures"]["summary"].__setitem__("overdue", 3),
            "figures.summary.overdue: the report says 3, its facts give 0",
        ),
        (
            lambda r: r["envelopes"][0]["response"].__setitem__("at", "2030-01-01T00:00:01.600Z"),
            "envelope e1 (incident.report): its answer is recorded as ack e2 at 2030-01-01T00:00:01.600Z",
        ),
        (lambda r: r["envelopes"][0].__setitem__("needs_ack", False), "needs_ack is False, but its deadline is"),
        (lambda r: r["clock"]["samples"][2].__setitem__(1, "2024-01-16T13:30:00.000Z"), "clock runs backwards"),
        (lambda r: r["clock"]["samples"][0].__setitem__(0, "2030-01-01T00:00:00.500Z"), "the clock table starts"),
        (lambda r: r.__setitem__("checkpoints", {"pk": {"size": 3, "note": "not a note"}}), "checkpoints.pk.note"),
    ],
)
def test_an_edited_report_is_refused_naming_the_value_and_both_readings(edit: Any, says: str) -> None:
    report = computed(facts())
    edit(report)
    with pytest.raises(Invalid, match="was edited or is damaged") as caught:
        drill_facts.check(report)
    assert says in caught.value.detail


def test_every_drill_time_of_a_figure_comes_from_created_not_from_the_stored_value() -> None:
    data = facts()
    data["envelopes"][1]["drill"] = "2024-01-16T13:05:00.000Z"  # compute alone does not trust it either
    incident = drill_report.compute(data)["figures"]["incidents"][0]
    assert incident["acknowledged"]["drill"] == "10m" and incident["acknowledged"]["to"]["drill"].endswith(
        "13:20:00.000Z"
    )


# --- LOW: not asked, answered by whom, comparisons ------------------------------------------------------


def test_a_clarification_never_asked_reads_not_asked_and_an_answer_names_office_and_operator() -> None:
    report = computed(facts())
    assert report["figures"]["incidents"][0]["clarification_asked"] is False
    rows = dict((n, t) for n, t, _ in drill_compare.headline(report))
    assert rows["strike (strike, 16 Jan): clarification answered"] == "not asked"
    page = render_report(report)
    assert "not asked" in page
    assert "by ir:dgmo, operator <code>ir-dgmo</code>" in page
    assert "20m" in page and "noticed after" in page
    empty = facts()
    empty["incidents"] = []
    assert "this scenario scripts no incident" in render_report(computed(empty))


def test_two_runs_of_one_variant_get_distinct_columns_and_other_scenarios_a_warning() -> None:
    a, b = computed(facts()), computed(facts(wall_start=format_time(w(0))))
    b["run"]["wall_start"] = format_time(w(3600))
    left, right = drill_compare.columns(a, b)
    assert left != right and "run 01 Jan 00:00:00Z" in left and "run 01 Jan 01:00:00Z" in right
    assert drill_compare.warnings(a, b) == [
        "both reports are runs of variant 'v': they differ only in what the run itself changed"
    ]
    other = computed(facts())
    other["scenario"] = {**other["scenario"], "title": "another", "source": "o.yaml", "variant": "w"}
    assert "different scenarios" in drill_compare.warnings(a, other)[0]
    page = render_comparison(a, other)
    assert "Warning: these reports are of different scenarios" in page


def test_a_partial_run_or_another_agreement_is_not_comparable_but_a_second_run_of_one_variant_is() -> None:
    a, b = computed(facts()), computed(_interrupted(facts()))
    assert drill_compare.not_comparable(a, computed(facts())) == []
    fast = computed(facts())
    fast["figures"]["clock"]["rate"] = 700.0  # measured above the 600× asked: rounding, not a pace
    assert drill_compare.not_comparable(a, fast) == []
    assert drill_compare.warnings(a, computed(facts())) == [
        "both reports are runs of variant 'v': they differ only in what the run itself changed"
    ]
    b["run"]["agreement"] = "y"
    assert drill_compare.not_comparable(a, b) == [
        "the nodes ran under different agreements (x and y): deadlines, channels and rules may differ",
        "B: v (run 01 Jan 00:00:00Z), seed 1 is a partial run, interrupted at 16 Jan 13:25Z drill time: "
        "its figures stop there",
    ]
    assert drill_compare.warnings(a, b)[1:] == drill_compare.not_comparable(a, b)


# --- how to check a figure: kept nodes, discarded nodes, checkpoints ------------------------------------


PK = keys.Signer.from_seed("pk.detente/log", bytes(32))
IR = keys.Signer.from_seed("ir.detente/log", bytes([1]) * 32)
ROOT_LINE = base64.b64encode(bytes(32)).decode()


def _keys() -> dict[str, dict[str, str]]:
    """Both nodes' keys as a run writes them: the log key and the same key as a witness key."""
    return {
        signer.name.split(".")[0]: {
            "log": signer.verifier.vkey(),
            "witness": signer.verifier.with_alg(keys.ALG_COSIGNATURE_V1).vkey(),
        }
        for signer in (PK, IR)
    }


def _checkpoint(size: int, signer: keys.Signer = PK, *, cosigned: bool = True) -> dict[str, Any]:
    """A checkpoint of pk's log of `size` entries, signed as a node signs it and cosigned by ir's node."""
    note = sign_checkpoint(Checkpoint("pk.detente/log", size, bytes(32)), signer)
    if cosigned:
        note = add_signatures(note, cosign(note.text, IR, 1_700_000_000))
    return {"size": size, "note": note.format().decode()}


def _with_checkpoint(report: dict[str, Any], entry: dict[str, Any] | None = None) -> dict[str, Any]:
    report["checkpoints"] = {"pk": entry or _checkpoint(3)}
    report["keys"] = _keys()
    return report


def test_the_page_names_each_kept_node_and_how_to_start_it_or_says_the_nodes_were_discarded() -> None:
    kept = render_report(computed(facts(node_dirs={"pk": "/d/nodes/pk", "ir": "/d/nodes/ir"})))
    assert "On either node" not in kept
    assert "<code>detente serve --data /d/nodes/pk</code>" in kept
    assert "<code>detente message ID --node /d/nodes/ir --token …</code>" in kept
    assert "were discarded" not in kept
    discarded = render_report(computed(facts(node_dirs=None, agreement_file=None)))
    assert "The nodes of this run were discarded at its end" in discarded
    assert "detente serve --data" not in discarded


def test_the_page_shows_each_node_checkpoint_and_what_an_export_and_audit_of_it_prove() -> None:
    report = computed(facts(node_dirs={"pk": "/d/nodes/pk", "ir": "/d/nodes/ir"}, agreement_file="/d/a.toml"))
    _with_checkpoint(report)
    report["checkpoints_missing"] = {"ir": "its node has signed no checkpoint"}
    drill_facts.check(report)
    page = render_report(report)
    assert 'size <b class="num">3</b>' in page
    assert (
        "<code>detente log export --data /d/nodes/pk --out EXPORT</code> then <code>detente audit EXPORT "
        "--agreement /d/a.toml</code> of pk's node prove every envelope whose pk log index is below 3: all 2 "
        "of this run"
    ) in page
    assert "none collected: its node has signed no checkpoint" in page
    # The page says which keys verified the checkpoint, and gives them.
    assert (
        "signed with <code>keys.pk.log</code> and cosigned by <code>keys.ir.witness</code>: verified when this "
        "page was made"
    ) in page
    assert f"log {report['keys']['pk']['log']}" in page and f"witness {report['keys']['pk']['witness']}" in page


def test_a_checkpoint_that_does_not_cover_an_envelope_of_the_run_is_refused() -> None:
    report = _with_checkpoint(computed(facts()), _checkpoint(2))  # e2 is pk log #2: not below 2
    with pytest.raises(Invalid, match="was edited or is damaged") as caught:
        drill_facts.check(report)
    assert "envelope e2 (ack): its pk log index is 2, but checkpoints.pk covers only the indexes below 2" in (
        caught.value.detail
    )


def _edit_root(report: dict[str, Any]) -> None:
    """Change the root hash in pk's checkpoint, keeping its signature lines."""
    entry = report["checkpoints"]["pk"]
    entry["note"] = entry["note"].replace(ROOT_LINE, base64.b64encode(bytes([7]) * 32).decode(), 1)


def _set_key(party: str, role: str, value: str) -> Any:
    return lambda r: r["keys"][party].__setitem__(role, value)


OTHER = keys.Signer.from_seed("pk.detente/log", bytes([9]) * 32)  # pk's name, another key


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            _edit_root,
            "checkpoints.pk: its signatures do not verify with keys.pk.log and the witness keys: "
            "invalid note signature; the report was edited",
        ),
        (  # re-signed with another key under pk's name: the report's keys know no such signature
            lambda r: r["checkpoints"].__setitem__("pk", _checkpoint(3, OTHER, cosigned=False)),
            "checkpoints.pk: its signatures do not verify with keys.pk.log and the witness keys: "
            "note has no verified signature; the report was edited",
        ),
        (  # the key swapped for the editor's own: ir never cosigned what that key signed
            lambda r: (
                r["checkpoints"].__setitem__("pk", _checkpoint(3, OTHER, cosigned=False))
                or _set_key("pk", "log", OTHER.verifier.vkey())(r)
            ),
            "checkpoints.pk: it is not cosigned by ir (keys.ir.witness), and a run keeps only checkpoints every "
            "peer cosigned; the report was edited",
        ),
        (
            lambda r: r["checkpoints"].__setitem__("pk", _checkpoint(3, cosigned=False)),
            "checkpoints.pk: it is not cosigned by ir (keys.ir.witness)",
        ),
        (
            lambda r: r.pop("keys"),
            "checkpoints.pk: no key to verify it with: keys.pk.log is missing (the report was edited, or written "
            "before reports carried their nodes' keys: run the drill again)",
        ),
        (
            lambda r: r["keys"].pop("ir"),
            "checkpoints.pk: no key to verify it with: keys.ir.witness is missing",
        ),
        (
            _set_key("pk", "log", PK.verifier.with_alg(keys.ALG_COSIGNATURE_V1).vkey()),
            "checkpoints.pk: keys.pk.log must be a note signature key (type 0x01), not type 0x04; the report was",
        ),
        (
            _set_key("ir", "witness", "ir.detente/log+00000000+AQ=="),
            "checkpoints.pk: keys.ir.witness is not a verifier key (vkey): malformed verifier key; the report was",
        ),
    ],
)
def test_a_checkpoint_that_its_keys_do_not_verify_is_refused(edit: Any, says: str) -> None:
    report = _with_checkpoint(computed(facts()))
    drill_facts.check(report)  # as written, it verifies
    edit(report)
    with pytest.raises(Invalid, match="was edited or is damaged") as caught:
        drill_facts.check(report)
    assert says in caught.value.detail


def test_a_report_without_checkpoints_needs_no_keys_and_keys_must_be_texts() -> None:
    drill_facts.check(computed(facts()))
    report = _with_checkpoint(computed(facts()))
    report["keys"]["ir"]["witness"] = None
    with pytest.raises(Invalid, match=r"is not a complete drill report: keys\.ir\.witness: must be a text, not null"):
        drill_facts.check(report)


# --- an interrupted run, and step times that are not sourced facts -------------------------------------


def _interrupted(data: dict[str, Any]) -> dict[str, Any]:
    data["interrupted"] = {
        "drill": format_time(T0 + timedelta(minutes=25)), "wall": format_time(w(3)), "variant": "v",
        "step": {"line": 20, "label": None, "kind": "ack", "drill": format_time(T0 + timedelta(minutes=20)),
                 "status": "done"},
        "next": {"line": 30, "label": None, "kind": "outage", "drill": format_time(T0 + timedelta(minutes=40))},
        "steps_played": 2, "steps_left": 1, "envelopes": "complete",
    }  # fmt: skip
    return data


def test_an_interrupted_run_says_where_it_stopped_at_the_top_of_its_page() -> None:
    report = computed(_interrupted(facts()))
    drill_facts.check(report)
    page = render_report(report)
    assert "<title>Drill report (interrupted) · t" in page
    top = page[: page.index("<h2>Timeline</h2>")]
    assert "Interrupted: a partial run." in top
    assert "stopped at <b>16 Jan 2024 13:25:00Z</b> drill time" in top and "in variant <b>v</b>" in top
    assert "after line 20 (ack); the next step was line 30 (outage) at 16 Jan 2024 13:40:00Z" in top
    assert "<b>2</b> steps played, <b>1</b> not; <b>2</b> envelopes sent before the interruption" in top
    assert "Interrupted" not in render_report(computed(facts()))
    broken = computed(_interrupted(facts()))
    del broken["interrupted"]["steps_left"]
    with pytest.raises(Invalid, match="interrupted.steps_left: missing"):
        drill_facts.check(broken)


def test_assumed_and_uncertain_step_times_are_marked_where_the_step_or_incident_appears() -> None:
    data = facts()
    data["steps"][1]["assumed"] = "no source says when the chargé acknowledged it"
    data["steps"][2]["uncertain"] = "≈13:40–14:10 [S7]"
    data["incidents"][0]["uncertain"] = "between 13:05 and 13:15 [S1]"
    page = render_report(computed(data))
    assert '<span class="note" title="no source gives this time: the scenario\'s choice">assumed: no source says' in (
        page
    )
    ack = page.index("ack e2</span>")  # the acknowledgement, wherever it appears, carries the note
    assert page[ack : ack + 400].count("assumed: no source says when the chargé acknowledged it") == 1
    assert "uncertain: between 13:05 and 13:15 [S1]" in page  # the incident
    assert '(line 30)</span> <span class="note" title="the sources leave this time uncertain">uncertain: ≈13:40' in (
        page
    )  # the scripted outage
    assert "1 step time is the scenario's assumption and 1 uncertain in the sources" in page
    assert "assumed:" not in render_report(computed(facts()))
