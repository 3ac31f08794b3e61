"""The offline audit on synthetic exports: a sound one passes; each kind of damage is named."""

from __future__ import annotations

import json

import pytest

from audit_support import HISTORY, SIZE, Log, edit_manifest, make_export, make_log, note, run
from detente.core import audit as audit_module
from detente.core import merkle, merkle_memory, tiles
from detente.core.audit import audit
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from record_support import envelope


@pytest.fixture(scope="module")
def log() -> Log:
    return make_log()


def test_a_sound_export_passes(log: Log) -> None:
    files = make_export(log)
    report = run(files, log.doc)
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.verdict() == "OK"
    assert (report.origin, report.party, report.size, report.entries) == ("pk.detente/log", "pk", SIZE, SIZE)
    assert report.senders == {"pk": 200, "ir": 100}
    assert report.tiles == len(tiles.tiles_for_size(SIZE)) == 3  # 000, 001.p/44, tile/1/000.p/1
    assert report.checkpoints == len(HISTORY) and report.consistency_proofs == len(HISTORY) - 1
    assert report.cosignatures == {"ir.detente/log": len(HISTORY)} and report.newest_cosigned["ir.detente/log"] == SIZE
    assert report.witnessed == {"ir": SIZE} and report.witnessed_size == SIZE
    # Without file names (a reader that cannot list) and without the informative files, it passes too.
    bare = {k: v for k, v in files.items() if k not in ("export.json", "agreement.toml")}
    report = audit(bare.get, log.doc)
    assert report.ok and report.warnings == [
        "export.json: missing (it only describes the export)",
        "agreement.toml: missing (the auditor's own copy is the one used)",
    ]


def test_a_changed_entry_is_named(log: Log) -> None:
    files = make_export(log)
    changed = list(log.entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    damaged = {**files, "tile/entries/000": tiles.entry_bundle(changed[:256])}
    problems = run(damaged, log.doc).problems
    assert problems[0].startswith("entry 7 (envelope ") and "signature does not verify" in problems[0]
    assert any("checkpoint of size 100: root does not match entries 0..99" in p for p in problems)
    # Re-signing the tree over the changed entry (here even with ir's key) does not help: the envelope fails.
    resigned = make_export(log, changed)
    problems = run(resigned, log.doc).problems
    assert len(problems) == 1 and problems[0].startswith("entry 7 ")


def test_damaged_tiles_bundles_and_checkpoints_are_named(log: Log) -> None:
    files = make_export(log)
    tile = bytearray(files["tile/0/000"])
    tile[3 * 32] ^= 1
    assert run({**files, "tile/0/000": bytes(tile)}, log.doc).problems[0] == (
        "tile/0/000: hash 3 does not match the entries"
    )
    missing = {k: v for k, v in files.items() if k != "tile/entries/001.p/44"}
    assert run(missing, log.doc).problems == ["tile/entries/001.p/44: missing"]

    # A checkpoint of another tree in the history: its root and its consistency both fail.
    other = merkle_memory.MemoryHashStore([b"x"] * 100).root()
    lines = files["checkpoints.jsonl"].decode().splitlines()
    lines[2] = json.dumps({"size": 100, "note": note(log, 100, other).decode()})
    problems = run({**files, "checkpoints.jsonl": ("\n".join(lines) + "\n").encode()}, log.doc).problems
    assert problems == ["checkpoint of size 100: root does not match entries 0..99"]

    # An envelope under another agreement.
    foreign = list(log.entries)
    foreign[5] = envelope(log.doc, log.signers["pk"], 6, agreement="0" * 64).raw
    problems = run(make_export(log, foreign), log.doc).problems
    assert len(problems) == 1 and problems[0].startswith("entry 5 ") and "agreement hash" in problems[0]


def _flip_signature(data: bytes, name: str) -> bytes:
    """`data` with one base64 character of `name`'s signature line changed."""
    start = data.index(f"\u2014 {name} ".encode()) + len(f"\u2014 {name} ".encode()) + 30
    changed = bytearray(data)
    changed[start] = ord("A") if changed[start] != ord("A") else ord("B")
    return bytes(changed)


def test_a_bad_signature_names_its_signer(log: Log) -> None:
    files = make_export(log)
    # ir's cosignature on `checkpoint` fails: named, and the audit goes on (the log signature holds).
    report = run({**files, "checkpoint": _flip_signature(files["checkpoint"], "ir.detente/log")}, log.doc)
    assert report.problems == ["checkpoint: the cosignature of ir (ir.detente/log) does not verify"]
    assert report.entries == SIZE and report.witnessed == {"ir": SIZE}  # the history's copy is cosigned
    # pk's own signature fails: named, and nothing can be checked without the newest tree.
    report = run({**files, "checkpoint": _flip_signature(files["checkpoint"], "pk.detente/log")}, log.doc)
    assert report.problems == ["checkpoint: the signature of pk's log key (pk.detente/log) does not verify"]
    assert report.entries == 0
    # In the history, each names its line.
    lines = files["checkpoints.jsonl"].splitlines()
    item = json.loads(lines[2])
    item["note"] = _flip_signature(item["note"].encode(), "ir.detente/log").decode()
    lines[2] = json.dumps(item).encode()
    report = run({**files, "checkpoints.jsonl": b"\n".join(lines) + b"\n"}, log.doc)
    assert report.problems == [
        "checkpoints.jsonl line 3 (checkpoint of size 100): the cosignature of ir (ir.detente/log) does not verify"
    ]
    # A checkpoint without the log's signature, or signed by another key of the same name.
    stranger = Signer.generate("pk.detente/log")
    forged = sign_checkpoint(Checkpoint("pk.detente/log", SIZE, merkle.EMPTY_ROOT), stranger).format()
    assert run({**files, "checkpoint": forged}, log.doc).problems == [
        "checkpoint: not signed by pk's log key (pk.detente/log)"
    ]


def test_an_export_of_another_log_stops_the_audit(log: Log) -> None:
    files = make_export(log)
    stranger = Signer.generate("xx.detente/log")
    cp = sign_checkpoint(Checkpoint("xx.detente/log", 1, merkle.EMPTY_ROOT), stranger).format()
    report = run({**files, "checkpoint": cp}, log.doc)
    assert report.problems == ["checkpoint: origin 'xx.detente/log' is not the log of a party of this agreement"]
    assert run({}, log.doc).problems == ["checkpoint: missing"]


def test_the_auditor_can_name_the_party_whose_log_it_expects(log: Log) -> None:
    files = make_export(log)
    assert run(files, log.doc, party="pk").ok
    report = run(files, log.doc, party="ir")
    assert report.problems == ["checkpoint: this is the log of pk (pk.detente/log), not of ir"]
    assert report.entries == 0 and report.verdict() == "FAILED: 1 problem(s)"


def test_export_json_must_agree_with_the_checkpoint(log: Log) -> None:
    files = make_export(log)
    cases = {
        "party": ("ir", "export.json: says party 'ir', the checkpoint says 'pk'"),
        "origin": ("ir.detente/log", "export.json: says origin 'ir.detente/log', the checkpoint says 'pk.detente/log'"),
        "size": (999, f"export.json: says size 999, the checkpoint says {SIZE}"),
        "root": ("AAAA", "export.json: says root 'AAAA', the checkpoint says "),
    }
    for field, (value, message) in cases.items():
        assert [p[: len(message)] for p in run(edit_manifest(files, **{field: value}), log.doc).problems] == [message]
    # A size that is a string or a float is no size; a missing field disagrees too.
    assert run(edit_manifest(files, size=str(SIZE)), log.doc).problems == [
        f"export.json: says size '{SIZE}', the checkpoint says {SIZE}"
    ]
    assert run(edit_manifest(files, size=float(SIZE)), log.doc).problems != []
    assert run(edit_manifest(files, party=None), log.doc).problems == ["export.json: has no 'party'"]
    for damaged in (b"", b"[1]", b"\xff", b"{" * 100_000):
        assert run({**files, "export.json": damaged}, log.doc).problems == ["export.json: not a JSON object"]
    # An export from before `checkpoints` was counted still passes.
    assert run(edit_manifest(files, checkpoints=None), log.doc).ok


def test_files_the_audit_does_not_read_are_named(log: Log) -> None:
    files = make_export(log)
    extra = {
        **files,
        "tile/entries/002": b"x",  # a bundle beyond the tree
        "tile/0/001": b"y",  # the full tile of a larger tree
        "notes.txt": b"z",
    }
    report = run(extra, log.doc)
    assert report.ok and report.warnings == [
        "not part of the export, so not audited: notes.txt, tile/0/001 (not a tile of the tree of size 300), "
        "tile/entries/002 (not a tile of the tree of size 300)"
    ]
    many = {**files, **{f"stray/{i:02}": b"" for i in range(12)}}
    assert run(many, log.doc).warnings == [
        "not part of the export, so not audited: " + ", ".join(f"stray/{i:02}" for i in range(10)) + " and 2 more"
    ]


def test_an_agreement_copy_that_differs_is_a_warning(log: Log) -> None:
    files = make_export(log)
    other = log.text.replace("hotline and border", "hotline and sea border", 1).encode()
    assert run({**files, "agreement.toml": other}, log.doc).warnings == [
        "agreement.toml in the export is another agreement than the auditor's"
    ]
    shaped = log.text.replace('languages = ["en", "ur", "fa"]', "languages = 5", 1).encode()  # a TypeError inside
    for damaged in (b"\xff\xfe", b"not = [toml", shaped):
        assert run({**files, "agreement.toml": damaged}, log.doc).warnings == [
            "agreement.toml in the export cannot be read (the auditor's own copy is used)"
        ]


def test_worker_processes_give_the_same_report(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_export(log)
    changed = list(log.entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    changed[299] = changed[299].replace(b"message 299", b"message 300")
    damaged = {
        **files,
        "tile/entries/000": tiles.entry_bundle(changed[:256]),
        "tile/entries/001.p/44": tiles.entry_bundle(changed[256:]),
    }
    serial = run(damaged, log.doc)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN", 0)
    parallel = audit(damaged.get, log.doc, jobs=2, names=list(damaged))
    assert parallel.problems == serial.problems
    assert [p.split(" (")[0] for p in serial.problems if p.startswith("entry ")] == ["entry 7", "entry 299"]
    assert parallel.senders == serial.senders and parallel.tiles == serial.tiles
