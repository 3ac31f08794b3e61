"""What `drill run` leaves behind and says about it: node directories, earlier reports, interruptions.

A demanding exercise director expects every figure of a report to be checkable afterwards, and no
report to pass for what it is not:

- **The nodes are kept.** By default a self-hosted drill puts its nodes in `REPORT_DIR/<scenario>.nodes`
  (replacing those of the previous run of the scenario there, never a directory holding anything a
  drill did not write, never one where a node still serves), and says at the end where they are
  and how to check a figure on them. `--discard-nodes` deletes them at the end, and says so.
- **Earlier reports are set aside.** Just before STARTEX, the reports of an earlier run of the same
  scenario are renamed `<stem>.previous.json` / `.html` (and the comparison), so that a run that
  breaks off never leaves an older, complete report looking like the latest.
- **An interrupted run says where it stopped** (drill time, variant, step) and writes what it
  collected as `<stem>.interrupted.json` / `.html`, its facts carrying `interrupted`.
- **Steps that failed are summarised** at the end, and the run exits 1 (`DrillStepsFailed`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from detente.cli.drill_output import day, out
from detente.core.agreement import Agreement
from detente.core.precedence import parse_time
from detente.core.scenario_plan import Plan
from detente.errors import Error
from detente.node import drill_nodes
from detente.node.drill_types import DrillStepsFailed

PREVIOUS = "previous"
INTERRUPTED = "interrupted"


def report_stem(scenario: Path, variant: str | None) -> str:
    """Return the file name stem of a variant's report: `<scenario>.<variant>`."""
    return scenario.stem + (f".{variant}" if variant else "")


NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def count_nodes(agreement: Agreement) -> str:
    """Return how many nodes a self-hosted drill starts, one per party: `two nodes`, `three nodes (pk, ir, af)`."""
    parties = list(agreement.parties)
    count = f"{NUMBERS.get(len(parties), len(parties))} node{'s' if len(parties) != 1 else ''}"
    return count if len(parties) == 2 else f"{count} ({', '.join(parties)})"


def default_workdir(report_dir: Path, scenario: Path) -> Path:
    """Return where a self-hosted drill keeps its nodes when no `--workdir` is given."""
    return report_dir / f"{scenario.stem}.nodes"


def make_room(workdir: Path, *, given: bool) -> None:
    """Get `workdir` ready for the drill's nodes; say so when it replaces an earlier run's.

    Raises `Conflict` if a node still serves from it (its pid named), and `BadRequest` if the default
    directory holds files no drill wrote. A directory given with `--workdir` is never emptied: a
    node already there is refused when the nodes are prepared, as before.
    """
    if given:
        drill_nodes.refuse_running(workdir)
    elif drill_nodes.replace_workdir(workdir):
        out.print(f"[dim]replaced the nodes of the previous run in {workdir}[/]")


def set_aside(report_dir: Path, scenario: Path, plans: list[Plan]) -> None:
    """Rename the reports of an earlier run of `scenario` to `*.previous.*`, before this run starts.

    Raises `Error` naming the file if one cannot be renamed.
    """
    stems = [report_stem(scenario, p.variant) for p in plans]
    names = [f"{s}.{ext}" for s in stems for ext in ("json", "html")]
    names += [f"{s}.{INTERRUPTED}.{ext}" for s in stems for ext in ("json", "html")]
    names.append(f"{scenario.stem}.comparison.html")
    moved = []
    for name in names:
        path = report_dir / name
        if path.is_file():
            stem, ext = name.rsplit(".", 1)
            aside = report_dir / f"{stem.removesuffix('.' + INTERRUPTED)}.{PREVIOUS}.{ext}"
            try:
                path.replace(aside)
            except OSError as exc:
                raise Error(f"cannot set the earlier report {path} aside: {exc.strerror or exc}") from exc
            moved.append(aside.name)
    if moved:
        out.print(f"[dim]the earlier run's reports are now {', '.join(moved)} in {report_dir}[/]")


def finish_nodes(workdir: Path, *, discard: bool) -> None:
    """Delete the drill's nodes (`--discard-nodes`) or say where they are kept and how to check a figure."""
    nodes = workdir / "nodes"
    if discard:
        shutil.rmtree(nodes, ignore_errors=True)
        (workdir / drill_nodes.AGREEMENT_COPY).unlink(missing_ok=True)
        if workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()
        out.print(f"the drill's nodes and their logs were deleted ({workdir}, --discard-nodes)")
        return
    if not (nodes / "demo.json").is_file():
        return
    # The example names pk's node, as it always has; a drill among parties without pk, its first.
    kept = sorted(p.name for p in nodes.iterdir() if p.is_dir())
    first = nodes / ("pk" if "pk" in kept or not kept else kept[0])
    out.print(
        f"the drill's nodes, their databases and logs are kept in {nodes} (operators and tokens in "
        f"{nodes / 'demo.json'}). To check a figure, start a node again, "
        f"`detente serve --data {first}`, then `detente message ID --node {first} --token TOKEN`; "
        "--discard-nodes deletes them at the end of a run"
    )


def mark_discarded(facts: dict[str, Any]) -> None:
    """Say in the facts that the nodes will not be there to check against (`--discard-nodes`)."""
    facts["run"]["node_dirs"] = None
    facts["run"]["agreement_file"] = None


def say_interrupted(facts: dict[str, Any], paths: tuple[Path, Path] | None, plan: Plan, left: int) -> None:
    """Print where an interrupted run stopped, what it sent and where its partial report is."""
    stop = facts["interrupted"]
    where = f" in variant {plan.variant}" if plan.variant else ""
    step = stop.get("step")
    at = ""
    if step is not None:
        verb = "while playing" if step["status"] == INTERRUPTED else "after"
        at = f", {verb} line {step['line']} ({step['kind']}{' ' + step['label'] if step['label'] else ''})"
    out.print(
        f"[bold red]interrupted at {day(parse_time(stop['drill']))} drill time{where}{at}; "
        f"{stop['steps_played']} steps played, {stop['steps_left']} not[/]"
    )
    made = [s for s in facts["steps"] if s.get("id")]
    if made:
        out.print(
            f"{len(made)} envelopes were sent before the interruption and stay in the nodes' logs "
            "(each step's id is in the partial report)"
        )
    if stop["envelopes"] != "complete":
        out.print(f"[red]the envelopes were {stop['envelopes']}[/]")
    if paths is not None:
        out.print(f"partial report, marked interrupted: {paths[0]}  {paths[1]}")
    if left:
        out.print(f"the {left} other variant{'s' if left != 1 else ''} and the comparison did not run")


def failed_steps(result: dict[str, Any], plan: Plan) -> list[str]:
    """Return a line for each step of the run that failed by a node's rule (a harness failure is apart)."""
    name = f"{plan.variant}: " if plan.variant else ""
    return [
        f"{name}line {s['line']}: {s['kind']}{' ' + s['label'] if s.get('label') else ''}: {s.get('error') or 'failed'}"
        for s in result["steps"]
        if s["status"] == "failed" and not s.get("harness")
    ]


def raise_failed(failures: list[str], reports: list[Path]) -> None:
    """Raise `DrillStepsFailed` summarising the steps that failed, if any did."""
    if not failures:
        return
    count = len(failures)
    raise DrillStepsFailed(
        f"{count} step{'s' if count != 1 else ''} failed: the nodes refused what the scenario asked, so the run "
        "did not play its script (the steps that needed them were skipped, each named in the report):\n  "
        + "\n  ".join(failures)
        + "\nreports: "
        + "  ".join(str(r) for r in reports)
    )
