"""`detente drill`: check a scenario, run it through real nodes, report and compare the response."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from detente.cli.app import app
from detente.core import agreement as agreement_mod
from detente.core import drill_report
from detente.core import scenario as scenario_mod
from detente.core.drill_clock import ClockPlan
from detente.core.precedence import parse_time
from detente.core.scenario import Scenario, ScenarioError, format_duration
from detente.core.scenario_plan import Plan, plan
from detente.errors import BadRequest, NotFound
from detente.node import drill_nodes
from detente.node.drill import DrillOptions, FeedItem, clock_plan, preflight
from detente.node.drill_client import Target, load_target
from detente.node.drill_collect import play
from detente.web.drill_report import render_comparison, render_report

drill_app = typer.Typer(help="Drills: replay a scripted crisis through real nodes and report the response.")
app.add_typer(drill_app, name="drill")
out = Console(highlight=False)
COLOURS = {"pk": "green", "ir": "cyan"}
STYLES = {"situation": "bold yellow", "jump": "dim", "error": "bold red", "overdue": "bold red", "link": "magenta",
          "outage": "bold magenta", "silence": "dim italic", "seen": "bold white"}  # fmt: skip

ScenarioArg = Annotated[Path, typer.Argument(help="the scenario YAML file", exists=True, dir_okay=False)]
VariantOpt = Annotated[list[str] | None, typer.Option("--variant", help="run only this variant (repeatable)")]


def load_plans(
    path: Path, variants: list[str] | None = None, *, seed: int | None = None, humans: frozenset[str] = frozenset()
) -> tuple[Scenario, list[Plan]]:
    """Read a scenario and plan each chosen variant; every problem is reported before anything runs."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{path} is not UTF-8 text: {exc}") from exc
    scenario = scenario_mod.load(text, str(path))
    if seed is not None:
        scenario = _with(scenario, seed=seed)
    agreement_path = (path.parent / scenario.agreement).resolve()
    if not agreement_path.exists():
        line = scenario.line_of(("agreement",))
        raise ScenarioError(str(path), [(line, "agreement", f"no agreement file at {agreement_path}")])
    agreement = agreement_mod.load(agreement_path.read_text(encoding="utf-8"))
    names = variants or scenario.variant_names()
    plans: list[Plan] = []
    problems: list[tuple[int, str, str]] = []
    for name in names:
        try:
            plans.append(plan(scenario, agreement, name, humans=humans))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(str(path), problems)
    return scenario, plans


def _with(scenario: Scenario, **changes: Any) -> Scenario:
    from dataclasses import replace

    return replace(scenario, **changes)


@drill_app.command("check")
def check(
    scenario: ScenarioArg, variant: VariantOpt = None, speed: Annotated[float | None, typer.Option()] = None
) -> None:
    """Check a scenario against its agreement (in drill time) and show what each variant would do."""
    loaded, plans = load_plans(scenario, variant)
    for p in plans:
        clock = _clock(p, speed or loaded.speed, loaded.skip_quiet, 0.5)
        kinds: dict[str, int] = {}
        for step in p.steps:
            kinds[step.message.type if step.message else step.kind] = (
                kinds.get(step.message.type if step.message else step.kind, 0) + 1
            )
        out.print(
            f"[bold]{p.variant or loaded.title}[/]: {len(p.steps)} steps, {len(p.incidents)} incidents, "
            f"drill {_day(p.start)} → {_day(p.end)} ({format_duration(p.end - p.start)}), "
            f"about {format_duration(clock.duration)} real at speed {speed or loaded.speed:g} "
            f"with {len(clock.jumps())} time jumps"
        )
        out.print("    " + ", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items())))
    out.print(f"[green]{scenario}: no problems[/]")


def _clock(p: Plan, speed: float, skip: bool, pause: float) -> ClockPlan:
    return clock_plan(p, DrillOptions(speed=speed, skip=skip, pause=pause))


@drill_app.command("run")
def run(
    scenario: ScenarioArg,
    variant: VariantOpt = None,
    speed: Annotated[float | None, typer.Option(help="drill seconds per real second (default: the scenario's)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for the random delays (default: the scenario's)")] = None,
    skip: Annotated[bool | None, typer.Option("--skip/--no-skip", help="jump over quiet stretches")] = None,
    pause: Annotated[float, typer.Option(help="real seconds shown at each time jump")] = 0.5,
    against: Annotated[Path | None, typer.Option(help="a demo.json of running nodes to drill against")] = None,
    self_hosted: Annotated[bool, typer.Option("--self-hosted", help="start two nodes for the drill (default)")] = False,
    workdir: Annotated[
        Path | None, typer.Option(help="where --self-hosted puts its nodes (default: temporary)")
    ] = None,
    report: Annotated[Path, typer.Option("--report", help="directory for the JSON and HTML reports")] = Path(
        "drill-reports"
    ),
    human: Annotated[list[str] | None, typer.Option(help="an office people play in the console (repeatable)")] = None,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="compare the variants at the end")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="no live feed")] = False,
) -> None:
    """Run a scenario through real nodes; write a JSON and an HTML report per variant."""
    if against is not None and self_hosted:
        raise BadRequest("choose --against DEMO_JSON or --self-hosted, not both")
    humans = frozenset(human or [])
    loaded, plans = load_plans(scenario, variant, seed=seed, humans=humans)
    options = DrillOptions(speed=speed or loaded.speed, skip=loaded.skip_quiet if skip is None else skip, pause=pause)
    if humans and skip is None:
        options = DrillOptions(speed=options.speed, skip=False, pause=pause)
    hosted = None
    temp: str | None = None
    try:
        if against is None:
            base = workdir or Path(temp := tempfile.mkdtemp(prefix="detente-drill-"))
            agreement_file = (scenario.parent / loaded.agreement).resolve()
            out.print(f"[dim]starting two nodes for the drill in {base} …[/]")
            hosted = drill_nodes.start(drill_nodes.prepare(base, agreement_file))
            target = hosted.target
        else:
            target = load_target(against)
        for p in plans:
            preflight(p, target, can_pause=hosted is not None)
        written = [_run_one(p, target, options, report, quiet) for p in plans]
    finally:
        if hosted is not None:
            hosted.stop()
            out.print("[dim]drill nodes stopped[/]")
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if compare and len(written) >= 2:
        a, b = (json.loads(path.read_text(encoding="utf-8")) for path in written[:2])
        print_comparison(a, b)
        stem = scenario.stem
        html = report / f"{stem}.comparison.html"
        html.write_text(render_comparison(a, b), encoding="utf-8")
        out.print(f"comparison: {html}")


DEMO_SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "jan-2024-iran-pakistan.yaml"


def run_on(scenario: Path, demo_json: Path, variant: str, speed: float, report_dir: Path) -> Path:
    """Play one variant of a scenario on running nodes (`detente demo` uses it); return the JSON report."""
    _, [p] = load_plans(scenario, [variant])
    target = load_target(demo_json)
    preflight(p, target, can_pause=False)
    return _run_one(p, target, DrillOptions(speed=speed, pause=1.0), report_dir, quiet=False)


def _run_one(p: Plan, target: Target, options: DrillOptions, report_dir: Path, quiet: bool) -> Path:
    scenario = p.scenario
    title = f"{scenario.title}" + (f" — {p.variant}" if p.variant else "")
    for notice in p.notices:
        out.print(f"[dim]{notice}[/]")
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=out, transient=True, disable=quiet,
    ) as progress:  # fmt: skip
        task = progress.add_task(_day(p.start), total=1.0)

        def feed(item: FeedItem) -> None:
            if not quiet:
                progress.console.print(format_feed(item, started), soft_wrap=True)

        def tick(now: datetime, fraction: float) -> None:
            progress.update(task, completed=fraction, description=f"{title[:40]}  {_day(now)}")

        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            facts = asyncio.run(play(p, target, options, feed=feed, progress=tick))
        finally:
            signal.signal(signal.SIGTERM, previous)
    result = drill_report.compute(facts)
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(scenario.source).stem + (f".{p.variant}" if p.variant else "")
    json_path, html_path = report_dir / f"{stem}.json", report_dir / f"{stem}.html"
    json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    html_path.write_text(render_report(result), encoding="utf-8")
    print_summary(result)
    out.print(f"report: {json_path}  {html_path}")
    return json_path


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a drill like Ctrl-C: nodes it started are stopped by their pid


def format_feed(item: FeedItem, started: float) -> str:
    """Return one feed line: drill time, real seconds since the start, party and text."""
    colour = COLOURS.get(item.party or "", "white")
    who = f"[{colour}]{item.party or '··'}[/]"
    style = STYLES.get(item.kind)
    text = item.text.replace("[", "\\[")
    if style:
        text = f"[{style}]{text}[/]"
    return f"[dim]{_day(item.drill)}  +{time.monotonic() - started:6.1f}s[/] {who} {text}"


def _day(moment: datetime) -> str:
    return moment.strftime("%d %b %H:%MZ")


def print_summary(result: dict[str, Any]) -> None:
    """Print the report's figures in the terminal."""
    figures = result["figures"]
    scenario = result["scenario"]
    heading = scenario["title"] + (f" — {scenario['variant']}" if scenario["variant"] else "")
    summary = figures["summary"]
    out.print(
        f"\n[bold]{heading}[/]: {summary['messages']} messages, "
        f"{format_duration(summary['drill_seconds'])} of drill time in {summary['wall_seconds']:.1f} s real"
    )
    table = Table("incident", "at (drill)", "notice", "first message", "acknowledged", "clarified", title="Incidents")
    for incident in figures["incidents"]:
        table.add_row(
            f"{incident['label']} ({incident['kind']})", _day(parse_time(incident["drill"])),
            _fig(incident["notice"], "before"), _fig(incident["first_message"]), _fig(incident["acknowledged"]),
            _fig(incident["clarified"]),
        )  # fmt: skip
    out.print(table)
    accepted = figures["deescalation"]["accepted"]
    out.print(f"first strike → de-escalation accepted: [bold]{_fig(accepted)}[/]" + _ids(accepted))
    late = figures["overdue"]
    out.print(
        f"messages never answered: {summary['unanswered']}   answered late or never (drill time): {len(late)}   "
        f"overdue on the nodes (wall clock): {summary['node_overdue']}   link outages: {summary['outages']}"
    )
    for message in figures["unanswered"][:12]:
        env = message["envelope"]
        why = " (silent by script)" if message["silent_by_script"] else ""
        out.print(f"  unanswered: {env['precedence']} {env['type']} {env['from']} → {env['to']} {env['id']}{why}")
    for outage in figures["links"]:
        out.print(
            f"  outage: {outage['node']} saw {outage['peer']} {outage['worst']} for {outage['drill']} drill time "
            f"({outage['wall_seconds']:.1f} s real){' — still down at the end' if outage['ongoing'] else ''}"
        )
    flows = figures.get("workflows", [])
    if flows:
        unilateral = sum(1 for w in flows if any(v.get("unilateral") for v in w["nodes"].values()))
        out.print(
            f"workflows: {len(flows)} (cases, actions, clarifications, consultations); "
            f"the nodes disagree on {summary.get('workflows_disagreeing', 0)}; executed without consent: {unilateral}"
        )
    for step in figures["steps"]["problems"][:12]:
        detail = step.get("error") or "; ".join(step.get("notes", []))
        out.print(f"  [yellow]line {step['line']}: {step['status']}: {detail}[/]")


def _fig(value: dict[str, Any] | None, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value['drill']} {suffix}".strip()


def _ids(value: dict[str, Any] | None) -> str:
    if not value or not value.get("to"):
        return ""
    to = value["to"]
    logs = ", ".join(f"{p} log #{i}" for p, i in sorted(to["log"].items()))
    return f"  [dim]({to['type']} {to['id']}: {logs})[/]"


def print_comparison(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Print two reports' headline figures side by side."""
    table = Table("figure (drill time)", _name(a), _name(b), title="Comparison")
    for name, left, right in drill_report.compare(a, b):
        table.add_row(name, left, right)
    out.print(table)


def _name(report: dict[str, Any]) -> str:
    return str(report["scenario"]["variant"] or report["scenario"]["title"])


def _read_report(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise NotFound(f"no report at {path}")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadRequest(f"{path} is not a drill report (JSON): {exc}") from exc
    if data.get("format") != "detente-drill-report/1" or "figures" not in data:
        raise BadRequest(f"{path} is not a drill report")
    return data


@drill_app.command("compare")
def compare_reports(
    first: Annotated[Path, typer.Argument(help="a report JSON")],
    second: Annotated[Path, typer.Argument(help="another report JSON")],
    html: Annotated[Path | None, typer.Option(help="also write the comparison as an HTML page")] = None,
) -> None:
    """Print two drill reports side by side (for example the two variants of a scenario)."""
    a, b = _read_report(first), _read_report(second)
    print_comparison(a, b)
    if html is not None:
        html.write_text(render_comparison(a, b), encoding="utf-8")
        out.print(f"comparison: {html}")


@drill_app.command("report")
def show_report(
    path: Annotated[Path, typer.Argument(help="a report JSON")],
    html: Annotated[Path | None, typer.Option(help="(re)write the HTML page")] = None,
) -> None:
    """Print a drill report's summary again, recomputed from its facts; optionally rewrite its HTML."""
    data = _read_report(path)
    result = drill_report.compute({k: v for k, v in data.items() if k != "figures"})
    print_summary(result)
    if html is not None:
        html.write_text(render_report(result), encoding="utf-8")
        out.print(f"report: {html}")
