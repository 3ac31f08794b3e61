"""Synthetic log exports for the audit's unit tests: pk's log of envelopes both ways, in memory.

An export is a dict {relative path: bytes}, so `files.get` is the audit's reader and `list(files)`
its file names. `make_export` writes what `detente log export` writes, with a choice of which
checkpoints ir cosigned.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from detente.core import agreement as agreement_mod
from detente.core import merkle, merkle_memory, tiles
from detente.core.agreement import Agreement
from detente.core.audit import Report, audit
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from detente.core.note import add_signatures, cosign
from record_support import agreement_text_and_keys, envelope

SIZE = 300

# Ways a checkpoint history can lose lines, each of which the audit must fail (QA2 #2).
HISTORY_CUTS: dict[str, Callable[[list[Any]], list[Any]]] = {
    "first line deleted": lambda lines: lines[1:],
    "a middle line deleted": lambda lines: lines[: len(lines) // 2] + lines[len(lines) // 2 + 1 :],
    "last line deleted": lambda lines: lines[:-1],
    "only the last line kept": lambda lines: lines[-1:],
    "emptied": lambda lines: [],
}
HISTORY = (0, 1, 100, 256, 257, SIZE)
Export = dict[str, bytes]


@dataclass(frozen=True)
class Log:
    """pk's log of `SIZE` envelopes (two of three sent by pk, one received from ir) and its agreement."""

    doc: Agreement
    text: str  # the agreement's TOML
    signers: dict[str, Signer]
    entries: list[bytes]


def make_log() -> Log:
    """Return a fresh `Log` (new keys each time)."""
    text, signers = agreement_text_and_keys()
    doc = agreement_mod.load(text)
    entries = []
    for i in range(SIZE):
        if i % 3:
            entries.append(envelope(doc, signers["pk"], i + 1, f"message {i}").raw)
        else:
            entries.append(
                envelope(doc, signers["ir"], i + 1, f"reply {i}", **{"from": "ir:dgmo", "to": "pk:dgmo"}).raw
            )
    return Log(doc, text, signers, entries)


def note(log: Log, size: int, root: bytes, cosigned: bool = True) -> bytes:
    """pk's checkpoint of (size, root), with ir's cosignature if `cosigned`."""
    signed = sign_checkpoint(Checkpoint("pk.detente/log", size, root), log.signers["pk"])
    if not cosigned:
        return signed.format()
    return add_signatures(signed, cosign(signed.text, log.signers["ir"], 1_800_000_000 + size)).format()


def history_file(items: list[tuple[int, bytes]]) -> bytes:
    """The `checkpoints.jsonl` of (size, note) items."""
    return "".join(json.dumps({"size": s, "note": n.decode()}) + "\n" for s, n in items).encode()


def make_export(
    log: Log,
    entries: list[bytes] | None = None,
    sizes: tuple[int, ...] = HISTORY,
    cosigned: Collection[int] | None = None,
    signed_by: Callable[[int], Log] | None = None,
) -> Export:
    """Write the export of `entries` (default: the log's) with checkpoints at `sizes`, the last the newest.

    `cosigned` lists the sizes ir cosigned (default: every one); `signed_by(size)` gives the log
    whose keys sign the checkpoint of that size (default: `log`'s, for every size).
    """
    entries = log.entries if entries is None else entries
    size = sizes[-1]
    store = merkle_memory.MemoryHashStore(entries[:size])
    files: Export = {}
    for level, n, width in tiles.tiles_for_size(size):
        files[tiles.tile_path(level, n, width)] = tiles.read_tile(level, n, width, store)
    for n, width in tiles.entry_bundles_for_size(size):
        files[tiles.entries_path(n, width)] = tiles.entry_bundle(entries[n * 256 : n * 256 + width])
    notes = [
        note(signed_by(s) if signed_by else log, s, merkle.tree_hash(s, store), cosigned is None or s in cosigned)
        for s in sizes
    ]
    files["checkpoint"] = notes[-1]
    files["checkpoints.jsonl"] = history_file(list(zip(sizes, notes, strict=True)))
    files["agreement.toml"] = log.text.encode()
    files["export.json"] = manifest(party="pk", size=size, root=store.root(), checkpoints=len(sizes))
    return files


def manifest(party: str, size: int, root: bytes, checkpoints: int, **changes: object) -> bytes:
    """An `export.json` as `detente log export` writes it, with `changes` applied."""
    doc: dict[str, object] = {
        "format": "c2sp.org/tlog-tiles + detente export v1",
        "party": party,
        "origin": f"{party}.detente/log",
        "size": size,
        "root": base64.b64encode(root).decode(),
        "checkpoints": checkpoints,
        "exported_at": "2026-11-28T01:20:00.000Z",
    }
    doc.update(changes)
    return (json.dumps(doc, indent=2) + "\n").encode()


def edit_manifest(files: Export, **changes: object) -> Export:
    """`files` with fields of `export.json` changed (a value of None removes the field)."""
    doc = json.loads(files["export.json"])
    doc.update(changes)
    doc = {k: v for k, v in doc.items() if v is not None}
    return {**files, "export.json": json.dumps(doc).encode()}


def lines_of(files: Export) -> list[bytes]:
    """The lines of `checkpoints.jsonl`, without their newlines."""
    return files["checkpoints.jsonl"].splitlines()


def with_lines(files: Export, lines: list[bytes], count: bool = True) -> Export:
    """`files` with these history lines; with `count`, `export.json` counts them (a careful forger)."""
    changed = {**files, "checkpoints.jsonl": b"".join(line + b"\n" for line in lines)}
    return edit_manifest(changed, checkpoints=len(lines)) if count else changed


def run(
    files: Export,
    doc: Agreement,
    party: str | None = None,
    allow_unwitnessed: bool = False,
    earlier: tuple[Agreement, ...] = (),
) -> Report:
    """Audit `files` as the CLI does: through their reader and with their names."""
    return audit(files.get, doc, names=list(files), party=party, allow_unwitnessed=allow_unwitnessed, earlier=earlier)
