"""`detente drill`: check a scenario, run it through real nodes, report and compare the response.

Exit status, as for every command (0 done, 1 an error, 2 a usage error):

- 2: an option out of bounds (`--speed`, `--pause`, an unknown `--human` office, a `--report`,
  `--workdir` or `--html` path that cannot be used), refused before any node is started or touched;
- 1: a scenario with problems, nodes that cannot play it or that refuse an operator the drill acts
  as (nothing is sent), a report file that is damaged, was edited or cannot be written, two reports
  that `compare --strict` finds not comparable (nothing is written);
- 1 also after a run in which steps failed because the drill could not act on the nodes (a token
  refused, a role missing, a node out of reach): the report is written and named, but its figures
  do not measure the response, so a script must not take them for a result; later variants and
  the comparison are not run;
- 1 also after a run in which a node refused a step (a 422, a 404): every variant runs and every
  report is written, then the failed steps are listed (`DrillStepsFailed`);
- 130: interrupted (Ctrl-C, SIGTERM), after saying where it stopped and writing the partial run
  (`cli.drill_variant`, `cli.drill_run`);
- 0: the drill played its script. What the figures say (late, never answered, the nodes disagree)
  is what a drill measures and never changes the status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from detente.cli import drill_run
from detente.cli.app import app
from detente.cli.drill_output import day, harness_warning, out, print_comparison, print_summary, write_text
from detente.cli.drill_variant import run_variant
from detente.core import agreement as agreement_mod
from detente.core import drill_compare, drill_facts, drill_report
from detente.core import scenario as scenario_mod
from detente.core.agreement import Agreement
from detente.core.scenario import Scenario, ScenarioError, format_duration
from detente.core.scenario_plan import Plan, plan
from detente.errors import BadRequest, Error, NotFound
from detente.node import drill_nodes
from detente.node.drill import DrillOptions, clock_plan, preflight
from detente.node.drill_access import check_access_now
from detente.node.drill_client import load_target
from detente.node.drill_types import DrillIncomplete, pause_problem, speed_problem
from detente.web.drill_report import render_comparison, render_report

drill_app = typer.Typer(help="Drills: replay a scripted crisis through real nodes and report the response.")
app.add_typer(drill_app, name="drill")


# --- options, checked before anything is read or started -------------------------------------------


def _speed_option(value: float | None) -> float | None:
    problem = speed_problem(value) if value is not None else None
    if problem is not None:
        raise typer.BadParameter(problem)
    return value


def _pause_option(value: float) -> float:
    problem = pause_problem(value)
    if problem is not None:
        raise typer.BadParameter(problem)
    return value


def _directory_option(value: Path | None) -> Path | None:
    """A directory the command may create: it is one, or its nearest existing parent is a writable one."""
    if value is None:
        return None
    if value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} exists and is not a directory")
    parent = value
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot create or write {value}: {parent} is not a writable directory")
    return value


def _output_option(value: Path | None) -> Path | None:
    """A file the command writes: its directory exists, and it is not itself a directory."""
    if value is None:
        return None
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a directory; give the file to write")
    if not value.parent.is_dir():
        raise typer.BadParameter(f"cannot write {value}: there is no directory {value.parent}")
    return value


ScenarioArg = Annotated[Path, typer.Argument(help="the scenario YAML file", exists=True, dir_okay=False)]
VariantOpt = Annotated[list[str] | None, typer.Option("--variant", help="run only this variant (repeatable)")]
SpeedOpt = Annotated[
    float | None,
    typer.Option(help="drill seconds per real second, 1 to 10000000 (default: the scenario's)", callback=_speed_option),
]
HtmlOpt = Annotated[Path | None, typer.Option(help="also write the page as HTML", callback=_output_option)]


# --- the scenario --------------------------------------------------------------------------------


def load_scenario(path: Path, *, seed: int | None = None) -> tuple[Scenario, Agreement]:
    """Read a scenario and the agreement it names.

    Raises `BadRequest` if the scenario file cannot be read as text, and `ScenarioError` naming the
    file and line of every problem of the scenario, or of the agreement file it names.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    # Reading problems ride on the scenario to the planner, which lists them with its own.
    scenario = scenario_mod.load(text, str(path), partial=True)
    if seed is not None:
        scenario = replace(scenario, seed=seed)
    agreement_path = (path.parent / scenario.agreement).resolve()
    line = scenario.line_of(("agreement",))
    problem = None
    try:
        return scenario, agreement_mod.load(agreement_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = f"no agreement file at {agreement_path}"
    except IsADirectoryError:
        problem = f"{agreement_path} is a directory, not an agreement file"
    except UnicodeDecodeError:
        problem = f"{agreement_path} is not UTF-8 text, so not an agreement (TOML)"
    except OSError as exc:
        problem = f"cannot read {agreement_path}: {exc.strerror or exc}"
    except Error as exc:
        problem = f"{agreement_path}: {exc.detail}"
    raise ScenarioError(str(path), [*scenario.problems, (line, "agreement", problem)])


def plan_all(
    scenario: Scenario, agreement: Agreement, variants: list[str] | None = None, *,
    humans: frozenset[str] = frozenset(),
) -> list[Plan]:  # fmt: skip
    """Plan each chosen variant. Raises `ScenarioError` listing every problem of every variant."""
    plans: list[Plan] = []
    problems: list[tuple[int, str, str]] = []
    for name in variants or scenario.variant_names():
        try:
            plans.append(plan(scenario, agreement, name, humans=humans))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScenarioError(scenario.source, problems)
    return plans


def load_plans(
    path: Path, variants: list[str] | None = None, *, seed: int | None = None, humans: frozenset[str] = frozenset()
) -> tuple[Scenario, list[Plan]]:
    """Read a scenario and plan each chosen variant; every problem is reported before anything runs."""
    scenario, agreement = load_scenario(path, seed=seed)
    return scenario, plan_all(scenario, agreement, variants, humans=humans)


def _check_humans(ctx: typer.Context, humans: frozenset[str], agreement: Agreement) -> None:
    unknown = sorted(humans - set(agreement.offices))
    if unknown:
        offices = ", ".join(sorted(agreement.offices))
        problem = f"the agreement has no office {', '.join(unknown)} (its offices: {offices})"
        raise typer.BadParameter(problem, ctx=ctx, param_hint="'--human'")


@drill_app.command("check")
def check(scenario: ScenarioArg, variant: VariantOpt = None, speed: SpeedOpt = None) -> None:
    """Check a scenario against its agreement (in drill time) and show what each variant would do."""
    loaded, plans = load_plans(scenario, variant)
    pace = speed if speed is not None else loaded.speed
    for p in plans:
        clock = clock_plan(p, DrillOptions(speed=pace, skip=loaded.skip_quiet))
        kinds: dict[str, int] = {}
        for step in p.steps:
            kind = step.message.type if step.message else step.kind
            kinds[kind] = kinds.get(kind, 0) + 1
        out.print(
            f"[bold]{p.variant or loaded.title}[/]: {len(p.steps)} steps, {len(p.incidents)} incidents, "
            f"drill {day(p.start)} → {day(p.end)} ({format_duration(p.end - p.start)}), "
            f"about {format_duration(clock.duration)} real at speed {pace:g} "
            f"with {len(clock.jumps())} time jumps"
        )
        out.print("    " + ", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items())))
        _print_provenance(p)
    out.print(f"[green]{scenario}: no problems[/]")


def _print_provenance(p: Plan) -> None:
    """List the steps whose time the scenario assumes or the sources leave uncertain."""
    marked = [s for s in p.steps if s.inject.assumed or s.inject.uncertain]
    if not marked:
        return
    out.print(f"    {len(marked)} step times are not sourced facts:")
    for s in marked:
        what = f"{s.kind} {s.label or ''}".rstrip()
        for key in ("uncertain", "assumed"):
            text = getattr(s.inject, key)
            if text:
                out.print(f"      line {s.line} ({what}, {day(s.at)}): {key}: {' '.join(text.split())}", soft_wrap=True)


# --- running -------------------------------------------------------------------------------------


@drill_app.command("run")
def run(
    ctx: typer.Context,
    scenario: ScenarioArg,
    variant: VariantOpt = None,
    speed: SpeedOpt = None,
    seed: Annotated[int | None, typer.Option(help="seed for the random delays (default: the scenario's)")] = None,
    skip: Annotated[bool | None, typer.Option("--skip/--no-skip", help="jump over quiet stretches")] = None,
    pause: Annotated[
        float, typer.Option(help="real seconds shown at each time jump, 0 to 60", callback=_pause_option)
    ] = 0.5,
    against: Annotated[Path | None, typer.Option(help="a demo.json of running nodes to drill against")] = None,
    self_hosted: Annotated[
        bool, typer.Option("--self-hosted", help="start one node per party of the agreement for the drill (default)")
    ] = False,
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="where --self-hosted puts its nodes (default: REPORT/<scenario>.nodes, kept)",
            callback=_directory_option,
        ),
    ] = None,
    discard_nodes: Annotated[
        bool, typer.Option("--discard-nodes", help="delete the drill's nodes and their logs at the end")
    ] = False,
    report: Annotated[
        Path, typer.Option("--report", help="directory for the JSON and HTML reports", callback=_directory_option)
    ] = Path("drill-reports"),
    human: Annotated[list[str] | None, typer.Option(help="an office people play in the console (repeatable)")] = None,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="compare the variants at the end")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="no live feed")] = False,
) -> None:
    """Run a scenario through real nodes; write a JSON and an HTML report per variant.

    Before anything is sent, the drill checks that every node answers and takes every operator it
    acts as (`GET /api/v1/me`). Exits 1 if steps failed because it could not act on the nodes.
    """
    if against is not None and self_hosted:
        raise BadRequest("choose --against DEMO_JSON or --self-hosted, not both")
    humans = frozenset(human or [])
    loaded, agreement = load_scenario(scenario, seed=seed)
    _check_humans(ctx, humans, agreement)
    plans = plan_all(loaded, agreement, variant, humans=humans)
    # People need the real minutes: no time jumps when they play, unless asked for.
    jumps = (loaded.skip_quiet and not humans) if skip is None else skip
    options = DrillOptions(speed=speed if speed is not None else loaded.speed, skip=jumps, pause=pause)
    hosted = None
    base: Path | None = None
    written: list[tuple[Path, dict[str, Any]]] = []
    failures: list[str] = []
    playing = False
    try:
        if against is None:
            base = workdir or drill_run.default_workdir(report, scenario)
            drill_run.make_room(base, given=workdir is not None)
            agreement_file = (scenario.parent / loaded.agreement).resolve()
            out.print(f"[dim]starting {drill_run.count_nodes(agreement)} for the drill in {base} …[/]")
            hosted = drill_nodes.start(drill_nodes.prepare(base, agreement_file))
            target = hosted.target
        else:
            target = load_target(against)
        for p in plans:
            preflight(p, target, can_pause=hosted is not None)
        check_access_now(plans, target)
        drill_run.set_aside(report, scenario, plans)
        playing = True  # from here on, `run_variant` says where an interruption stopped the drill
        for index, p in enumerate(plans):
            left = len(plans) - index - 1
            written.append(run_variant(p, target, options, report, quiet, discard=discard_nodes, left=left))
            _raise_if_incomplete(*written[-1], left=left)
            failures += drill_run.failed_steps(written[-1][1], p)
    except KeyboardInterrupt:
        if not playing:
            out.print("[bold red]interrupted before STARTEX: nothing was sent[/]")
        raise
    finally:
        if hosted is not None:
            hosted.stop()
            out.print("[dim]drill nodes stopped[/]")
        if base is not None and hosted is not None:
            drill_run.finish_nodes(base, discard=discard_nodes)
    if compare and len(written) >= 2:
        a, b = written[0][1], written[1][1]
        print_comparison(a, b)
        html = report / f"{scenario.stem}.comparison.html"
        write_text(html, render_comparison(a, b))
        out.print(f"comparison: {html}")
    drill_run.raise_failed(failures, [path for path, _ in written])


def _raise_if_incomplete(path: Path, result: dict[str, Any], *, left: int) -> None:
    """Raise `DrillIncomplete` if the drill could not play some steps of this run."""
    warning = harness_warning(result)
    if warning is not None:
        rest = f"; the {left} other variant{'s' if left != 1 else ''} did not run" if left else ""
        raise DrillIncomplete(f"{warning.replace(' below', '')}{rest}. The report is {path}")


DEMO_SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "jan-2024-iran-pakistan.yaml"


def run_on(scenario: Path, demo_json: Path, variant: str, speed: float, report_dir: Path) -> Path:
    """Play one variant of a scenario on running nodes (`detente demo` uses it); return the JSON report.

    Raises `Invalid` for a speed out of bounds, and as `drill run` does for the scenario and nodes.
    """
    options = DrillOptions(speed=speed, pause=1.0)
    _, [p] = load_plans(scenario, [variant])
    target = load_target(demo_json)
    preflight(p, target, can_pause=False)
    check_access_now([p], target)
    return run_variant(p, target, options, report_dir, quiet=False)[0]


# --- reports read back ---------------------------------------------------------------------------


def read_report(path: Path) -> dict[str, Any]:
    """Read a report's JSON, check its facts and recompute its figures from them.

    Raises `NotFound` for a missing file and `BadRequest` naming the file (and the field) for one
    that is not a complete drill report.
    """
    if not path.exists():
        raise NotFound(f"no report at {path}")
    if path.is_dir():
        raise BadRequest(f"{path} is a directory, not a drill report (JSON)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # not UTF-8, or not JSON
        raise BadRequest(f"{path} is not a drill report (JSON): {exc}") from exc
    try:
        drill_facts.check(data)
    except Error as exc:
        raise BadRequest(f"{path} {exc.detail}") from exc
    result: dict[str, Any] = _safely(path, "recompute its figures", lambda: drill_report.compute(data))
    return result


def _safely(path: Path, what: str, work: Callable[[], Any]) -> Any:
    # The facts passed `drill_facts.check`, which covers every field the figures are computed
    # from; should an edited report still hold a value they cannot use, name the file, not a line of ours.
    try:
        return work()
    except (Error, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise BadRequest(f"{path}: cannot {what}: {type(exc).__name__}: {exc}") from exc


@drill_app.command("compare")
def compare_reports(
    first: Annotated[Path, typer.Argument(help="a report JSON")],
    second: Annotated[Path, typer.Argument(help="another report JSON")],
    html: HtmlOpt = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="refuse reports that are not comparable instead of warning")
    ] = False,
) -> None:
    """Print two drill reports side by side (for example the two variants of a scenario).

    Refuses (exit 1) a report that is damaged or was edited, always; with `--strict`, also two
    reports that do not measure the same thing (`NotComparable`, every reason listed), before
    anything is printed or written.
    """
    a, b = read_report(first), read_report(second)
    reasons = drill_compare.not_comparable(a, b) if strict else []
    if reasons:
        raise drill_compare.NotComparable(
            f"{first} and {second} are not comparable, and --strict refuses them:\n  " + "\n  ".join(reasons)
        )
    print_comparison(a, b)
    if html is not None:
        write_text(html, _safely(first, f"render it with {second}", lambda: render_comparison(a, b)))
        out.print(f"comparison: {html}")


@drill_app.command("report")
def show_report(path: Annotated[Path, typer.Argument(help="a report JSON")], html: HtmlOpt = None) -> None:
    """Print a drill report's summary again, recomputed from its facts; optionally rewrite its HTML."""
    result = read_report(path)
    print_summary(result)
    if html is not None:
        write_text(html, _safely(path, "render it", lambda: render_report(result)))
        out.print(f"report: {html}")
