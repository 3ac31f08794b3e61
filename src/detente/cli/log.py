"""`detente log export` and `detente audit`: the record, taken off the node and checked offline."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from detente.cli.app import DataOpt, app
from detente.core import agreement as agreement_mod
from detente.core.audit import Reader, Report, audit
from detente.node.export import AGREEMENT_FILE, export_log

# The main process hashes while workers check signatures: on two cores or fewer they only compete.
_DEFAULT_JOBS = 1 if (os.cpu_count() or 1) <= 2 else min(4, (os.cpu_count() or 1) - 1)

log_app = typer.Typer(help="This node's transparency log: export it for an auditor.", no_args_is_help=True)
app.add_typer(log_app, name="log")


@log_app.command("export")
def log_export(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="a new (or empty) directory to write the export into")],
) -> None:
    """Write the log as a C2SP tlog-tiles directory, with its checkpoints and the agreement."""
    result = export_log(data, out)
    print(f"exported {result.origin} to {out}")
    print(f"  size {result.size}  root {base64.b64encode(result.root).decode()}")
    print(f"  {result.bundles} entry bundles, {result.tiles} hash tiles, {result.checkpoints} checkpoints")


def _reader(root: Path) -> Reader:
    """Return a reader of the files under `root` (None for anything missing or outside it)."""
    base = root.resolve()

    def read(relative: str) -> bytes | None:
        path = (base / relative).resolve()
        if base not in path.parents or not path.is_file():
            return None
        return path.read_bytes()

    return read


def print_report(report: Report, seconds: float) -> None:
    """Print what the audit verified, then each problem."""
    root = base64.b64encode(report.root).decode() if report.root else "-"
    print(f"log          {report.origin or '-'} (party {report.party or '-'})")
    print(f"tree         size {report.size}  root {root}")
    senders = ", ".join(f"{p} {n}" for p, n in sorted(report.senders.items())) or "none"
    print(f"entries      {report.entries} envelopes checked (sent by: {senders})")
    print(f"tiles        {report.tiles} hash tiles match the entries")
    print(
        f"checkpoints  {report.checkpoints} signed checkpoints, {report.consistency_proofs} consistency proofs verified"
    )
    for name, count in sorted(report.cosignatures.items()):
        print(f"cosignatures {name}: {count} (newest on size {report.newest_cosigned[name]})")
    for warning in report.warnings:
        print(f"warning      {warning}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    if report.more_problems:
        print(f"FAIL … and {report.more_problems} more problems")
    verdict = "OK" if report.ok else f"FAILED: {len(report.problems) + report.more_problems} problem(s)"
    print(f"{verdict} ({seconds:.2f} s)")


@app.command("audit")
def audit_command(
    export: Annotated[
        Path, typer.Argument(help="the directory `detente log export` wrote", exists=True, file_okay=False)
    ],
    agreement: Annotated[
        Path, typer.Option("--agreement", help="your own copy of the agreement", exists=True, dir_okay=False)
    ],
    jobs: Annotated[
        int, typer.Option("--jobs", help="processes checking envelope signatures (used from 20,000 entries)")
    ] = _DEFAULT_JOBS,
) -> None:
    """Verify an exported log offline: every envelope, the tree, the tiles, checkpoints and cosignatures.

    Exits 0 if everything verifies, 1 with one line per problem otherwise.
    """
    started = time.perf_counter()
    doc = agreement_mod.load(agreement.read_text(encoding="utf-8"))
    print(f"agreement    {doc.id} {doc.hash}")
    report = audit(_reader(export), doc, jobs=max(1, jobs))
    exported = export / AGREEMENT_FILE
    if exported.is_file():
        try:
            if agreement_mod.load(exported.read_text(encoding="utf-8")).hash != doc.hash:
                report.warnings.append(f"{AGREEMENT_FILE} in the export is another agreement than --agreement")
        except Exception:  # a damaged copy is only a warning: the envelopes name the hash they signed
            report.warnings.append(f"{AGREEMENT_FILE} in the export cannot be read")
    print_report(report, time.perf_counter() - started)
    if not report.ok:
        sys.exit(1)
