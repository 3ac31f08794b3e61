"""`detente log export`: write a node's log as a C2SP tlog-tiles directory, for offline audit.

Layout of EXPORT (everything but the last three files is plain c2sp.org/tlog-tiles, so any
tlog-tiles client can read it from disk or from a static web server):

    checkpoint                  the newest checkpoint every peer cosigned, with its cosignatures
    tile/<L>/<N>[.p/<W>]        hash tiles of that tree (partial tiles as the spec says)
    tile/entries/<N>[.p/<W>]    entry bundles: the envelopes' canonical JSON bytes
    checkpoints.jsonl           every checkpoint the node signed, oldest first, one JSON object a
                                line: {"size": n, "note": "<note with its cosignatures>"}
    agreement.toml              the agreement in force on the node
    export.json                 what was exported: origin, party, size, root, the number of
                                checkpoints in the history, time

The export is read in one database transaction, so it is consistent even while the node runs.
It holds nothing the log's signatures do not cover except `agreement.toml` and `export.json`,
which the auditor checks against its own copy of the agreement and the checkpoint.

The export ends at the newest checkpoint that *every* peer has cosigned, not at the newest one
the node signed: entries that no peer has witnessed yet rest on this node's word alone, and
`detente audit` refuses them unless told otherwise (`core.audit_report`). The newest checkpoint is
usually cosigned within milliseconds of its signing, so what is left out is the last moment's
entries, which the next export holds; the export says how many. When no checkpoint is cosigned by
every peer (a peer never reachable), or with `include_unwitnessed`, it ends at the newest
checkpoint, and says which peers did not witness it.

`witnesses` narrows "every peer" to the peers named: while an uninvolved peer is down, the export
of a pk–ir incident need wait only for ir. The peers left out that did not cosign the exported
checkpoint are still named (`Exported.unwitnessed_by`), and its audit needs the same witnesses.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detente.core import tiles
from detente.core.audit_checkpoints import CHECKPOINT_FILE, HISTORY_FILE
from detente.core.audit_files import AGREEMENT_FILE, MANIFEST_FILE, MANIFEST_FORMAT
from detente.core.precedence import format_time, now
from detente.errors import Conflict, Invalid, NotFound
from detente.node import checkpoints
from detente.node.config import NodeConfig, load_config
from detente.node.database import node_database
from detente.store import messages as db
from detente.store import tlog

__all__ = ["AGREEMENT_FILE", "HISTORY_FILE", "MANIFEST_FILE", "Exported", "export_log"]


@dataclass(frozen=True)
class Exported:
    """What `export_log` wrote: the exported tree, and how it stands to the newest checkpoint signed."""

    origin: str
    size: int
    root: bytes
    tiles: int
    bundles: int
    checkpoints: int
    signed_size: int  # the newest checkpoint the node signed: entries size..signed_size-1 were left out
    unwitnessed_by: tuple[str, ...]  # the peers that did not cosign the exported checkpoint
    required: tuple[str, ...] = ()  # the peers whose cosignature the export waited for (empty: every peer)


def _write(out: Path, relative: str, data: bytes) -> None:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_log(data: Path, out: Path, *, include_unwitnessed: bool = False, witnesses: Sequence[str] = ()) -> Exported:
    """Export the log of the node whose data directory is `data` into the new directory `out`.

    The export ends at the newest checkpoint every peer cosigned (every peer of `witnesses`, if
    given), or, if there is none or with `include_unwitnessed`, at the newest checkpoint. Raises
    `NotFound` if `data` is no node directory or the node has signed no checkpoint yet, `Invalid`
    if a witness named is not a peer of this node (before anything is written), `Conflict` if
    `out` exists and is not empty, and `Invalid` if the node's agreement cannot be read or the
    export cannot be written (then nothing of it is left in `out`).
    """
    config = load_config(data)
    required = _required(config, witnesses)
    if out.is_file():
        raise Conflict(f"{out} is a file: name a new or empty directory for the export")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} exists and is not an empty directory")
    made = not out.exists()
    try:
        return _export(config, out, include_unwitnessed, required)
    except OSError as exc:
        # Nothing of a failed export is left to be mistaken for one: only a directory this call
        # made is removed (an empty one the caller gave is emptied again).
        if made:
            shutil.rmtree(out, ignore_errors=True)
        elif out.is_dir():
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise Invalid(f"cannot write the export to {out}: {exc.strerror or exc}") from None


def _required(config: NodeConfig, witnesses: Sequence[str]) -> tuple[str, ...]:
    """Return the peers of `witnesses`, sorted (empty: every peer). Raises `Invalid` for one that is not a peer."""
    peers = [p.id for p in config.agreement().peers(config.party)]
    for party in witnesses:
        if party == config.party:
            raise Invalid(
                f"--witness {party}: that is this node's own party; its peers witness its log: {', '.join(peers)}"
            )
        if party not in peers:
            raise Invalid(f"--witness {party!r}: not a peer of this node (its peers: {', '.join(peers)})")
    return tuple(sorted(set(witnesses)))


def _export(config: NodeConfig, out: Path, include_unwitnessed: bool, required: tuple[str, ...]) -> Exported:
    peers = [p.id for p in config.agreement().peers(config.party)]
    wanted = list(required) or peers
    # The node's own database, as `node.database` opens it: a missing SQLite file is refused rather
    # than made anew and empty, and a driver error is one plain line.
    with node_database(config) as engine:
        with engine.connect() as conn, conn.begin():
            newest = tlog.latest_checkpoint(conn)
            if newest is None:
                raise NotFound("this node has signed no checkpoint yet: start it once, then export")
            signed = int(newest["size"])
            row = newest
            witnessed = None if include_unwitnessed or not wanted else tlog.newest_size_cosigned_by_all(conn, wanted)
            if witnessed is not None:
                row = tlog.checkpoint_at(conn, witnessed) or newest
            size = int(row["size"])
            note = checkpoints.with_cosignatures(conn, bytes(row["note"]), size)
            cosigned = tlog.witnesses_at(conn, size)
            out.mkdir(parents=True, exist_ok=True)
            _write(out, CHECKPOINT_FILE, note)
            reader = tlog.TableHashReader(conn)
            hash_tiles = tiles.tiles_for_size(size)
            for level, n, width in hash_tiles:
                _write(out, tiles.tile_path(level, n, width), tiles.read_tile(level, n, width, reader))
                reader.cache.clear()  # each hash is read once: do not keep the whole tree in memory
            bundles = tiles.entry_bundles_for_size(size)
            for n, width in bundles:
                start = n * tiles.TILE_WIDTH
                _write(
                    out, tiles.entries_path(n, width), tiles.entry_bundle(db.read_leaves(conn, start, start + width))
                )
            history = [item for item in tlog.all_checkpoints(conn) if int(item["size"]) <= size]
            with (out / HISTORY_FILE).open("w", encoding="utf-8") as f:
                for item in history:
                    with_cosigs = checkpoints.with_cosignatures(conn, bytes(item["note"]), int(item["size"]))
                    f.write(json.dumps({"size": int(item["size"]), "note": with_cosigs.decode()}) + "\n")
            root = tlog.tree_root(conn, size)
    shutil.copyfile(config.agreement_path, out / AGREEMENT_FILE)
    origin = note.decode().split("\n", 1)[0]
    manifest = {
        "format": MANIFEST_FORMAT,
        "party": config.party,
        "origin": origin,
        "size": size,
        "root": base64.b64encode(root).decode(),
        "checkpoints": len(history),  # lets the audit notice a history that lost lines afterwards
        "exported_at": format_time(now()),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    unwitnessed_by = tuple(p for p in peers if p not in cosigned)
    return Exported(origin, size, root, len(hash_tiles), len(bundles), len(history), signed, unwitnessed_by, required)
