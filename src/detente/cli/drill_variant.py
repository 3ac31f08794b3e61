"""`drill run`, one variant: play it on the nodes with its live feed and progress bar, write its report.

The feed and a progress bar that follows the drill clock are shown while the variant plays. SIGTERM
stops the drill as Ctrl-C does (`_terminate`): an interruption after STARTEX writes the partial run
(`<stem>.interrupted.json`) and says where it stopped (`cli.drill_run`) before `KeyboardInterrupt`
reaches the command, which exits 130. Output goes through `drill_output.out`, looked up at each call,
so that a caller (or a test) that swaps the console sees all of it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from detente.cli import drill_output, drill_run
from detente.cli.drill_output import day, format_feed, print_summary, write_text
from detente.core import drill_report
from detente.core.scenario_plan import Plan
from detente.errors import Error
from detente.node.drill_client import Target
from detente.node.drill_collect import play
from detente.node.drill_types import DrillOptions, FeedItem, speed_note
from detente.web.drill_report import render_report


def run_variant(
    p: Plan, target: Target, options: DrillOptions, report_dir: Path, quiet: bool, *,
    discard: bool = False, left: int = 0,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Play one plan and write its report; return the JSON's path and the report.

    Raises `KeyboardInterrupt` once an interrupted run has said where it stopped and its partial
    report is written (`<stem>.interrupted.json`), and `Error` if a report cannot be written.
    """
    scenario = p.scenario
    title = f"{scenario.title}" + (f" — {p.variant}" if p.variant else "")
    for notice in p.notices:
        drill_output.out.print(f"[dim]{notice}[/]")
    drill_output.out.print(f"[dim]{title}: {speed_note(p, options)}[/]")
    assumed = sum(1 for s in p.steps if s.inject.assumed)
    uncertain = sum(1 for s in p.steps if s.inject.uncertain)
    if assumed or uncertain:
        drill_output.out.print(
            f"[dim]{uncertain} step times are uncertain in the sources and {assumed} are the scenario's "
            "assumptions, not sourced facts (`detente drill check` lists them; each step of the report "
            "carries its `uncertain` or `assumed` note)[/]"
        )
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=drill_output.out, transient=True, disable=quiet,
    ) as progress:  # fmt: skip
        task = progress.add_task(day(p.start), total=1.0)

        def feed(item: FeedItem) -> None:
            if not quiet:
                progress.console.print(format_feed(item, started), soft_wrap=True)

        def tick(now: datetime, fraction: float) -> None:
            progress.update(task, completed=fraction, description=f"{title[:40]}  {day(now)}")

        # SIGTERM ends the drill as Ctrl-C does. A handler can be set only in the main thread, where
        # the command line runs; a caller on another thread keeps its own.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main else None
        try:
            facts = asyncio.run(play(p, target, options, feed=feed, progress=tick))
        except KeyboardInterrupt:
            drill_output.out.print(f"[bold red]interrupted before STARTEX of {title}: nothing was sent in it[/]")
            raise
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
    if discard:
        drill_run.mark_discarded(facts)
    interrupted = "interrupted" in facts
    result = drill_report.compute(facts)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Error(f"cannot create the report directory {report_dir}: {exc.strerror or exc}") from exc
    stem = drill_run.report_stem(Path(scenario.source), p.variant) + (".interrupted" if interrupted else "")
    json_path, html_path = report_dir / f"{stem}.json", report_dir / f"{stem}.html"
    try:
        write_text(json_path, json.dumps(result, indent=1, ensure_ascii=False))
        write_text(html_path, render_report(result))
    except Error:
        if not interrupted:
            raise
        drill_run.say_interrupted(facts, None, p, left)
        raise KeyboardInterrupt from None
    if interrupted:
        drill_run.say_interrupted(facts, (json_path, html_path), p, left)
        raise KeyboardInterrupt
    print_summary(result)
    drill_output.out.print(f"report: {json_path}  {html_path}")
    return json_path, result


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM stops a drill exactly like Ctrl-C: inside the event loop, asyncio's own SIGINT handler
    # cancels the run, which then writes its partial report; outside it, SIGINT raises
    # KeyboardInterrupt. Nodes the drill started are stopped by their pid either way.
    signal.raise_signal(signal.SIGINT)
