"""`detente log export`: write a node's log as a C2SP tlog-tiles directory, for offline audit.

Layout of EXPORT (everything but the last three files is plain c2sp.org/tlog-tiles, so any
tlog-tiles client can read it from disk or from a static web server):

    checkpoint                  the newest checkpoint, with every cosignature the node holds for it
    tile/<L>/<N>[.p/<W>]        hash tiles of that tree (partial tiles as the spec says)
    tile/entries/<N>[.p/<W>]    entry bundles: the envelopes' canonical JSON bytes
    checkpoints.jsonl           every checkpoint the node signed, oldest first, one JSON object a
                                line: {"size": n, "note": "<note with its cosignatures>"}
    agreement.toml              the agreement in force on the node
    export.json                 what was exported: origin, party, size, root, time

The export is read in one database transaction, so it is consistent even while the node runs.
It reads nothing the log's signatures do not cover except `agreement.toml` and `export.json`,
which the auditor checks against its own copy of the agreement.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from detente.core import tiles
from detente.core.precedence import format_time, now
from detente.errors import Conflict, NotFound
from detente.node import checkpoints
from detente.node.config import load_config
from detente.store import messages as db
from detente.store import tlog
from detente.store.db import make_engine

HISTORY_FILE = "checkpoints.jsonl"
AGREEMENT_FILE = "agreement.toml"
MANIFEST_FILE = "export.json"


@dataclass(frozen=True)
class Exported:
    """What `export_log` wrote."""

    origin: str
    size: int
    root: bytes
    tiles: int
    bundles: int
    checkpoints: int


def _write(out: Path, relative: str, data: bytes) -> None:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_log(data: Path, out: Path) -> Exported:
    """Export the log of the node whose data directory is `data` into the new directory `out`.

    Raises `NotFound` if `data` is no node directory or the node has signed no checkpoint yet,
    and `Conflict` if `out` exists and is not empty.
    """
    config = load_config(data)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} exists and is not an empty directory")
    engine = make_engine(config.db)
    try:
        with engine.connect() as conn, conn.begin():
            latest = checkpoints.latest_cosigned_note(conn)
            if latest is None:
                raise NotFound("this node has signed no checkpoint yet: start it once, then export")
            size, note = latest
            out.mkdir(parents=True, exist_ok=True)
            _write(out, "checkpoint", note)
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
            history = [row for row in tlog.all_checkpoints(conn) if int(row["size"]) <= size]
            with (out / HISTORY_FILE).open("w", encoding="utf-8") as f:
                for row in history:
                    cosigned = checkpoints.with_cosignatures(conn, bytes(row["note"]), int(row["size"]))
                    f.write(json.dumps({"size": int(row["size"]), "note": cosigned.decode()}) + "\n")
            root = tlog.tree_root(conn, size)
    finally:
        engine.dispose()
    shutil.copyfile(config.agreement_path, out / AGREEMENT_FILE)
    origin = note.decode().split("\n", 1)[0]
    manifest = {
        "format": "c2sp.org/tlog-tiles + detente export v1",
        "party": config.party,
        "origin": origin,
        "size": size,
        "root": base64.b64encode(root).decode(),
        "exported_at": format_time(now()),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Exported(origin, size, root, len(hash_tiles), len(bundles), len(history))
