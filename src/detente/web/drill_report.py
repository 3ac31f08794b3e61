"""The drill report as one self-contained HTML page: figures, traces and an inline SVG timeline.

No external assets: the styles are inline and the chart is SVG drawn here. The timeline's axis is
drill time with quiet stretches (longer than `GAP`) folded to a narrow break, so a six-week crisis
and its five-minute exchanges are both readable. Rows: the world (incidents, situation updates),
one row per direction of traffic (each message a mark at its send time, a bar to its answer, red
and dashed to the end when it was never answered; in a group of states, both directions of a pair
side by side), and each node's link outages (the scripted
outages are outlined on the world row). Every mark's
tooltip names the envelope id and its log index on each node.

The page marks every step whose time the scenario assumes or the sources leave uncertain
(`provenance`), opens with where an interrupted run stopped, and ends with how to check each figure
on the nodes themselves: where each kept node is and how to start it, or that the nodes were
discarded, and each node's checkpoint, below which `detente log export` and `detente audit` prove
every log index (`checking`). A report of a group of states also has a "By pair" table
(`figures.pairs`, `core.drill_report`) and, below the incidents, an "Incidents by pair" table
(`figures.pairs.<pair>.incidents`, `core.drill_incidents`), whose cells the template draws as it
draws the incidents' own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from detente.core.drill_compare import columns, compare, warnings
from detente.core.precedence import parse_time
from detente.core.scenario import format_duration

GAP = timedelta(hours=6)
WIDTH, LEFT, RIGHT = 1160, 120, 20
# As the legend of drill_report.html shows them: 4.5:1 or more on the chart's white, as text in the legend.
PRECEDENCE_COLOURS = {"FLASH": "#c0392b", "IMMEDIATE": "#b34700", "PRIORITY": "#2874a6", "ROUTINE": "#5f6a6a"}
_env = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Axis:
    """Drill time -> x, with quiet stretches folded."""

    def __init__(self, moments: list[datetime], start: datetime, end: datetime) -> None:
        points = sorted({start, end, *moments})
        clusters: list[list[datetime]] = [[points[0], points[0]]]
        for point in points[1:]:
            if point - clusters[-1][1] > GAP:
                clusters.append([point, point])
            else:
                clusters[-1][1] = point
        pad = timedelta(minutes=30)
        spans = [(a - pad, b + pad) for a, b in clusters]
        fold = 26.0
        usable = WIDTH - LEFT - RIGHT - fold * (len(spans) - 1)
        total = sum((b - a).total_seconds() for a, b in spans)
        self.segments: list[tuple[datetime, datetime, float, float]] = []
        x = float(LEFT)
        for a, b in spans:
            width = usable * (b - a).total_seconds() / total
            self.segments.append((a, b, x, x + width))
            x += width + fold

    def x(self, moment: datetime) -> float:
        for index, (a, b, x0, x1) in enumerate(self.segments):
            if moment <= b:
                if moment < a:
                    prev = self.segments[index - 1][3] if index else x0
                    return (prev + x0) / 2
                return x0 + (x1 - x0) * (moment - a).total_seconds() / max((b - a).total_seconds(), 1)
        return self.segments[-1][3]

    def breaks(self) -> list[float]:
        return [(self.segments[i][3] + self.segments[i + 1][2]) / 2 for i in range(len(self.segments) - 1)]


def _t(value: str) -> datetime:
    return parse_time(value)


def _logs(trace: dict[str, Any] | None) -> str:
    if not trace:
        return ""
    return ", ".join(f"{party} log #{index}" for party, index in sorted(trace.get("log", {}).items()))


def timeline(report: dict[str, Any]) -> Markup:
    """Return the report's timeline as an inline SVG."""
    figures = report["figures"]
    run = report["run"]
    start, end = _t(run["drill_start"]), _t(run["drill_end"])
    envelopes = [e for e in report["envelopes"] if e["type"] not in ("link.test",)]
    moments = [_t(e["drill"]) for e in envelopes] + [_t(i["drill"]) for i in report["incidents"]]
    moments += [_t(s["drill"]) for s in report["steps"] if s["kind"] == "situation"]
    axis = Axis([m for m in moments if start <= m <= end], start, end)
    parties = sorted(run["nodes"])
    directions = [f"{a} → {b}" for a in parties for b in parties if a != b]
    if len(parties) > 2:
        # A group: both directions of each pair side by side (pk → ir, ir → pk, pk → af, ...), in
        # the order the run lists its nodes, so that each pair's exchange reads as one.
        ordered = list(run["nodes"])
        directions = [
            lane for i, a in enumerate(ordered) for b in ordered[i + 1 :] for lane in (f"{a} → {b}", f"{b} → {a}")
        ]
    lanes = ["world", *directions, *(f"links seen by {p}" for p in parties)]
    lane_y: dict[str, int] = {name: 46 + 46 * i for i, name in enumerate(lanes)}
    height = 46 + 46 * len(lanes) + 10
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="Timeline of the drill" class="timeline">'
    ]
    for name, lane in lane_y.items():
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{lane}" y2="{lane}" class="lane"/>')
        parts.append(f'<text x="8" y="{lane + 4}" class="lane-label">{escape(name)}</text>')
    last_label = -1000.0
    for a, _, x0, _ in axis.segments:
        parts.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="24" y2="{height - 8}" class="grid"/>')
        if x0 - last_label >= 78:  # label a stretch only where there is room
            label = (a + timedelta(minutes=30)).strftime("%d %b %H:%MZ")
            parts.append(f'<text x="{x0:.1f}" y="18" class="tick">{escape(label)}</text>')
            last_label = x0
    for x in axis.breaks():  # a folded quiet stretch: two slanted strokes across the axis
        for dx in (-3, 3):
            parts.append(
                f'<line x1="{x + dx - 3:.1f}" x2="{x + dx + 3:.1f}" y1="{height - 4}" y2="{height - 16}" class="fold"/>'
            )
    world = lane_y["world"]
    for step in report["steps"]:
        if step["kind"] != "situation":
            continue
        x = axis.x(_t(step["drill"]))
        text = next(iter(step.get("situation", {}).values()), "")
        if step.get("incident"):
            parts.append(
                f'<path d="M{x:.1f},{world - 9} l7,9 l-7,9 l-7,-9 z" class="incident">'
                f"<title>{escape(step.get('label') or '')}: {escape(text)}</title></path>"
            )
        else:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{world}" r="4" class="situation"><title>{escape(text)}</title></circle>'
            )
    by_id = {e["id"]: e for e in envelopes}
    for envelope in envelopes:
        if envelope["type"] in ("ack", "decline", "overdue", "status"):
            continue
        sender, recipient = envelope["from"].split(":")[0], envelope["to"].split(":")[0]
        y = lane_y.get(f"{sender} → {recipient}")
        if y is None:
            continue
        x = axis.x(_t(envelope["drill"]))
        colour = PRECEDENCE_COLOURS.get(envelope["precedence"], "#555")
        response = by_id.get((envelope.get("response") or {}).get("id", ""))
        tip = (
            f"{envelope['precedence']} {envelope['type']} {envelope['from']} → {envelope['to']}\n"
            f"sent {envelope['drill']} (drill)\n{envelope['id']}: {_logs(envelope)}"
        )
        if envelope.get("needs_ack"):
            if response is not None:
                x2 = axis.x(_t(response["drill"]))
                kind = "answered" if response["type"] == "ack" else "declined"
                tip += f"\n{response['type']} {response['drill']}: {response['id']} ({_logs(response)})"
                parts.append(f'<line x1="{x:.1f}" x2="{x2:.1f}" y1="{y}" y2="{y}" class="{kind}"/>')
                parts.append(f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="{y - 6}" y2="{y + 6}" class="{kind}"/>')
            else:
                parts.append(f'<line x1="{x:.1f}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" class="unanswered"/>')
                tip += "\nnever answered"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}" class="msg"><title>{escape(tip)}</title></circle>'
        )
    for scripted in figures.get("outages", []):  # the outage as scripted, beside what the nodes saw
        if scripted.get("drill_to"):
            x1, x2 = axis.x(_t(scripted["drill_from"])), axis.x(_t(scripted["drill_to"]))
            tip = f"{scripted['party']}'s node down for {scripted['drill']} (scripted, line {scripted['line']})"
            parts.append(
                f'<rect x="{x1:.1f}" y="{world - 5}" width="{max(x2 - x1, 3):.1f}" height="10" class="scripted-outage">'
                f"<title>{escape(tip)}</title></rect>"
            )
    for outage in figures["links"]:
        y = lane_y.get(f"links seen by {outage['node']}")
        if y is None:
            continue
        x1, x2 = axis.x(_t(outage["drill_from"])), axis.x(_t(outage["drill_to"]))
        tip = f"{outage['node']} saw {outage['peer']} {outage['worst']} for {outage['drill']}"
        tip += f" ({outage['wall_seconds']} s real)"
        parts.append(
            f'<rect x="{x1:.1f}" y="{y - 7}" width="{max(x2 - x1, 3):.1f}" height="14" class="outage">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def when(value: str | None) -> str:
    """Return an RFC 3339 time as people read it in the report: `16 Jan 2024 13:15:00Z`."""
    if not value:
        return "—"
    return _t(value).strftime("%d %b %Y %H:%M:%SZ")


_env.filters["when"] = when


def provenance(report: dict[str, Any]) -> dict[int, dict[str, str]]:
    """Return, by scenario line, the `assumed` and `uncertain` notes of the steps that carry one.

    A step's time with such a note is not a sourced fact, so the page marks it wherever the step
    (or an envelope it made) appears; an inject is one line, so its steps share the note.
    """
    notes: dict[int, dict[str, str]] = {}
    for step in report["steps"]:
        marked = {key: " ".join(str(step[key]).split()) for key in ("assumed", "uncertain") if step.get(key)}
        if marked:
            notes.setdefault(step["line"], {}).update(marked)
    return notes


def checking(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Return, per node of the run, what a reader needs to check the figures on it.

    Each entry: the party, its data directory (None if not kept or not recorded), its checkpoint
    (`checkpoints`, None if the run did not collect one, with `missing` saying why), the highest
    log index of the run's envelopes on it, how many envelopes it holds, its keys as the report
    gives them (`node_keys`: the log key that signs its checkpoint, the witness key that cosigns its
    peers'), and the peers whose cosignature its checkpoint carries. A report is rendered only once
    `core.drill_consistency` has verified those signatures with those keys.
    """
    dirs = report["run"].get("node_dirs") or {}
    keys = report.get("keys") or {}
    checkpoints = report.get("checkpoints") or {}
    missing = report.get("checkpoints_missing") or {}
    nodes = []
    for party in sorted(report["run"]["nodes"]):
        indexes = [e["log"][party] for e in report["envelopes"] if party in e.get("log", {})]
        nodes.append(
            {
                "party": party, "dir": dirs.get(party), "checkpoint": checkpoints.get(party),
                "missing": missing.get(party), "highest": max(indexes, default=None), "envelopes": len(indexes),
                "node_keys": keys.get(party) or {},
                "cosigners": sorted(peer for peer in report["run"]["nodes"] if peer != party),
            }
        )  # fmt: skip
    return nodes


def render_report(report: dict[str, Any]) -> str:
    """Return the report as a self-contained HTML page."""
    return _env.get_template("drill_report.html").render(
        report=report, figures=report["figures"], chart=timeline(report), logs=_logs, duration=format_duration,
        comparison=None, notes=provenance(report), nodes=checking(report),
        sent=sum(1 for s in report["steps"] if s.get("id")),
    )  # fmt: skip


def render_comparison(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Return two reports side by side (headline figures and both timelines) as one HTML page.

    The page opens with any reason the two are not comparable (another scenario, variant, seed or
    speed), and names its columns so that two runs of one variant can be told apart.
    """
    rows = compare(a, b)
    return _env.get_template("drill_report.html").render(
        report=a, figures=a["figures"], chart=timeline(a), logs=_logs, duration=format_duration, notes={},
        comparison={
            "rows": rows, "a": a, "b": b, "chart_b": timeline(b), "names": columns(a, b), "warnings": warnings(a, b),
        },
    )  # fmt: skip
