"""The offline audit on synthetic exports: a sound one passes; each kind of damage is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_support import HISTORY, SIZE, Log, edit_manifest, make_export, make_log, note, run
from cli_support import assert_error, assert_usage_error, detente
from detente.core import audit as audit_module
from detente.core import merkle, merkle_memory, tiles
from detente.core.audit import audit
from detente.core.audit_checkpoints import NOTHING_WITNESSED
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from detente.core.note import sign_note
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
    assert report.senders == {"pk": 200, "ir": 100} and report.types == {"hotline.text": 300}
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
    # The entry first, then the tiles it breaks, then one line for the roots that follow from it.
    assert problems[1:] == [
        "tile/0/000: hash 7 does not match the entries",
        "tile/1/000.p/1: hash 0 does not match the entries",
        "4 checkpoints from size 100 on do not match the entries: they follow from the entry problems above",
        "consistency proofs not checked: the hash tiles do not match the entries",
    ]
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
    report = run({**files, "checkpoint": forged}, log.doc)
    signed, pinned = stranger.verifier.key_id.hex(), log.signers["pk"].verifier.key_id.hex()
    assert report.problems == [
        f"checkpoint: not signed by pk's log key (pk.detente/log): signed by key {signed}, "
        f"the agreement pins key {pinned}"
    ]
    assert report.hints == [
        f"checkpoints signed by pk.detente/log key {signed}, which no agreement given pins: if the log spans an "
        "amendment that rotated this key, give the agreement in force before it with --earlier "
        "(and the agreement in force after it with --agreement)"
    ]
    # A note with no signature line of the log's name at all: no key to name, no hint.
    other = Signer.generate("pk.example/other")
    unsigned = sign_note(Checkpoint("pk.detente/log", SIZE, merkle.EMPTY_ROOT).text(), other).format()
    report = run({**files, "checkpoint": unsigned}, log.doc)
    assert report.problems == [
        "checkpoint: not signed by pk's log key (pk.detente/log): it carries no signature of pk.detente/log "
        f"(the agreement pins key {pinned})"
    ]
    assert report.hints == []


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


def test_root_mismatches_that_follow_from_a_bad_entry_come_after_it_in_one_line(log: Log) -> None:
    """QA6 #3: on a log with many checkpoints, two swapped entries are named before the roots they break."""
    sizes = tuple(range(0, SIZE + 1, 4))  # 76 checkpoints, more than MAX_PROBLEMS
    files = make_export(log, sizes=sizes)
    swapped = list(log.entries)
    swapped[7], swapped[8] = swapped[8], swapped[7]  # each envelope still verifies
    damaged = {**files, "tile/entries/000": tiles.entry_bundle(swapped[:256])}
    report = run(damaged, log.doc)
    assert report.problems == [
        "tile/0/000: hash 7 does not match the entries",
        "tile/1/000.p/1: hash 0 does not match the entries",
        f"{len(sizes) - 2} checkpoints from size 8 on do not match the entries: "
        "they follow from the entry problems above",
        "consistency proofs not checked: the hash tiles do not match the entries",
    ]
    assert report.more_problems == 0
    # A checkpoint of another tree below the first bad entry does not follow from it: named alone.
    other = merkle_memory.MemoryHashStore([b"x"] * 4).root()
    lines = damaged["checkpoints.jsonl"].decode().splitlines()
    lines[1] = json.dumps({"size": 4, "note": note(log, 4, other).decode()})
    problems = run({**damaged, "checkpoints.jsonl": ("\n".join(lines) + "\n").encode()}, log.doc).problems
    assert problems[2:4] == [
        "checkpoint of size 4: root does not match entries 0..3",
        f"{len(sizes) - 2} checkpoints from size 8 on do not match the entries: "
        "they follow from the entry problems above",
    ]
    # One checkpoint beyond the bad entry: said in the singular.
    one = {**make_export(log, sizes=(4, SIZE)), "tile/entries/000": tiles.entry_bundle(swapped[:256])}
    assert run(one, log.doc).problems[2] == (
        f"the checkpoint of size {SIZE} does not match the entries: it follows from the entry problems above"
    )


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda entries: entries[:-1], "holds 43 entries, the tree of size 300 needs 44"),
        (lambda entries: entries + entries[-1:], "holds 45 entries, the tree of size 300 needs 44"),
        (lambda entries: entries[:1], "holds 1 entry, the tree of size 300 needs 44"),
    ],
)
def test_an_entry_bundle_with_the_wrong_number_of_entries_says_how_many(log: Log, cut: object, message: str) -> None:
    """QA6 #4: a dropped (or added) entry is counted, not just "malformed"."""
    files = make_export(log)
    assert callable(cut)
    bundle = tiles.entry_bundle(cut(log.entries[256:]))
    assert run({**files, "tile/entries/001.p/44": bundle}, log.doc).problems == [f"tile/entries/001.p/44: {message}"]


def test_a_cut_short_or_empty_entry_bundle_says_which(log: Log) -> None:
    files = make_export(log)
    path = "tile/entries/001.p/44"
    bundle = files[path]

    def problems(data: bytes) -> list[str]:
        return run({**files, path: data}, log.doc).problems

    assert problems(bundle[:-10]) == [f"{path}: entry 299 is cut short (the bundle ends inside it)"]
    last = len(bundle) - 2 - len(log.entries[299])  # where entry 299's two-byte length starts
    assert problems(bundle[: last + 1]) == [f"{path}: entry 299 is cut short (the bundle ends inside its length)"]
    assert problems(b"") == [f"{path}: is empty"]
    # A tree of 33 from which an entry was dropped: the brief's own example.
    small = make_export(log, sizes=(33,))
    dropped = {**small, "tile/entries/000.p/33": tiles.entry_bundle(log.entries[:7] + log.entries[8:33])}
    assert run(dropped, log.doc).problems == ["tile/entries/000.p/33: holds 32 entries, the tree of size 33 needs 33"]


def _write(files: dict[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_the_cli_names_a_file_that_is_not_an_agreement_and_refuses_no_jobs(log: Log, tmp_path: Path) -> None:
    """QA6 #5."""
    export = _write(make_export(log), tmp_path / "export")
    (tmp_path / "agreement.toml").write_text(log.text)
    given = ("audit", str(export), "--agreement")
    not_toml = export / "checkpoint"
    assert_error(detente(*given, str(not_toml)), f"MalformedError: {not_toml}: agreement is not valid TOML: ")
    earlier = ("--earlier", str(not_toml))
    assert_error(detente(*given, str(tmp_path / "agreement.toml"), *earlier), f"{not_toml}: agreement is not valid")
    assert_usage_error(detente(*given, str(tmp_path / "agreement.toml"), "--jobs", "0"), "--jobs")
    assert detente(*given, str(tmp_path / "agreement.toml"), "--jobs", "1").code == 0


def test_the_cli_fails_a_log_no_one_witnessed_even_with_the_flag(log: Log, tmp_path: Path) -> None:
    """QA6 #1, as the auditor sees it: exit 1, the line saying why, no hint to use the flag."""
    export = _write(make_export(log, cosigned=()), tmp_path / "export")
    (tmp_path / "agreement.toml").write_text(log.text)
    given = ("audit", str(export), "--agreement", str(tmp_path / "agreement.toml"))
    allowed = detente(*given, "--allow-unwitnessed")
    assert allowed.code == 1 and f"FAIL {NOTHING_WITNESSED}\n" in allowed.stdout
    assert "\nFAILED: 1 problem(s) (" in allowed.stdout
    plain = detente(*given)
    assert plain.code == 1 and "--allow-unwitnessed accepts them" not in plain.stdout


# --- what is witnessed, in a damaged export ---------------------------------------------------------


def test_the_witnessed_line_claims_only_what_the_entries_bear_out(log: Log) -> None:
    """QA: the audit of a damaged export still said "witnessed ir up to size 300", as if the witnessing held.

    ir cosigned checkpoints of sizes 0, 1, 100, 256, 257 and 300; a cosignature vouches for these
    entries only up to the checkpoints whose root they give.
    """
    files = make_export(log)
    sound = run(files, log.doc)
    assert sound.established() == {"ir": SIZE} and sound.witnessed_line() == f"ir up to size {SIZE} (of {SIZE})"
    # A damaged tile leaves the entries (and so the roots) as they were: the witnessing holds.
    tile = bytearray(files["tile/0/000"])
    tile[0] ^= 1
    report = run({**files, "tile/0/000": bytes(tile)}, log.doc)
    assert not report.ok and report.witnessed_line() == f"ir up to size {SIZE} (of {SIZE})"

    why = f"it cosigned size {SIZE}, but the entries read do not give that checkpoint's root"
    cut = {**files, "tile/entries/001.p/44": files["tile/entries/001.p/44"][:-10]}
    report = run(cut, log.doc)
    assert report.witnessed == {"ir": SIZE}  # what ir signed, which the unwitnessed check reads
    assert report.established() == {"ir": 256}
    assert report.witnessed_line() == f"ir up to size 256 only ({why})"
    missing = {k: v for k, v in files.items() if k != "tile/entries/000"}
    assert run(missing, log.doc).witnessed_line() == f"ir: not established ({why})"
    # An entry changed: the checkpoints from size 100 on do not match, the one of size 1 does.
    changed = list(log.entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    report = run({**files, "tile/entries/000": tiles.entry_bundle(changed[:256])}, log.doc)
    assert report.witnessed_line() == f"ir up to size 1 only ({why})"
    # Nothing read: no checkpoint, so no witnessing at all to speak of.
    assert run({k: v for k, v in files.items() if k != "checkpoint"}, log.doc).witnessed_line() is None


def test_a_witness_whose_newest_cosignature_holds_is_named_as_witnessing(log: Log) -> None:
    """With two witnesses, each is named by what the entries bear out (here one checkpoint is ir's alone)."""
    report = audit_module.Report(size=300, witnessed={"ir": 300, "af": 100})
    report.cosigned = {"ir": {(300, b"r300")}, "af": {(100, b"r100")}}
    report.reproduced = {0: merkle.EMPTY_ROOT, 100: b"r100", 300: b"other"}
    assert report.established() == {"ir": 0, "af": 100}
    assert report.witnessed_line() == (
        "af up to size 100; ir: not established (it cosigned size 300, but the entries read do not give that "
        "checkpoint's root)"
    )
