"""The offline audit on synthetic exports: a sound one passes; each kind of damage is named."""

from __future__ import annotations

import json

import pytest

from detente.core import audit as audit_module
from detente.core import merkle, merkle_memory, tiles
from detente.core.agreement import Agreement
from detente.core.audit import Report, audit
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from detente.core.note import add_signatures, cosign
from record_support import agreement_and_keys, envelope

SIZE = 300
HISTORY = (0, 1, 100, 256, 257, SIZE)
Export = dict[str, bytes]


def _note(doc: Agreement, signers: dict[str, Signer], size: int, root: bytes) -> bytes:
    note = sign_checkpoint(Checkpoint("pk.detente/log", size, root), signers["pk"])
    return add_signatures(note, cosign(note.text, signers["ir"], 1_800_000_000 + size)).format()


def _export(entries: list[bytes], doc: Agreement, signers: dict[str, Signer]) -> Export:
    store = merkle_memory.MemoryHashStore(entries)
    files: Export = {}
    for level, n, width in tiles.tiles_for_size(SIZE):
        files[tiles.tile_path(level, n, width)] = tiles.read_tile(level, n, width, store)
    for n, width in tiles.entry_bundles_for_size(SIZE):
        files[tiles.entries_path(n, width)] = tiles.entry_bundle(entries[n * 256 : n * 256 + width])
    notes = [_note(doc, signers, s, merkle.tree_hash(s, store)) for s in HISTORY]
    files["checkpoint"] = notes[-1]
    files["checkpoints.jsonl"] = "".join(
        json.dumps({"size": s, "note": n.decode()}) + "\n" for s, n in zip(HISTORY, notes, strict=True)
    ).encode()
    return files


@pytest.fixture(scope="module")
def sound() -> tuple[Export, Agreement, dict[str, Signer], list[bytes]]:
    doc, signers = agreement_and_keys()
    entries = []
    for i in range(SIZE):
        if i % 3:
            entries.append(envelope(doc, signers["pk"], i + 1, f"message {i}").raw)
        else:
            entries.append(
                envelope(doc, signers["ir"], i + 1, f"reply {i}", **{"from": "ir:dgmo", "to": "pk:dgmo"}).raw
            )
    return _export(entries, doc, signers), doc, signers, entries


def _audit(files: Export, doc: Agreement) -> Report:
    return audit(files.get, doc)


def test_a_sound_export_passes(sound: tuple[Export, Agreement, dict[str, Signer], list[bytes]]) -> None:
    files, doc, _, _ = sound
    report = _audit(files, doc)
    assert report.ok, report.problems
    assert (report.origin, report.party, report.size, report.entries) == ("pk.detente/log", "pk", SIZE, SIZE)
    assert report.senders == {"pk": 200, "ir": 100}
    assert report.tiles == len(tiles.tiles_for_size(SIZE)) == 3  # 000, 001.p/44, tile/1/000.p/1
    assert report.checkpoints == len(HISTORY) and report.consistency_proofs == len(HISTORY) - 1
    assert report.cosignatures == {"ir.detente/log": len(HISTORY)} and report.newest_cosigned["ir.detente/log"] == SIZE


def test_a_changed_entry_is_named(sound: tuple[Export, Agreement, dict[str, Signer], list[bytes]]) -> None:
    files, doc, signers, entries = sound
    changed = list(entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    damaged = {**files, "tile/entries/000": tiles.entry_bundle(changed[:256])}
    problems = _audit(damaged, doc).problems
    assert problems[0].startswith("entry 7 (envelope ") and "signature does not verify" in problems[0]
    assert any("checkpoint of size 100: root does not match entries 0..99" in p for p in problems)
    # The node re-signing its tree over the changed entry does not help: the envelope still fails.
    resigned = _export(changed, doc, signers)
    problems = _audit(resigned, doc).problems
    assert len(problems) == 1 and problems[0].startswith("entry 7 ")


def test_damaged_tiles_bundles_and_checkpoints_are_named(
    sound: tuple[Export, Agreement, dict[str, Signer], list[bytes]],
) -> None:
    files, doc, signers, entries = sound
    tile = bytearray(files["tile/0/000"])
    tile[3 * 32] ^= 1
    assert _audit({**files, "tile/0/000": bytes(tile)}, doc).problems[0] == (
        "tile/0/000: hash 3 does not match the entries"
    )
    missing = {k: v for k, v in files.items() if k != "tile/entries/001.p/44"}
    assert _audit(missing, doc).problems == ["tile/entries/001.p/44: missing"]

    bad_cosig = bytearray(files["checkpoint"])
    bad_cosig[-5] = ord("A") if bad_cosig[-5] != ord("A") else ord("B")
    assert "checkpoint: invalid note signature" in _audit({**files, "checkpoint": bytes(bad_cosig)}, doc).problems

    # A checkpoint of another tree in the history: its root and its consistency both fail.
    other = merkle_memory.MemoryHashStore([b"x"] * 100).root()
    lines = files["checkpoints.jsonl"].decode().splitlines()
    lines[2] = json.dumps({"size": 100, "note": _note(doc, signers, 100, other).decode()})
    problems = _audit({**files, "checkpoints.jsonl": ("\n".join(lines) + "\n").encode()}, doc).problems
    assert problems == ["checkpoint of size 100: root does not match entries 0..99"]

    # An envelope under another agreement.
    foreign = list(entries)
    foreign[5] = envelope(doc, signers["pk"], 6, agreement="0" * 64).raw
    problems = _audit(_export(foreign, doc, signers), doc).problems
    assert len(problems) == 1 and problems[0].startswith("entry 5 ") and "agreement hash" in problems[0]


def test_an_export_of_another_log_stops_the_audit(
    sound: tuple[Export, Agreement, dict[str, Signer], list[bytes]],
) -> None:
    files, doc, _, _ = sound
    stranger = Signer.generate("xx.detente/log")
    note = sign_checkpoint(Checkpoint("xx.detente/log", 1, merkle.EMPTY_ROOT), stranger).format()
    report = _audit({**files, "checkpoint": note}, doc)
    assert report.problems == ["checkpoint: origin 'xx.detente/log' is not the log of a party of this agreement"]
    assert _audit({}, doc).problems == ["checkpoint: missing"]


def test_worker_processes_give_the_same_report(
    sound: tuple[Export, Agreement, dict[str, Signer], list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    files, doc, _, entries = sound
    changed = list(entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    changed[299] = changed[299].replace(b"message 299", b"message 300")
    damaged = {
        **files,
        "tile/entries/000": tiles.entry_bundle(changed[:256]),
        "tile/entries/001.p/44": tiles.entry_bundle(changed[256:]),
    }
    serial = _audit(damaged, doc)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN", 0)
    parallel = audit(damaged.get, doc, jobs=2)
    assert parallel.problems == serial.problems
    assert [p.split(" (")[0] for p in serial.problems if p.startswith("entry ")] == ["entry 7", "entry 299"]
    assert parallel.senders == serial.senders and parallel.tiles == serial.tiles
