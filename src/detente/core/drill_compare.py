"""Two drill reports side by side: their headline figures, their column names, and what to beware of.

`headline(report)` lists a report's main figures as rows a comparison lines up by name: per
incident (advance notice, first message, acknowledgement, clarification answer), in a group of
states the same four per pair (`shots (…), pk-af: acknowledged`), the time to an accepted
de-escalation, the message counts, each party's median time to answer, and each scripted link
outage as each node saw it. A drill-time figure that the compression distorts carries a `*`
(the report says why). `compare(a, b)` joins two reports' rows; `columns(a, b)` names the two
columns so that two runs of one variant can be told apart; `warnings(a, b)` says when the two
reports do not measure the same thing, and `not_comparable(a, b)` which of those warnings mean
their figures cannot be set side by side (another scenario, seed, clock rate, agreement or set of
parties, a partial run, steps the drill could not play), the reasons `drill compare --strict` refuses them
for. That both are runs of one variant is only said: such runs differ by what the run itself
changed, which is what comparing them shows. Pure.
"""

from __future__ import annotations

from typing import Any

from detente.core.precedence import parse_time
from detente.errors import Invalid


class NotComparable(Invalid):
    """Two drill reports do not measure the same thing, and the comparison was asked to refuse them."""


def headline(report: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """Return the report's main figures as (name, text, seconds), the rows a comparison lines up."""
    figures = report["figures"]
    rows: list[tuple[str, str, float | None]] = []
    pairs = figures.get("pairs", {})  # a group of states only
    for incident in figures["incidents"]:
        name = f"{incident['label']} ({incident['kind']}, {_day(incident['drill'])})"
        rows.extend(_incident_rows(name, incident))
        for pair_name, pair in pairs.items():
            # Matched by label (unique in a scenario); a report from before pairs had incidents has none.
            for entry in pair.get("incidents", []):
                if entry["label"] == incident["label"]:
                    rows.extend(_incident_rows(f"{name}, {pair_name}", entry))
    accepted = figures["deescalation"]["accepted"]
    rows.append(
        ("first strike → de-escalation accepted", _fig(accepted), accepted["drill_seconds"] if accepted else None)
    )
    summary = figures["summary"]
    for key, what in (("messages", "messages sent"), ("unanswered", "messages never answered"),
                      ("overdue", "answered late or never (drill time)"), ("outages", "link outages")):  # fmt: skip
        rows.append((what, str(summary[key]), float(summary[key])))
    for party, entry in figures["parties"].items():
        rows.append((f"{party}: median time to answer", entry["median_answer"], entry["median_answer_seconds"]))
    for name, pair in figures.get("pairs", {}).items():  # a group of states only
        rows.append((f"{name}: median time to acknowledge", pair["median_ack"], pair["median_ack_seconds"]))
        rows.append((f"{name}: never answered", str(pair["unanswered"]), float(pair["unanswered"])))
    rows.extend(_outage_rows(figures))
    return rows


def _incident_rows(name: str, incident: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """The four rows of an incident's figures (of the whole run, or of a pair): notice, first, ack, answer."""
    notice = incident["notice"]
    rows = [(f"{name}: advance notice", _fig(notice, "none"), notice["drill_seconds"] if notice else None)]
    for key, what in (("first_message", "first message"), ("acknowledged", "acknowledged"),
                      ("clarified", "clarification answered")):  # fmt: skip
        value = incident[key]
        missing = "not asked" if key == "clarified" and not incident.get("clarification_asked", True) else "never"
        rows.append((f"{name}: {what}", _fig(value, missing), value["drill_seconds"] if value else None))
    return rows


def _outage_rows(figures: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """One row per scripted outage and node that saw it: its length, marked when distorted, and the delay."""
    rows: list[tuple[str, str, float | None]] = []
    for outage in figures.get("outages", []):
        start = parse_time(outage["drill_from"]).strftime("%d %b %H:%MZ")
        name = f"{outage['party']}'s node down {start} for {outage['drill']} (scripted)"
        if not outage["seen"]:
            rows.append((name, "no node saw it", None))
        for view in outage["seen"]:
            mark = "*" if view["distorted"] else ""
            noticed = f", noticed after {view['noticed_after']:.1f} s real" if view["noticed_after"] is not None else ""
            text = f"{view['drill']}{mark} ({view['wall_seconds']:.1f} s real){noticed}"
            rows.append((f"{name}: {view['node']} saw {view['peer']} {view['worst']}", text, view["drill_seconds"]))
    if "outages_not_scripted" in figures["summary"]:
        count = figures["summary"]["outages_not_scripted"]
        rows.append(("link outages nobody scripted", str(count), float(count)))
    return rows


def _fig(value: dict[str, Any] | None, missing: str = "never") -> str:
    if value is None:
        return missing
    return str(value["drill"])


def _day(value: str) -> str:
    return parse_time(value).strftime("%d %b")


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (figure, value in A, value in B) for the union of both reports' headline figures."""
    left = {name: text for name, text, _ in headline(a)}
    right = {name: text for name, text, _ in headline(b)}
    names = list(left) + [n for n in right if n not in left]
    return [(name, left.get(name, "—"), right.get(name, "—")) for name in names]


def columns(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    """Return the two columns' names: the variant (or title), with the run's start time and seed if they tie."""
    names = [_name(a), _name(b)]
    if names[0] == names[1]:
        names = [f"{n} (run {_run_time(r)})" for n, r in zip(names, (a, b), strict=True)]
    if names[0] == names[1]:
        names = [f"{n}, seed {r['scenario'].get('seed')}" for n, r in zip(names, (a, b), strict=True)]
    if names[0] == names[1]:
        names = [f"A: {names[0]}", f"B: {names[1]}"]
    return names[0], names[1]


def warnings(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Return why the two reports' figures may not be comparable (empty if they are runs of one scenario)."""
    return [text for _, text in _differences(a, b)]


def not_comparable(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Return the warnings that mean the two reports' figures cannot be set side by side (empty if none)."""
    return [text for refused, text in _differences(a, b) if refused]


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[bool, str]]:
    """Each difference between the reports as (whether it makes them not comparable, what it is)."""
    sa, sb = a["scenario"], b["scenario"]
    out: list[tuple[bool, str]] = []

    def differ(text: str, *, refused: bool = True) -> None:
        out.append((refused, text))

    if (sa.get("source"), sa["title"]) != (sb.get("source"), sb["title"]):
        differ(
            f"these reports are of different scenarios ({sa['title']!r} and {sb['title']!r}): "
            "figures with the same name measure different scripts"
        )
    elif sa["variant"] == sb["variant"]:
        variant = f"variant {sa['variant']!r}" if sa["variant"] else "the scenario"
        differ(f"both reports are runs of {variant}: they differ only in what the run itself changed", refused=False)
    if sa.get("seed") != sb.get("seed"):
        differ(f"the seeds differ ({sa.get('seed')} and {sb.get('seed')}): scripted delays drawn from ranges differ")
    speeds = [_rate(r) for r in (a, b)]
    if speeds[0] != speeds[1]:
        differ(
            f"the clocks ran at {speeds[0]:g}× and {speeds[1]:g}×: figures the compression distorts (marked *) "
            "are not comparable"
        )
    if a["run"]["agreement"] != b["run"]["agreement"]:
        differ(
            f"the nodes ran under different agreements ({a['run']['agreement']} and {b['run']['agreement']}): "
            "deadlines, channels and rules may differ"
        )
    names = columns(a, b)
    parties = [list(r["run"]["nodes"]) for r in (a, b)]
    if set(parties[0]) != set(parties[1]):
        differ(
            f"{names[0]} is a drill of {', '.join(parties[0])} and {names[1]} of {', '.join(parties[1])}: "
            "the figures of a whole run cover other pairs, and a pair only one report has reads — in the other"
        )
    for name, report in zip(names, (a, b), strict=True):
        stop = report.get("interrupted")
        if stop:
            when = parse_time(stop["drill"]).strftime("%d %b %H:%MZ")
            differ(f"{name} is a partial run, interrupted at {when} drill time: its figures stop there")
        failed = report["figures"]["summary"].get("harness_failures", 0)
        if failed:
            differ(
                f"{name} has {failed} step{'s' if failed != 1 else ''} the drill could not play (a token refused, "
                "a node out of reach): its figures do not measure the response"
            )
    return out


def _rate(report: dict[str, Any]) -> float:
    """The rate the report's clock ran at: the speed asked for, or the slower rate it measured."""
    asked = float(report["run"]["speed"])
    measured = float(report["figures"].get("clock", {}).get("rate", asked))
    # The clock never runs faster than asked: a higher measured rate is the rounding of its
    # millisecond breakpoints at a high speed (1 ms is 50 drill seconds at 50,000×), not a pace.
    return min(measured, asked)


def _name(report: dict[str, Any]) -> str:
    return str(report["scenario"]["variant"] or report["scenario"]["title"])


def _run_time(report: dict[str, Any]) -> str:
    return parse_time(report["run"]["wall_start"]).strftime("%d %b %H:%M:%SZ")
