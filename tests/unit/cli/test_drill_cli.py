"""`detente drill` refuses bad input up front: options out of bounds, broken scenarios and reports.

Each case runs `detente.cli.main` itself (as the installed entry point does, without a process of
its own), so the exit status and the text are what an operator gets: a usage error (2) for an
option, one `error:` (1) naming the file, line or field for a file's content, never "unexpected".
No node is started here: every refusal comes before one would be.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import Ran, detente
from detente.cli import drill as cli_drill
from detente.core import drill_report
from detente.node.drill_types import DrillIncomplete

ROOT = Path(__file__).resolve().parents[3]
SHORT = ROOT / "scenarios" / "border-drone.yaml"


def usage_error(result: Ran, option: str, says: str) -> None:
    assert result.code == 2, result
    assert "Usage: detente drill" in result.stderr and f"Invalid value for '{option}'" in result.stderr, result.stderr
    assert says in result.stderr and "unexpected" not in result.stderr and "Traceback" not in result.stderr


def error(result: Ran, *says: str) -> None:
    assert result.code == 1, result
    assert result.stderr.startswith("error: "), result.stderr
    assert all(text in result.stderr for text in says), result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


# --- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--speed", "0", "0 is not a speed: give drill seconds per real second, from 1 to 10000000"),
        ("--speed", "-3", "-3 is not a speed"),
        ("--speed", "0.5", "0.5 is not a speed"),
        ("--speed", "nan", "nan is not a speed"),
        ("--speed", "inf", "inf is not a speed"),
        ("--speed", "20000000", "is not a speed"),
        ("--pause", "-1", "-1 is not a pause: give real seconds, from 0 to 60"),
        ("--pause", "nan", "nan is not a pause"),
        ("--pause", "61", "61 is not a pause"),
    ],
)
def test_speed_and_pause_out_of_bounds_are_usage_errors_before_anything_starts(
    option: str, value: str, says: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    result = detente("drill", "run", str(SHORT), option, value, "--quiet", "--workdir", str(work))
    usage_error(result, option, says)
    assert not work.exists()
    if option == "--speed":
        usage_error(detente("drill", "check", str(SHORT), option, value), option, says)


def test_an_office_the_agreement_does_not_have_cannot_be_played_by_people(tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = detente("drill", "run", str(SHORT), "--human", "xx:yy", "--quiet", "--workdir", str(work))
    usage_error(result, "--human", "the agreement has no office xx:yy (its offices: ir:dgmo, ir:fs,")
    assert not work.exists()


def test_report_and_workdir_must_be_directories_it_can_use(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    for option in ("--report", "--workdir"):
        usage_error(detente("drill", "run", str(SHORT), option, str(a_file)), option, "exists and is not a directory")
        result = detente("drill", "run", str(SHORT), option, str(a_file / "sub"))
        usage_error(result, option, f"{a_file} is not a writable directory")


# --- drill check -----------------------------------------------------------------------------------


def scenario(tmp_path: Path, old: str, new: str) -> Path:
    """The short scenario with one change, its agreement given as an absolute path."""
    text = SHORT.read_text(encoding="utf-8").replace("../agreements/pk-ir.toml", str(ROOT / "agreements/pk-ir.toml"))
    assert old in text
    path = tmp_path / "s.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("for: 40m", "for: 99999999999d", "outage.for: '99999999999d' is longer than 3650d (ten years)"),
        ("for: 40m", "for: 3650001d", "outage.for: '3650001d' is longer than 3650d"),
        ("  - at: +5m", "  - at: +99999999999999d", "timeline[0].at: '+99999999999999d' is longer than 3650d"),
        ("delay: 8m", "delay: 9999999999999", "delay: 9999999999999 is longer than 3650d"),
        ("delay: 8m", "delay: .nan", "delay: nan is not a duration"),
    ],
)
def test_huge_durations_are_problems_at_their_line(tmp_path: Path, old: str, new: str, says: str) -> None:
    path = scenario(tmp_path, old, new)
    error(detente("drill", "check", str(path)), f"s.yaml:{line_of(path, new.strip())}: ", says)


def test_a_yaml_alias_inside_itself_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = scenario(tmp_path, "title: ", "loop: &x [1, *x]\ntitle: ")
    line = line_of(path, "loop:")
    says = f"s.yaml:{line}: a YAML alias refers to the value at line {line}, which contains it"
    error(detente("drill", "check", str(path)), says)


def test_an_agreement_that_is_a_directory_or_not_text_is_a_problem_at_its_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00agreement")
    for where, says in ((tmp_path, "is a directory, not an agreement file"), (binary, "is not UTF-8 text")):
        path = scenario(tmp_path, f"agreement: {ROOT / 'agreements/pk-ir.toml'}", f"agreement: {where}")
        error(detente("drill", "check", str(path)), f"s.yaml:{line_of(path, 'agreement:')}: agreement: {where}", says)


# --- drill report and drill compare --------------------------------------------------------------

FACTS: dict[str, Any] = {
    "format": "detente-drill-report/1",
    "scenario": {"title": "t", "variant": None, "source": "t.yaml", "notices": []},
    "run": {
        "speed": 600.0,
        "skip": True,
        "nodes": {"pk": "https://127.0.0.1:1", "ir": "https://127.0.0.1:2"},
        "agreement": "c34c6ad7038f",
        "wall_start": "2026-01-01T00:00:00.000Z",
        "wall_end": "2026-01-01T00:00:12.000Z",
        "drill_start": "2024-01-16T12:00:00.000Z",
        "drill_end": "2024-01-16T14:00:00.000Z",
    },  # fmt: skip
    "clock": {
        "samples": [
            ["2026-01-01T00:00:00.000Z", "2024-01-16T12:00:00.000Z"],
            ["2026-01-01T00:00:12.000Z", "2024-01-16T14:00:00.000Z"],
        ],
        "jumps": [],
    },  # fmt: skip
    "deadlines": {"dgmo": {"FLASH": 600.0}},
    "incidents": [],
    "steps": [
        {
            "n": 0,
            "label": "report",
            "kind": "message",
            "line": 32,
            "office": "ir:dgmo",
            "operator": "ir-dgmo",
            "drill": "2024-01-16T12:05:00.000Z",
            "status": "failed",
            "harness": True,
            "target": None,
            "notes": [],
            "error": "Unauthorized (401): unknown or disabled API token",
        },
    ],  # fmt: skip
    "envelopes": [],
    "links": {"events": [], "before": {}, "after": {}},
    "workflows": {},
}


def report_file(tmp_path: Path, change: Any = None, name: str = "r.json") -> Path:
    facts = json.loads(json.dumps(FACTS))
    if change is not None:
        change(facts)
    path = tmp_path / name
    path.write_text(json.dumps(facts), encoding="utf-8")
    return path


def test_a_report_is_recomputed_and_says_first_that_the_drill_could_not_play_some_steps(tmp_path: Path) -> None:
    result = detente("drill", "report", str(report_file(tmp_path)), "--html", str(tmp_path / "r.html"))
    assert result.code == 0, result
    assert "1 step failed because the drill could not act on the nodes (first: line 32: Unauthorized (401)" in (
        result.stdout
    )
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")
    figures = drill_report.compute(json.loads(json.dumps(FACTS)))
    assert figures["figures"]["summary"]["harness_failures"] == 1
    with pytest.raises(DrillIncomplete, match=r"1 step failed .* line 32: .*\(401\).*; the 1 other variant did not"):
        cli_drill._raise_if_incomplete(tmp_path / "r.json", figures, left=1)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda f: f.pop("clock"), "r.json is not a complete drill report: clock: missing"),
        (lambda f: f["clock"]["samples"][1].pop(), "clock.samples[1]: must be a list of two, not a list"),
        (lambda f: f["clock"]["samples"][0].__setitem__(0, "soon"), "clock.samples[0][0]: time 'soon' is not RFC"),
        (lambda f: f["run"].pop("wall_end"), "run.wall_end: missing"),
        (lambda f: f["steps"][0].__setitem__("line", "32"), "steps[0].line: must be a whole number, not a text"),
        (lambda f: f["deadlines"]["dgmo"].__setitem__("FLASH", None), "deadlines.dgmo.FLASH: must be a number, not"),
        (lambda f: f.__setitem__("format", "x"), "r.json is not a drill report: format is 'x'"),
        (
            lambda f: f["clock"]["samples"][1].__setitem__(1, "2024-01-16T11:00:00.000Z"),
            "r.json was edited or is damaged: clock.samples[1]: the clock runs backwards",
        ),
    ],
)
def test_a_damaged_report_is_refused_naming_the_file_and_the_field(tmp_path: Path, change: Any, says: str) -> None:
    path = report_file(tmp_path, change)
    error(detente("drill", "report", str(path)), "BadRequest: ", says)
    error(detente("drill", "compare", str(report_file(tmp_path, name="good.json")), str(path)), says)


def test_a_report_or_page_that_cannot_be_written_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    path = report_file(tmp_path)
    missing = tmp_path / "nonexist" / "x.html"
    for command in (["report", str(path)], ["compare", str(path), str(path)]):
        result = detente("drill", *command, "--html", str(missing))
        usage_error(result, "--html", f"cannot write {missing}: there is no directory {missing.parent}")
        usage_error(detente("drill", *command, "--html", str(tmp_path)), "--html", "is a directory")
    error(detente("drill", "report", str(tmp_path)), f"{tmp_path} is a directory, not a drill report")
    (tmp_path / "bad.json").write_bytes(b"\xff not json")
    error(detente("drill", "report", str(tmp_path / "bad.json")), "bad.json is not a drill report (JSON)")


def test_a_report_whose_stored_figures_were_edited_is_refused_not_recomputed_over(tmp_path: Path) -> None:
    written = drill_report.compute(json.loads(json.dumps(FACTS)))
    assert detente("drill", "report", str(report_file(tmp_path, lambda f: f.update(written)))).code == 0
    path = report_file(tmp_path, lambda f: f.update(written) or f["figures"]["summary"].__setitem__("messages", 9))
    error(
        detente("drill", "report", str(path)),
        "r.json was edited or is damaged: figures.summary.messages: the report says 9, its facts give 0",
    )


def test_a_report_summary_counts_assumed_and_uncertain_step_times_and_says_a_run_was_interrupted(
    tmp_path: Path,
) -> None:
    def mark(facts: dict[str, Any]) -> None:
        step = facts["steps"][0]
        facts["steps"] += [{**step, "n": 1, "line": 40, "assumed": "an hour, the scenario's choice"}]
        facts["steps"] += [{**step, "n": 2, "line": 44, "uncertain": "≈12:10–12:40 [S3]"}]
        facts["steps"] += [{**step, "n": 3, "line": 48, "assumed": "two hours", "uncertain": "that day"}]
        facts["interrupted"] = {
            "drill": "2024-01-16T12:30:00.000Z", "variant": None, "step": None, "next": None,
            "steps_played": 4, "steps_left": 7, "envelopes": "complete",
        }  # fmt: skip

    result = detente("drill", "report", str(report_file(tmp_path, mark)))
    assert result.code == 0, result
    said = " ".join(result.stdout.split())
    assert "2 step times are the scenario's assumptions (assumed) and 2 uncertain in the sources" in said
    assert "interrupted at 16 Jan 12:30Z drill time: a partial run, 4 steps played, 7 not" in said
    plain = detente("drill", "report", str(report_file(tmp_path, name="plain.json")))
    assert "assumed" not in plain.stdout and "interrupted" not in plain.stdout


def played(facts: dict[str, Any]) -> None:
    """FACTS with every step played: the one that failed with a 401 left out."""
    facts["steps"] = []


def test_compare_strict_refuses_reports_that_are_not_comparable_and_writes_nothing(tmp_path: Path) -> None:
    def other(facts: dict[str, Any]) -> None:
        played(facts)
        facts["scenario"].update(title="other", source="o.yaml")
        facts["run"].update(agreement="0123456789ab", wall_end="2026-01-01T00:00:24.000Z")
        facts["clock"]["samples"][1][0] = "2026-01-01T00:00:24.000Z"  # 2 h in 24 s: 300×

    a, b = report_file(tmp_path, played, "a.json"), report_file(tmp_path, other, "b.json")
    page = tmp_path / "c.html"
    warned = detente("drill", "compare", str(a), str(b), "--html", str(page))
    assert warned.code == 0, warned
    assert "warning: these reports are of different scenarios ('t' and 'other')" in warned.stdout and page.is_file()
    page.unlink()
    refused = detente("drill", "compare", str(a), str(b), "--strict", "--html", str(page))
    error(
        refused,
        f"error: NotComparable: {a} and {b} are not comparable, and --strict refuses them:\n",
        "different scenarios ('t' and 'other')",
        "the clocks ran at 600× and 300×",
        "the nodes ran under different agreements (c34c6ad7038f and 0123456789ab)",
    )
    assert "Comparison" not in refused.stdout and not page.exists()


def test_compare_strict_takes_two_runs_of_one_variant_but_not_a_run_the_drill_could_not_play(tmp_path: Path) -> None:
    a, again = report_file(tmp_path, played, "a.json"), report_file(tmp_path, played, "again.json")
    same = detente("drill", "compare", str(a), str(again), "--strict")
    assert same.code == 0, same
    assert "both reports are runs of the scenario: they differ only in what the run itself changed" in same.stdout
    assert "Comparison" in same.stdout
    harness = report_file(tmp_path, name="harness.json")  # one step failed: a token refused
    assert detente("drill", "compare", str(a), str(harness)).code == 0
    error(
        detente("drill", "compare", str(a), str(harness), "--strict"),
        "has 1 step the drill could not play (a token refused, a node out of reach)",
    )


def test_compare_refuses_an_edited_report_with_or_without_strict(tmp_path: Path) -> None:
    written = drill_report.compute(json.loads(json.dumps(FACTS)))
    good = report_file(tmp_path, lambda f: f.update(written), "good.json")
    edited = report_file(
        tmp_path, lambda f: f.update(written) or f["figures"]["summary"].__setitem__("messages", 9), "edited.json"
    )
    for strict in ([], ["--strict"]):
        result = detente("drill", "compare", str(good), str(edited), *strict, "--html", str(tmp_path / "c.html"))
        error(result, "edited.json was edited or is damaged: figures.summary.messages: the report says 9")
        assert not (tmp_path / "c.html").exists()
