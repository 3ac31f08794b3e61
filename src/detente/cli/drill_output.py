"""What the drill commands print and write: the live feed, a report's summary, two reports compared.

Also `write_text`, which writes a report or a page and turns a file system error into an error
naming the file, and `harness_warning`, the line a summary opens with when the drill could not play
some of its steps (their figures then say nothing about the response).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from detente.core import drill_compare
from detente.core.precedence import parse_time
from detente.core.scenario import format_duration
from detente.errors import Error
from detente.node.drill_types import FeedItem

out = Console(highlight=False)
COLOURS = {"pk": "green", "ir": "cyan", "af": "dark_orange"}
# Any other party of a group gets one of these, always the same one for the same party id.
SPARE_COLOURS = ("bright_blue", "orchid", "gold3", "spring_green3", "light_coral", "turquoise2")
STYLES = {"situation": "bold yellow", "jump": "dim", "error": "bold red", "overdue": "bold red", "link": "magenta",
          "outage": "bold magenta", "silence": "dim italic", "seen": "bold white"}  # fmt: skip


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` as UTF-8. Raises `Error` naming the file if it cannot be written."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Error(f"cannot write {path}: {exc.strerror or exc}") from exc


def format_feed(item: FeedItem, started: float) -> str:
    """Return one feed line: drill time, real seconds since the start, party and text."""
    colour = party_colour(item.party) if item.party else "white"
    who = f"[{colour}]{item.party or '··'}[/]"
    style = STYLES.get(item.kind)
    text = item.text.replace("[", "\\[")
    if style:
        text = f"[{style}]{text}[/]"
    return f"[dim]{day(item.drill)}  +{time.monotonic() - started:6.1f}s[/] {who} {text}"


def party_colour(party: str) -> str:
    """Return the colour a party's name is shown in: fixed for pk, ir and af, one of the spares for any other."""
    return COLOURS.get(party) or SPARE_COLOURS[sum(map(ord, party)) % len(SPARE_COLOURS)]


def day(moment: datetime) -> str:
    """Return a drill time as the feed shows it: `16 Jan 13:15Z`."""
    return moment.strftime("%d %b %H:%MZ")


def harness_warning(result: dict[str, Any]) -> str | None:
    """Return the warning for steps the drill could not play (None if it played them all)."""
    failed = result["figures"]["steps"].get("harness", [])
    if not failed:
        return None
    first = failed[0]
    return (
        f"{len(failed)} step{'s' if len(failed) != 1 else ''} failed because the drill could not act on the nodes "
        f"(first: line {first['line']}: {first.get('error') or 'failed'}); "
        "the figures below do not measure the response"
    )


def print_summary(result: dict[str, Any]) -> None:
    """Print the report's figures in the terminal."""
    figures = result["figures"]
    scenario = result["scenario"]
    heading = scenario["title"] + (f" — {scenario['variant']}" if scenario["variant"] else "")
    summary = figures["summary"]
    out.print(
        f"\n[bold]{heading}[/]: {summary['messages']} messages, "
        f"{format_duration(summary['drill_seconds'])} of drill time in {summary['wall_seconds']:.1f} s real"
        f"{_pace(figures.get('clock'))}"
    )
    stop = result.get("interrupted")
    if stop:
        out.print(
            f"[bold red]interrupted at {day(parse_time(stop['drill']))} drill time: a partial run, "
            f"{stop['steps_played']} steps played, {stop['steps_left']} not[/]"
        )
    warning = harness_warning(result)
    if warning is not None:
        out.print(f"[bold red]{_escape(warning)}[/]")
    provenance = _provenance(result["steps"])
    if provenance:
        out.print(f"[yellow]{provenance}[/]")
    clock = figures.get("clock") or {}
    if clock.get("why"):
        out.print(f"[yellow]the clock ran at {clock['rate']:g}×, not the {clock['speed']:g} asked: {clock['why']}[/]")
    if clock.get("left_out"):
        people = ", ".join(clock.get("people", [])) or "people"
        out.print(f"{clock['left_out']} scripted steps left out for people playing {people} (listed below)")
    if figures["incidents"]:
        _print_incidents(figures["incidents"])
        if figures.get("pairs"):  # a group of states only
            _print_pair_incidents(figures)
    accepted = figures["deescalation"]["accepted"]
    out.print(f"first strike → de-escalation accepted: [bold]{_fig(accepted, 'never')}[/]" + _ids(accepted))
    late = figures["overdue"]
    out.print(
        f"messages never answered: {summary['unanswered']}   answered late or never (drill time): {len(late)}   "
        f"overdue on the nodes (wall clock): {summary['node_overdue']}   link outages: {summary['outages']}"
    )
    for message in figures["unanswered"][:12]:
        env = message["envelope"]
        why = " (silent by script)" if message["silent_by_script"] else ""
        out.print(f"  unanswered: {env['precedence']} {env['type']} {env['from']} → {env['to']} {env['id']}{why}")
    _print_outages(figures)
    if figures.get("pairs"):
        _print_group(figures)
    flows = figures.get("workflows", [])
    if flows:
        unilateral = sum(1 for w in flows if any(v.get("unilateral") for v in w["nodes"].values()))
        out.print(
            f"workflows: {len(flows)} (cases, actions, clarifications, consultations); "
            f"the nodes disagree on {summary.get('workflows_disagreeing', 0)}; executed without consent: {unilateral}"
        )
    checkpoints = result.get("checkpoints") or {}
    if checkpoints:
        sizes = ", ".join(f"{party} {entry['size']}" for party, entry in sorted(checkpoints.items()))
        out.print(
            f"checkpoints (log size): {sizes}, signed and cosigned by the nodes' keys in the report; "
            "`detente log export` + `detente audit` of a node prove every envelope whose log index on it is below "
            "its size"
        )
    for party, why in sorted((result.get("checkpoints_missing") or {}).items()):
        out.print(f"  [dim]no checkpoint of {party}'s log: {_escape(str(why))}[/]")
    for notice in scenario.get("notices") or []:
        out.print(f"  [dim]{_escape(str(notice))}[/]")
    for step in figures["steps"]["problems"][:12]:
        detail = step.get("error") or "; ".join(step.get("notes", []))
        out.print(f"  [yellow]line {step['line']}: {step['status']}: {_escape(str(detail))}[/]")


def _provenance(steps: list[dict[str, Any]]) -> str | None:
    """Say how many step times are the scenario's assumptions or uncertain in the sources (None if none)."""
    assumed = sum(1 for s in steps if s.get("assumed"))
    uncertain = sum(1 for s in steps if s.get("uncertain"))
    if not assumed and not uncertain:
        return None
    plural = assumed != 1
    return (
        f"{assumed} step time{'s are' if plural else ' is'} the scenario's assumption{'s' if plural else ''} "
        f"(assumed) and {uncertain} uncertain in the sources: not sourced facts, so the figures built on them say "
        "what follows from them (each is marked in the report)"
    )


def _pace(clock: dict[str, Any] | None) -> str:
    if not clock:
        return ""
    jumps = f", {len(clock['jumps'])} time jumps" if clock.get("jumps") else ""
    return f" (clock at {clock['rate']:g}×{jumps})"


def _print_incidents(incidents: list[dict[str, Any]]) -> None:
    table = Table("incident", "at (drill)", "notice", "first message", "acknowledged", "clarified", title="Incidents")
    for incident in incidents:
        table.add_row(
            f"{incident['label']} ({incident['kind']})", day(parse_time(incident["drill"])), *_incident_cells(incident)
        )
    out.print(table)


def _print_pair_incidents(figures: dict[str, Any]) -> None:
    """Print, for a group of states, each incident's figures over each pair's own messages."""
    table = Table("incident", "pair", "notice", "first message", "acknowledged", "clarified", title="Incidents by pair")
    for incident in figures["incidents"]:
        for name, pair in figures["pairs"].items():
            for entry in pair.get("incidents", []):
                if entry["label"] == incident["label"]:
                    table.add_row(f"{incident['label']} ({incident['kind']})", name, *_incident_cells(entry))
    out.print(table)


def _incident_cells(incident: dict[str, Any]) -> tuple[str, str, str, str]:
    """An incident's notice, first message, acknowledgement and clarification answer, as the tables show them."""
    first = incident["first_message"]
    asked = incident.get("clarification_asked", True)
    return (
        _fig(incident["notice"], "none", "before"), _fig(first, "never"),
        _fig(incident["acknowledged"], "never" if first else "—"),
        _fig(incident["clarified"], "never" if asked else "not asked"),
    )  # fmt: skip


def _print_group(figures: dict[str, Any]) -> None:
    """Print, for a group of states, each party's figures and each pair's (a two-party report has neither)."""
    parties = Table(
        "party", "sent", "to answer", "never answered", "late or never", "median time to answer", title="By party"
    )
    for party, entry in figures["parties"].items():
        parties.add_row(
            f"[{party_colour(party)}]{party}[/]", str(entry["sent"]), str(entry["to_answer"]), str(entry["unanswered"]),
            str(entry["overdue"]), entry["median_answer"],
        )  # fmt: skip
    out.print(parties)
    pairs = Table(
        "pair", "sent", "to answer", "acked · declined · never", "late or never", "time to ack: median / longest",
        "link outages seen", title="By pair",
    )  # fmt: skip
    for name, pair in figures["pairs"].items():
        a, b = pair["parties"]
        seen = [
            f"{o['node']} saw {o['peer']} {o['worst']} {o['drill']}{'*' if o['distorted'] else ''}"
            for o in pair["outages"]
        ]
        silent = f" ({pair['silent_by_script']} silent by script)" if pair["silent_by_script"] else ""
        pairs.add_row(
            name, f"{a} {pair['sent'][a]}, {b} {pair['sent'][b]}", str(pair["to_answer"]),
            f"{pair['acknowledged']} · {pair['declined']} · {pair['unanswered']}{silent}", str(pair["overdue"]),
            f"{pair['median_ack']} / {pair['max_ack']}", "\n".join(seen) or "none",
        )  # fmt: skip
    out.print(pairs)


def _print_outages(figures: dict[str, Any]) -> None:
    """Print each scripted outage beside what each node saw of it, then the outages nobody scripted."""
    for outage in figures.get("outages", []):
        start = day(parse_time(outage["drill_from"]))
        out.print(
            f"  outage (scripted, line {outage['line']}): {outage['party']}'s node down {start} for {outage['drill']}"
        )
        if not outage["seen"]:
            out.print("    no node saw the link go down")
        for view in outage["seen"]:
            out.print("    " + _view(view))
    for view in figures["links"]:
        if view.get("outage") is None:
            out.print("  outage (not scripted): " + _view(view))


def _view(view: dict[str, Any]) -> str:
    mark = "*" if view.get("distorted") else ""
    text = (
        f"{view['node']} saw {view['peer']} {view['worst']} {_clock_time(view['drill_from'])} → "
        f"{_clock_time(view['drill_to'])} drill: {view['drill']}{mark} ({view['wall_seconds']:.1f} s real)"
    )
    if view.get("noticed_after") is not None:
        text += f"; noticed {view['noticed_after']:.1f} s real after the node stopped"
    if view.get("back_after") is not None:
        text += f", up again {view['back_after']:.1f} s real after it resumed"
    if view["ongoing"]:
        text += " — still down at the end"
    for reason in view.get("distortions", []):
        text += f"\n      [dim]* distorted by the compression: {_escape(reason)}[/]"
    return text


def _clock_time(value: str) -> str:
    return parse_time(value).strftime("%H:%M:%S")


def _escape(text: str) -> str:
    return text.replace("[", "\\[")  # a node's error text is not Rich markup


def _fig(value: dict[str, Any] | None, missing: str = "—", suffix: str = "") -> str:
    if value is None:
        return missing
    return f"{value['drill']} {suffix}".strip()


def _ids(value: dict[str, Any] | None) -> str:
    if not value or not value.get("to"):
        return ""
    to = value["to"]
    logs = ", ".join(f"{p} log #{i}" for p, i in sorted(to["log"].items()))
    return f"  [dim]({to['type']} {to['id']}: {logs})[/]"


def print_comparison(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Print two reports' headline figures side by side, after any reason they may not be comparable."""
    for warning in drill_compare.warnings(a, b):
        out.print(f"[bold yellow]warning: {_escape(warning)}[/]")
    left, right = drill_compare.columns(a, b)
    table = Table("figure (drill time)", left, right, title="Comparison")
    for name, first, second in drill_compare.compare(a, b):
        table.add_row(name, first, second)
    out.print(table)
    if any("*" in value for _, x, y in drill_compare.compare(a, b) for value in (x, y)):
        out.print("[dim]* distorted by the time compression: the reports say why[/]")
