"""`python -m bench` (make bench) and `python -m bench --quick` (make bench-quick).

Runs every section with progress bars, then prints the table, writes the JSON under
bench/results/ and (full runs) regenerates docs/benchmarks.md. A section that fails is reported
and the others still run; the exit status is 1 if any section failed, else 0 (missed targets are
figures, not failures).
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from bench import report
from bench.common import ROOT, Results, machine
from bench.profile import py_spy
from bench.runs import FULL, QUICK, Runner


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes and durations (under a minute)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="markdown report to write (default: docs/benchmarks.md on full runs, none on quick)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write the markdown report")
    parser.add_argument("--skip-postgres", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--skip-biglog", action="store_true", help="skip the 10^6-entry node log")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy both nodes during throughput, into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (node data, logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.profile is not None and py_spy() is None:
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL
    skips = []
    if args.quick:
        skips = [
            "PostgreSQL runs: skipped in --quick",
            "10^6-entry node log and audit: skipped in --quick",
            "10^6-entry proofs: skipped in --quick (10^4 and 10^5 only)",
        ]
    if args.skip_postgres and plan.postgres:
        plan, skips = replace(plan, postgres=False), [*skips, "PostgreSQL runs: --skip-postgres"]
    if args.skip_biglog and plan.biglog_entries:
        plan, skips = replace(plan, biglog_entries=0), [*skips, "10^6-entry node log: --skip-biglog"]
    # A pipe gets a wide table rather than Rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=170)
    results = Results()
    for text in skips:
        section, _, why = text.partition(": ")
        results.skip("not measured", section, why)
    started, date = time.perf_counter(), datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="detente-bench-"))
    mode = "quick" if args.quick else "full"
    console.print(
        f"[bold]Détente bench ({mode})[/] on {info['cores']} cores, Python {info['python']}; work in {workdir}"
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            runner = Runner(progress, results, workdir, plan, args.profile)
            measured_floors = runner.floors()
            if measured_floors is not None:  # every later figure is put beside these floors
                runner.sqlite_cluster(measured_floors)
                runner.log_section(measured_floors)
                if plan.postgres:
                    runner.postgres_cluster(measured_floors)
    finally:
        if args.keep:
            console.print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return _finish(console, args, results, info, date, started, mode, argv)


def _finish(
    console: Console,
    args: argparse.Namespace,
    results: Results,
    info: dict[str, Any],
    date: datetime.datetime,
    started: float,
    mode: str,
    argv: list[str],
) -> int:
    name = "latest-quick.json" if args.quick else "latest.json"
    results_file = args.results / name
    document: dict[str, Any] = {
        "command": " ".join(["python -m bench", *argv]),
        "quick": args.quick,
        "date": date.isoformat().replace("+00:00", "Z"),
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": info,
        "results_file": _relative(results_file),
        **results.to_json(),
    }
    report.print_table(console, results.rows, f"Détente bench ({mode}) — {document['date']}")
    report.write_json(results_file, document)
    console.print(f"JSON: {results_file}")
    if not args.quick:  # full runs are also kept by date, so that later runs can be compared with them
        dated = args.results / f"full-{document['date'].replace(':', '-')}.json"
        report.write_json(dated, {**document, "results_file": _relative(dated)})
    docs = None if args.no_docs else (args.docs or (None if args.quick else ROOT / "docs" / "benchmarks.md"))
    if docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(report.markdown(document, results.rows), encoding="utf-8")
        console.print(f"report: {docs}")
    for error in results.errors:
        console.print(f"[red]error:[/] {error}")
    console.print(f"took {document['duration_s']:.0f} s")
    return 1 if results.errors else 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
