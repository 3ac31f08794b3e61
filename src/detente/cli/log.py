"""`detente log export` and `detente audit`: the record, taken off the node and checked offline.

log export        the log as a C2SP tlog-tiles directory, for `detente audit`
audit EXPORT      every entry, tile, checkpoint and cosignature of an export checked against the agreement

`log entries` (an export's envelopes, listed) is in `cli.log_entries`; `log show`, `log proof` and
`log verify-proof` are in `cli.log_proofs`.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from detente.cli.app import DataOpt, app
from detente.cli.terminal import printable
from detente.core import agreement as agreement_mod
from detente.core.audit import Reader, Report, audit
from detente.core.audit_report import entry_range
from detente.errors import Invalid, MalformedError
from detente.node.export import export_log
from detente.node.setup import agreement_text

# One worker per core: the main process's hashing is light beside the workers' signature checks.
# On two cores, a 60,000-entry export took 4.1-4.7 s with two workers, 4.9-5.8 with three and
# 5.5-6.8 with one (three interleaved runs); one worker had been the default there.
_DEFAULT_JOBS = max(1, min(8, os.cpu_count() or 1))

log_app = typer.Typer(
    help="This node's transparency log: its state, a message's proof, an export for an auditor.", no_args_is_help=True
)
app.add_typer(log_app, name="log")

AgreementOpt = Annotated[
    Path | None,
    typer.Option(
        "--agreement",
        help="your own copy of the agreement, whose pinned keys verify (default: the --node directory's)",
        exists=True,
        dir_okay=False,
    ),
]
UnwitnessedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-unwitnessed",
        help="accept a checkpoint no other party has cosigned (only the log's owner vouches for it), with a warning",
    ),
]
WitnessOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--witness",
        metavar="PARTY",
        help="another party whose witnessing the verdict requires (repeatable; default: every other party); "
        "one not named that lags behind is a warning",
    ),
]
EarlierOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--earlier",
        help="an earlier agreement (one amended since), for what was sealed under it; repeatable",
        exists=True,
        dir_okay=False,
    ),
]


def load_agreement_file(path: Path) -> agreement_mod.Agreement:
    """Return the agreement in the file `path`.

    Raises what `agreement_text` raises (naming the file), and what `agreement.load` raises for a
    file that is not an agreement, with the file's name in front (`--agreement exp/checkpoint`).
    """
    text = agreement_text(path)
    try:
        return agreement_mod.load(text, strict=False)
    except (MalformedError, Invalid) as exc:
        raise type(exc)(f"{path}: {exc.detail}") from None


def earlier_agreements(doc: agreement_mod.Agreement, paths: list[Path] | None) -> list[agreement_mod.Agreement]:
    """Return the earlier agreements in `paths`, in order.

    Raises `BadParameter` (a usage error) for one that is `doc` or given twice, and what
    `agreement_text` and `agreement.load` raise for a file that is not an agreement.
    """
    before: list[agreement_mod.Agreement] = []
    for path in paths or []:
        amended = load_agreement_file(path)
        if amended.hash == doc.hash or amended.hash in {a.hash for a in before}:
            raise typer.BadParameter(f"{path} is an agreement given already", param_hint="--earlier")
        before.append(amended)
    return before


@log_app.command("export")
def log_export(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="a new (or empty) directory to write the export into")],
    include_unwitnessed: Annotated[
        bool,
        typer.Option(
            "--include-unwitnessed",
            help="end at the newest checkpoint even if not every peer has cosigned it yet "
            "(its audit then needs --allow-unwitnessed)",
        ),
    ] = False,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="PARTY",
            help="a peer whose cosignature the export must carry (repeatable; default: every peer)",
        ),
    ] = None,
) -> None:
    """Write the log as a C2SP tlog-tiles directory, with its checkpoints and the agreement.

    The export ends at the newest checkpoint every peer cosigned, so that an auditor can check that
    each entry was witnessed; entries signed since are left out and counted.

    With --witness, it ends at the newest checkpoint every peer named cosigned (the counterpart of
    an incident, say, while an uninvolved peer is down); a peer not named that did not cosign it
    is named in a warning, and the audit needs the same --witness.
    """
    result = export_log(data, out, include_unwitnessed=include_unwitnessed, witnesses=witness or ())
    print(f"exported {result.origin} to {out}")
    print(f"  size {result.size}  root {base64.b64encode(result.root).decode()}")
    print(f"  {result.bundles} entry bundles, {result.tiles} hash tiles, {result.checkpoints} checkpoints")
    required = [p for p in result.unwitnessed_by if not result.required or p in result.required]
    if required:
        print(
            f"  warning: the checkpoint of size {result.size} is not cosigned by {', '.join(required)}: "
            "its audit fails unless run with --allow-unwitnessed"
        )
    others = [p for p in result.unwitnessed_by if p not in required]
    if others:
        given = " ".join(f"--witness {p}" for p in result.required)
        print(
            f"  warning: the checkpoint of size {result.size} is not cosigned by {', '.join(others)} "
            f"(not required: {given}): audit it with {given}"
        )
    if result.signed_size > result.size:
        by = " and ".join(result.required) if result.required else "every peer"
        print(
            f"  left out: {entry_range(result.size, result.signed_size)}, not yet cosigned by {by} "
            "(export again once they are, or use --include-unwitnessed)"
        )


def export_reader(root: Path) -> Reader:
    """Return a reader of the files under `root` (None for anything missing or outside it)."""
    base = root.resolve()

    def read(relative: str) -> bytes | None:
        path = (base / relative).resolve()
        if base not in path.parents or not path.is_file():
            return None
        return path.read_bytes()

    return read


def _names(root: Path) -> list[str]:
    """Return the path, relative to `root` and "/"-separated, of everything under it but directories.

    Symbolic links are listed, not followed: a link to a directory is named like a file.
    """
    names = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root)
        names += [(here / name).as_posix() for name in files]
        names += [(here / name).as_posix() for name in dirs if (Path(folder) / name).is_symlink()]
    return names


def print_report(report: Report, seconds: float) -> None:
    """Print what the audit verified, then each warning and problem, then the verdict."""
    root = base64.b64encode(report.root).decode() if report.root else "-"
    print(f"log          {report.origin or '-'} (party {report.party or '-'})")
    print(f"tree         size {report.size}  root {root}")
    senders = ", ".join(f"{p} {n}" for p, n in sorted(report.senders.items())) or "none"
    print(f"entries      {report.entries} envelopes checked (sent by: {senders})")
    if report.types:  # to reconcile with `detente log entries --type T`
        print("types        " + printable(", ".join(f"{kind} {n}" for kind, n in sorted(report.types.items()))))
    print(f"tiles        {report.tiles} hash tiles match the entries")
    print(
        f"checkpoints  {report.checkpoints} signed checkpoints, {report.consistency_proofs} consistency proofs verified"
    )
    for name, count in sorted(report.cosignatures.items()):
        print(f"cosignatures {name}: {count} (newest on size {report.newest_cosigned[name]})")
    witnessed = report.witnessed_line()  # up to what the entries bear out: a damaged export is not witnessed
    if witnessed is not None:
        print(f"witnessed    {witnessed}")
    if report.required:
        others = ", ".join(sorted(set(report.witnessed) - set(report.required)))
        print(
            f"required     {', '.join(report.required)} (--witness)" + (f"; not required: {others}" if others else "")
        )
    for warning in report.warnings:
        print(f"warning      {warning}")
    for problem in report.problems:
        print(f"FAIL {problem}")
    if report.more_problems:
        print(f"FAIL … and {report.more_problems} more problems")
    for hint in report.hints:
        print(f"hint         {hint}")
    if report.unwitnessed() and not report.unwitnessed_allowed and report.witnessed_size:
        # Not when nothing is witnessed: the flag accepts an unwitnessed tail, not a whole log.
        # Say what the choice is, without recommending it: only the auditor knows whether a tail
        # not yet witnessed is expected (an export made just after a checkpoint, a peer down).
        print(
            "hint         only the log's owner vouches for unwitnessed entries; an export made just after "
            "a checkpoint can end with some: --allow-unwitnessed accepts them, naming them"
        )
    print(f"{report.verdict()} ({seconds:.2f} s)")


@app.command("audit")
def audit_command(
    export: Annotated[
        Path, typer.Argument(help="the directory `detente log export` wrote", exists=True, file_okay=False)
    ],
    agreement: Annotated[
        Path, typer.Option("--agreement", help="your own copy of the agreement in force", exists=True, dir_okay=False)
    ],
    earlier: EarlierOpt = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", min=1, help="processes checking signatures, from 20,000 entries (one per core, at most 8)"
        ),
    ] = _DEFAULT_JOBS,
    party: Annotated[
        str | None, typer.Option("--party", help="the party whose log you expect (fail if it is another's)")
    ] = None,
    allow_unwitnessed: Annotated[
        bool,
        typer.Option(
            "--allow-unwitnessed",
            help="accept entries that not every other party has cosigned yet, with a warning naming them",
        ),
    ] = False,
    witness: WitnessOpt = None,
) -> None:
    """Verify an exported log offline: every envelope, the tree, the tiles, checkpoints and cosignatures.

    Exits 0 if everything verifies and every other party (each named with --witness, if any)
    witnessed every entry (or --allow-unwitnessed accepts those it did not), 1 with one line per
    problem otherwise; another party lagging behind is then a warning. A log
    kept across amendments of the agreement needs each earlier agreement too (--earlier): every
    envelope is checked under the agreement it names, and a rotated key verifies what it signed.
    Entries naming an agreement not given fail, with one hint naming it; an --earlier agreement
    that no entry names is a warning.
    """
    started = time.perf_counter()
    doc = load_agreement_file(agreement)
    if party is not None and party not in doc.parties:
        known = ", ".join(sorted(doc.parties))
        raise typer.BadParameter(f"{party!r} is not a party of this agreement ({known})", param_hint="--party")
    for named in witness or ():
        # The log's own party is a party too; the audit, which learns it from the export, names that.
        if named not in doc.parties:
            known = ", ".join(sorted(doc.parties))
            raise typer.BadParameter(f"{named!r} is not a party of this agreement ({known})", param_hint="--witness")
    before = earlier_agreements(doc, earlier)
    print(f"agreement    {doc.id} {doc.hash}")
    for amended in before:
        print(f"earlier      {amended.id} {amended.hash}")
    report = audit(
        export_reader(export),
        doc,
        jobs=jobs,
        names=_names(export),
        party=party,
        allow_unwitnessed=allow_unwitnessed,
        earlier=before,
        witnesses=witness or (),
    )
    print_report(report, time.perf_counter() - started)
    if not report.ok:
        sys.exit(1)


from detente.cli import log_entries as _log_entries  # noqa: E402,F401  (registers `log entries`)
from detente.cli import log_proofs as _log_proofs  # noqa: E402,F401  (registers `log show`, `proof`, `verify-proof`)
