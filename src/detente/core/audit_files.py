"""The audit of an export's unsigned files, and of the files that are not part of it.

Besides the signed tlog-tiles files, `detente log export` writes two informative files:

    export.json      {"format", "party", "origin", "size", "root", "checkpoints", "exported_at"}
    agreement.toml   the agreement in force on the node

Nothing signs them, so they prove nothing against the node that wrote them; they must still agree
with what the signatures say, or the export was edited or damaged after it was written:

- `export.json`'s party, origin, size and root must be those of `checkpoint`, and its
  `checkpoints` (written by exports from this version on) the number of lines of
  `checkpoints.jsonl`, which catches a history that lost lines in transit or by accident;
  a disagreement or a malformed file is a problem, a missing file a warning;
- `agreement.toml` should be the auditor's agreement (the envelopes name the hash they were signed
  under, so another or an unreadable copy is only a warning).

Given the names of the files in the export, every file the audit would not read (a stray file, a
tile or an entry bundle of another tree size) is named in a warning: the audit vouches only for
what it read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from detente.core import agreement as agreement_mod
from detente.core import tiles
from detente.core.audit_checkpoints import CHECKPOINT_FILE, HISTORY_FILE
from detente.core.audit_report import Report
from detente.errors import Error

MANIFEST_FILE = "export.json"
AGREEMENT_FILE = "agreement.toml"
MANIFEST_FORMAT = "c2sp.org/tlog-tiles + detente export v1"
MAX_NAMED = 10  # stray files named in the warning; the rest are counted
_SHOWN = 60  # characters of a value quoted from export.json


def history_lines(history: bytes) -> int:
    """Return the number of lines of `checkpoints.jsonl` (its final newline may be left out)."""
    return history.count(b"\n") + (0 if not history or history.endswith(b"\n") else 1)


def check_manifest(report: Report, data: bytes | None, history: bytes | None) -> None:
    """Record a problem for each field of `export.json` that disagrees with the verified checkpoint."""
    if data is None:
        report.warnings.append(f"{MANIFEST_FILE}: missing (it only describes the export)")
        return
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # ValueError covers bad UTF-8
        manifest = None
    if not isinstance(manifest, dict):
        report.fail(f"{MANIFEST_FILE}: not a JSON object")
        return
    signed: dict[str, Any] = {
        "party": report.party,
        "origin": report.origin,
        "size": report.size,
        "root": base64.b64encode(report.root).decode("ascii"),
    }
    for key, value in signed.items():
        if key not in manifest:
            report.fail(f"{MANIFEST_FILE}: has no {key!r}")
        elif type(manifest[key]) is not type(value) or manifest[key] != value:
            report.fail(f"{MANIFEST_FILE}: says {key} {_quote(manifest[key])}, the checkpoint says {value!r}")
    count = manifest.get("checkpoints")
    if count is not None and history is not None:
        lines = history_lines(history)
        if type(count) is not int or count != lines:
            report.fail(
                f"{MANIFEST_FILE}: says {_quote(count)} checkpoints, {HISTORY_FILE} has {lines} lines: "
                "the history lost or gained lines after the export was written"
            )


def _quote(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN else shown[:_SHOWN] + "…"


def check_agreement_copy(report: Report, data: bytes | None, agreement: agreement_mod.Agreement) -> None:
    """Warn if the export's `agreement.toml` is missing, unreadable or not `agreement`."""
    if data is None:
        report.warnings.append(f"{AGREEMENT_FILE}: missing (the auditor's own copy is the one used)")
        return
    try:
        copy = agreement_mod.load(data.decode("utf-8"), strict=False)
    # Broad on purpose: the loader is written for agreements people write, and raises TypeError on
    # some shapes (`languages = 5`); an informative copy must only ever cost a warning.
    except Exception:
        report.warnings.append(f"{AGREEMENT_FILE} in the export cannot be read (the auditor's own copy is used)")
        return
    if copy.hash != agreement.hash:
        report.warnings.append(f"{AGREEMENT_FILE} in the export is another agreement than the auditor's")


def expected_files(size: int) -> set[str]:
    """Return the path of every file an export of a tree of `size` holds."""
    names = {CHECKPOINT_FILE, HISTORY_FILE, MANIFEST_FILE, AGREEMENT_FILE}
    names.update(tiles.tile_path(level, n, width) for level, n, width in tiles.tiles_for_size(size))
    names.update(tiles.entries_path(n, width) for n, width in tiles.entry_bundles_for_size(size))
    return names


def check_names(report: Report, names: Iterable[str]) -> None:
    """Warn, naming them, about the files in `names` that an export of `report.size` does not hold."""
    expected = expected_files(report.size)
    stray = sorted(name for name in names if name not in expected)
    if not stray:
        return
    shown = [_describe(name, report.size) for name in stray[:MAX_NAMED]]
    more = f" and {len(stray) - MAX_NAMED} more" if len(stray) > MAX_NAMED else ""
    report.warnings.append(f"not part of the export, so not audited: {', '.join(shown)}{more}")


def _describe(name: str, size: int) -> str:
    shown = name if name.isprintable() else repr(name)
    try:
        tiles.parse_tile_path(name)
    except Error:
        return shown
    return f"{shown} (not a tile of the tree of size {size})"
