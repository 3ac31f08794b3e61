"""The audit's checkpoints: who witnessed what, a rewritten tail, a history cut short, malformed lines."""

from __future__ import annotations

import json

import pytest

from audit_support import HISTORY_CUTS, SIZE, Log, history_file, lines_of, make_export, make_log, note, run, with_lines
from detente.core import merkle_memory, tiles
from detente.core.audit_checkpoints import HISTORY_PROBLEMS, NOTHING_WITNESSED, parse_history_line
from detente.core.audit_report import MAX_PROBLEMS, Report


@pytest.fixture(scope="module")
def log() -> Log:
    return make_log()


# --- witnessing -----------------------------------------------------------------------------------


def test_a_rewritten_tail_rests_on_the_owners_word_alone(log: Log) -> None:
    """QA2 #1: pk drops entry 7 (received from ir), re-signs from there, keeps what ir cosigned before."""
    forged = log.entries[:7] + log.entries[8:]
    files = make_export(log, forged, sizes=(0, 1, 7, 100, 256, SIZE - 1), cosigned={0, 1, 7})
    report = run(files, log.doc)
    line = (
        "entries 7..298 rest on pk's signature alone: ir cosigned no checkpoint beyond size 7 (the tree has size 299)"
    )
    assert report.problems == [line]
    assert report.witnessed == {"ir": 7} and report.verdict() == "FAILED: 1 problem(s)"
    # Everything else verifies: the forgery is caught by the witnessing rule alone.
    assert report.entries == SIZE - 1 and report.consistency_proofs == 5

    # The auditor may accept the tail; the verdict and a warning still name it.
    allowed = run(files, log.doc, allow_unwitnessed=True)
    assert allowed.ok and allowed.problems == [] and allowed.warnings == [f"UNWITNESSED {line}"]
    assert allowed.verdict() == (
        "OK up to size 7 only: entries 7..298 are not witnessed by every party (accepted by --allow-unwitnessed)"
    )


def test_a_log_no_one_cosigned_is_unwitnessed_from_its_first_entry(log: Log) -> None:
    files = make_export(log, cosigned=())
    report = run(files, log.doc)
    assert report.problems == [
        "entries 0..299 rest on pk's signature alone: ir cosigned no checkpoint in the export (the tree has size 300)"
    ]
    assert report.cosignatures == {} and report.witnessed == {"ir": 0}


def test_allow_unwitnessed_does_not_accept_a_log_no_one_witnessed(log: Log) -> None:
    """QA6 #1: pk drops an entry, re-signs every checkpoint and strips ir's cosignatures."""
    forged = log.entries[:7] + log.entries[8:]
    files = make_export(log, forged, sizes=(0, 1, 7, 100, 256, SIZE - 1), cosigned=())
    report = run(files, log.doc, allow_unwitnessed=True)
    assert report.problems == [NOTHING_WITNESSED] and report.verdict() == "FAILED: 1 problem(s)"
    assert NOTHING_WITNESSED == (
        "no checkpoint of this log is cosigned by every party: nothing in it is proven to them "
        "(--allow-unwitnessed accepts an unwitnessed tail, not a log no one witnessed)"
    )
    assert report.warnings == [
        "UNWITNESSED entries 0..298 rest on pk's signature alone: ir cosigned no checkpoint in the export "
        "(the tree has size 299)"
    ]
    # Only the empty tree cosigned witnesses nothing either.
    files = make_export(log, forged, sizes=(0, 1, 7, 100, 256, SIZE - 1), cosigned={0})
    assert run(files, log.doc, allow_unwitnessed=True).problems == [NOTHING_WITNESSED]
    # An empty log has nothing to witness; a witnessed prefix still lets the flag accept the tail.
    assert run(make_export(log, sizes=(0,), cosigned=()), log.doc, allow_unwitnessed=True).ok
    assert (
        run(make_export(log, cosigned={1}), log.doc, allow_unwitnessed=True)
        .verdict()
        .startswith("OK up to size 1 only: entries 1..299")
    )


def test_the_newest_checkpoints_own_cosignature_counts(log: Log) -> None:
    """QA2 #2: with every history line stripped of its cosignature, `checkpoint` still carries ir's."""
    files = make_export(log, cosigned={SIZE})
    lines = lines_of(files)
    lines[-1] = json.dumps({"size": SIZE, "note": note(log, SIZE, _root(log, SIZE), cosigned=False).decode()}).encode()
    report = run(with_lines(files, lines), log.doc)
    assert report.ok and report.warnings == []
    assert report.witnessed == {"ir": SIZE} and report.cosignatures == {"ir.detente/log": 1}


def test_a_single_unwitnessed_entry_is_named_alone(log: Log) -> None:
    files = make_export(log, sizes=(100, 299, SIZE), cosigned={100, 299})
    assert run(files, log.doc).problems == [
        "entry 299 rests on pk's signature alone: ir cosigned no checkpoint beyond size 299 (the tree has size 300)"
    ]


def test_with_more_parties_each_lagging_witness_is_named() -> None:
    report = Report(party="pk", size=15, witnessed={"ir": 5, "af": 10, "cn": 15})
    assert report.unwitnessed() == [
        "entries 10..14 are not witnessed by af: its newest cosignature is on size 10",
        "entries 5..14 are not witnessed by ir: its newest cosignature is on size 5",
    ]
    assert report.witnessed_size == 5
    report = Report(party="pk", size=15, witnessed={"ir": 0, "af": 10})
    assert report.unwitnessed() == [
        "entries 10..14 rest on pk's signature alone: af and ir cosigned no checkpoint beyond size 10 "
        "(the tree has size 15)",
        "entries 0..14 are not witnessed by ir: it cosigned no checkpoint",
    ]
    assert Report(party="pk", size=0, witnessed={"ir": 0}).unwitnessed() == []


# --- the history ----------------------------------------------------------------------------------


def _root(log: Log, size: int) -> bytes:
    return merkle_memory.MemoryHashStore(log.entries[:size]).root()


CUTS = HISTORY_CUTS


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_history_that_lost_lines_fails(log: Log, cut: str) -> None:
    """QA2 #2: `export.json` counts the lines; the history must end with `checkpoint`; it cannot be empty."""
    files = make_export(log)
    lines = CUTS[cut](lines_of(files))
    problems = run(with_lines(files, lines, count=False), log.doc).problems
    if lines:
        assert f"export.json: says 6 checkpoints, checkpoints.jsonl has {len(lines)} lines" in problems[-1]
    else:
        assert problems[0] == "checkpoints.jsonl: empty: it must hold at least the newest checkpoint"


def test_a_forger_who_also_edits_export_json(log: Log) -> None:
    """Lines deleted before the last leave a history that verifies; the newest must still be its end."""
    files = make_export(log)
    lines = lines_of(files)
    assert run(with_lines(files, lines[1:]), log.doc).ok  # a first checkpoint lost: nothing it binds is lost
    assert run(with_lines(files, lines[:2] + lines[3:]), log.doc).ok
    assert run(with_lines(files, lines[:-1]), log.doc).problems == [
        "checkpoints.jsonl: its last checkpoint (size 257) is not the newest checkpoint of the export (size 300): "
        "the history was cut short or the newest checkpoint replaced"
    ]
    assert run(with_lines(files, []), log.doc).problems == [
        "checkpoints.jsonl: empty: it must hold at least the newest checkpoint"
    ]
    missing = {k: v for k, v in files.items() if k != "checkpoints.jsonl"}
    assert run(missing, log.doc).problems == ["checkpoints.jsonl: missing"]


def test_history_order_sizes_and_roots(log: Log) -> None:
    files = make_export(log)
    lines = lines_of(files)
    swapped = with_lines(files, [lines[0], lines[2], lines[1], *lines[3:]])
    assert run(swapped, log.doc).problems == [
        "checkpoints.jsonl line 3: size 1 is not larger than the size before it (100)"
    ]
    duplicated = with_lines(files, [*lines[:3], lines[2], *lines[3:]])
    assert run(duplicated, log.doc).problems == [
        "checkpoints.jsonl line 4: size 100 is not larger than the size before it (100)"
    ]
    item = json.loads(lines[2])
    item["size"] = 99
    relabelled = with_lines(files, [*lines[:2], json.dumps(item).encode(), *lines[3:]])
    assert run(relabelled, log.doc).problems == ["checkpoints.jsonl line 3: says size 99, its checkpoint has size 100"]
    # The newest checkpoint with another root than the history's last line: two roots for one size.
    other = merkle_memory.MemoryHashStore([b"x"] * SIZE).root()
    replaced = {**files, "checkpoint": note(log, SIZE, other)}
    assert "checkpoint: two different roots signed for size 300" in run(replaced, log.doc).problems
    # A history line beyond the newest checkpoint.
    beyond = history_file([(SIZE + 1, note(log, SIZE + 1, other))])
    problems = run({**files, "checkpoints.jsonl": files["checkpoints.jsonl"] + beyond}, log.doc).problems
    assert "checkpoints.jsonl line 7: size 301 is beyond the newest checkpoint's (300)" in problems


MALFORMED = {
    b'{"size": 1e400, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": 100.0, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": true, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": "100", "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": -1, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": 9223372036854775808, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": NaN, "note": "x"}': '"size" is not a JSON integer from 0 to 2^63-1',
    b'{"size": 1' + b"0" * 5000 + b', "note": "x"}': "not JSON",
    b'{"size": 100, "note": 5}': '"note" is not a string',
    b'{"size": 100, "note": "\\ud800"}': '"note" is not valid Unicode',
    b'{"size": 100}': 'not an object with exactly the keys "size" and "note"',
    b'{"size": 100, "note": "x", "more": 1}': 'not an object with exactly the keys "size" and "note"',
    b'{"size": 100, "size": 101, "note": "x"}': "not JSON",
    b"[100, 1]": 'not an object with exactly the keys "size" and "note"',
    b"": "not JSON",
    b"{": "not JSON",
    b"[" * 100_000: "not JSON",
    b'{"size": 100, "note": "\xff"}': "not UTF-8",
    b'\xff\xfe{\x00"\x00': "not UTF-8",
}


@pytest.mark.parametrize("line", list(MALFORMED), ids=range(len(MALFORMED)))
def test_a_malformed_history_line_is_named(log: Log, line: bytes) -> None:
    """QA2 #8: one bad line is one problem naming it; the rest of the audit goes on."""
    assert parse_history_line(line) == MALFORMED[line]
    files = make_export(log)
    lines = lines_of(files)
    report = run(with_lines(files, [*lines[:3], line, *lines[3:]]), log.doc)
    assert report.problems == [f"checkpoints.jsonl line 4: malformed: {MALFORMED[line]}"]
    assert report.entries == SIZE and report.checkpoints == 6


def test_a_history_line_that_parses(log: Log) -> None:
    assert parse_history_line(b'{"note": "n", "size": 0}') == (0, b"n")
    assert parse_history_line(b'{"size": 9223372036854775807, "note": "\\u2014"}') == (2**63 - 1, "\u2014".encode())
    # A history without its final newline, or ending in a blank line.
    files = make_export(log)
    assert run({**files, "checkpoints.jsonl": files["checkpoints.jsonl"].rstrip(b"\n")}, log.doc).ok
    problems = run({**files, "checkpoints.jsonl": files["checkpoints.jsonl"] + b"\n"}, log.doc).problems
    assert problems[0] == "checkpoints.jsonl line 7: malformed: not JSON"


def test_a_history_bad_on_every_line_does_not_hide_the_entries_problems(log: Log) -> None:
    """Auditor QA: 60 bad history lines had filled the 50 listed problems before the changed entry's."""
    files = make_export(log)
    lines = lines_of(files)
    changed = list(log.entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    junk = [b"{"] * 60
    damaged = {**with_lines(files, [*junk, *lines]), "tile/entries/000": tiles.entry_bundle(changed[:256])}
    report = run(damaged, log.doc)
    history = [p for p in report.problems if p.startswith("checkpoints.jsonl")]
    assert history == [
        *(f"checkpoints.jsonl line {n}: malformed: not JSON" for n in range(1, HISTORY_PROBLEMS + 1)),
        f"checkpoints.jsonl: {60 - HISTORY_PROBLEMS} more problems on later lines, not listed",
    ]
    assert any(p.startswith("entry 7 (envelope ") for p in report.problems)
    assert len(report.problems) < MAX_PROBLEMS and report.more_problems == 0
    # Just at the cap, every line is listed: nothing is folded into a line that would stand for one.
    report = run(with_lines(files, [*junk[: HISTORY_PROBLEMS + 1], *lines]), log.doc)
    assert [p for p in report.problems if p.startswith("checkpoints.jsonl")] == [
        f"checkpoints.jsonl line {n}: malformed: not JSON" for n in range(1, HISTORY_PROBLEMS + 2)
    ]
