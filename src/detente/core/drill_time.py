"""What the drill clock did to a run's figures: the rate it ran at, its jumps, its link outages.

A drill compresses time, so a figure in drill time is only as true as the clock that measured it.
Two kinds are exact: a step's time (the clock stops at each step) and anything the clock held for.
Others are not: a node notices a peer gone after a few *real* seconds of failed link tests, and at
150× those seconds read as minutes of drill time; a time jump lying inside an interval adds drill
hours that nobody lived. This module says which is which, from the report's facts alone:

- `clock(samples, facts, outages)`: the rate the clock actually ran at (the speed asked for, or
  slower, and why), its jumps, how long it held, and the scripted steps left out for people;
- `outages(samples, facts)`: each interval in which a node saw its peer DEGRADED or DOWN (from the
  nodes' `link` events), and each scripted outage beside what each node saw of it: how many real
  seconds it took to notice, how many to see the peer back, and each reason its drill-time length
  is distorted. Two identical runs differ only in those real seconds, which are stated.

Pure: every function takes the facts it needs.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from detente.core.drill_clock import to_drill, to_wall
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration

# What a node sees of a scripted outage starts after the node is stopped and, at the latest, this
# long after it is resumed (a link needs a few tests to come back; the clock waits for it).
SEEN_WITHIN = timedelta(seconds=30)
SAME_RATE = 0.02  # a measured rate this close to the speed asked for is that speed (millisecond breakpoints)
_PERSON = re.compile(r"left out: (\S+) is played by a person")


def _secs(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def outages(samples: list[tuple[datetime, datetime]], facts: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Return (each interval a node saw its peer down, each scripted outage with what the nodes saw of it)."""
    scripted = _scripted(samples, facts)
    views = _views(samples, facts)
    for view in views:
        view["outage"] = view["noticed_after"] = view["back_after"] = None
        wall_from = parse_time(view["wall_from"])
        for index, outage in enumerate(scripted):
            party, stopped, resumed = outage["party"], parse_time(outage["wall_from"]), outage["wall_to"]
            latest = (parse_time(resumed) if resumed else parse_time(facts["run"]["wall_end"])) + SEEN_WITHIN
            if party in (view["node"], view["peer"]) and stopped <= wall_from <= latest:
                view["outage"] = index
                break
        matched = scripted[view["outage"]] if view["outage"] is not None else None
        view["distortions"] = _distortions(samples, view, matched)
        view["distorted"] = bool(view["distortions"])
    for index, outage in enumerate(scripted):
        outage["seen"] = [v for v in views if v["outage"] == index]
    return views, scripted


def _views(samples: list[tuple[datetime, datetime]], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each interval in which a node saw a peer DEGRADED or DOWN, from its `link` events."""
    wall_start, wall_end = parse_time(facts["run"]["wall_start"]), parse_time(facts["run"]["wall_end"])
    state: dict[tuple[str, str], tuple[str, datetime]] = {}
    for node, links in facts["links"].get("before", {}).items():
        for link in links:
            # a link never answered before the run is a node starting up, not an outage
            if "peer" in link and link.get("state") != "UP" and link.get("last_ok_at"):
                state[(node, link["peer"])] = (link["state"], wall_start)
    views = []
    for event in sorted(facts["links"]["events"], key=lambda e: e["wall"]):
        key = (event["node"], event["peer"])
        at = parse_time(event["wall"])
        if event["state"] == "UP":
            if key in state:
                worst, since = state.pop(key)
                views.append(_view(samples, key, since, at, worst, False))
        elif key not in state:
            state[key] = (event["state"], at)
        elif event["state"] == "DOWN":
            state[key] = ("DOWN", state[key][1])
    for key, (worst, since) in state.items():
        views.append(_view(samples, key, since, wall_end, worst, True))
    return sorted(views, key=lambda o: o["wall_from"])


def _view(
    samples: list[tuple[datetime, datetime]], key: tuple[str, str], since: datetime, until: datetime, worst: str,
    ongoing: bool,
) -> dict[str, Any]:  # fmt: skip
    d0, d1 = to_drill(samples, since), to_drill(samples, until)
    return {
        "node": key[0], "peer": key[1], "worst": worst, "ongoing": ongoing,
        "wall_from": format_time(since), "wall_to": format_time(until), "wall_seconds": _secs(until - since),
        "drill_from": format_time(d0), "drill_to": format_time(d1), "drill_seconds": _secs(d1 - d0),
        "drill": format_duration(d1 - d0), "jumped_seconds": _secs(_jumped(samples, since, until)),
    }  # fmt: skip


def _scripted(samples: list[tuple[datetime, datetime]], facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each scripted outage the drill played: whose node, when, for how long, on both clocks."""
    out = []
    for step in facts["steps"]:
        # Reports from before an outage's party and length were kept lack them: what the nodes saw
        # is still shown, as outages nobody scripted.
        length, party = step.get("duration"), step.get("party")
        if step["kind"] != "outage" or step["status"] != "done" or not step.get("wall") or not party:
            continue
        if not isinstance(length, int | float) or isinstance(length, bool):
            continue
        end = parse_time(step["drill"]) + timedelta(seconds=length)
        out.append(
            {
                "line": step["line"], "party": party, "drill_from": step["drill"], "duration_seconds": length,
                "drill": format_duration(length), "drill_to": format_time(end), "wall_from": step["wall"],
                "wall_to": format_time(to_wall(samples, end)),
            }
        )  # fmt: skip
    return out


def _distortions(
    samples: list[tuple[datetime, datetime]], view: dict[str, Any], outage: dict[str, Any] | None
) -> list[str]:
    """Return why `view`'s drill-time length is not what a node would see in a real crisis (empty if it is)."""
    reasons = []
    if view["jumped_seconds"] > 0:
        reasons.append(f"time jumps of {format_duration(view['jumped_seconds'])} lie inside it")
    if outage is None:
        if view["drill_seconds"] > view["wall_seconds"] * (1 + SAME_RATE) + 1:
            reasons.append(
                f"it lasted {view['wall_seconds']:.1f} s real, which the compression shows as {view['drill']}"
            )
        return reasons
    view["noticed_after"] = _secs(parse_time(view["wall_from"]) - parse_time(outage["wall_from"]))
    noticed = parse_time(view["drill_from"]) - parse_time(outage["drill_from"])
    if noticed.total_seconds() > view["noticed_after"] * (1 + SAME_RATE) + 1:
        reasons.append(
            f"{view['node']} noticed {view['noticed_after']:.1f} s real after the node stopped, "
            f"which the compression stretches to {format_duration(noticed)} of drill time"
        )
    view["back_after"] = None
    if outage["wall_to"] is not None and not view["ongoing"]:
        view["back_after"] = _secs(parse_time(view["wall_to"]) - parse_time(outage["wall_to"]))
        back = parse_time(view["drill_to"]) - parse_time(outage["drill_to"])
        if back.total_seconds() > max(view["back_after"], 0) * (1 + SAME_RATE) + 1:
            reasons.append(
                f"{view['node']} saw the link back {view['back_after']:.1f} s real after the node resumed, "
                f"which the clock shows as {format_duration(back)} of drill time"
            )
    return reasons


def _jumped(samples: list[tuple[datetime, datetime]], since: datetime, until: datetime) -> timedelta:
    """Return the drill time the clock jumped over between real times `since` (excluded) and `until`."""
    total = timedelta(0)
    for (w1, d1), (w2, d2) in zip(samples, samples[1:], strict=False):
        if w1 == w2 and d2 > d1 and since < w1 <= until:
            total += d2 - d1
    return total


def clock(
    samples: list[tuple[datetime, datetime]], facts: dict[str, Any], scripted: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return what the clock did: the rate it ran at and why, its jumps, its holds, the steps left out."""
    run = facts["run"]
    asked = float(run["speed"])
    spans = [(parse_time(o["wall_from"]), parse_time(o["wall_to"])) for o in scripted if o["wall_to"]]
    drill = wall = held = 0.0
    jumps = []
    for (w1, d1), (w2, d2) in zip(samples, samples[1:], strict=False):
        if w1 == w2 and d2 > d1:
            jumps.append([format_time(d1), format_time(d2)])
        elif w2 > w1 and d2 == d1:
            held += (w2 - w1).total_seconds()
        elif w2 > w1 and not any(a <= w1 and w2 <= b for a, b in spans):
            drill, wall = drill + (d2 - d1).total_seconds(), wall + (w2 - w1).total_seconds()
    rate = drill / wall if wall > 0 else asked
    rate = asked if abs(rate - asked) <= SAME_RATE * asked else float(f"{rate:.3g}")
    outage_rates = []
    for outage in scripted:
        if outage["wall_to"] is not None:
            real = (parse_time(outage["wall_to"]) - parse_time(outage["wall_from"])).total_seconds()
            outage_rates.append(
                {"line": outage["line"], "party": outage["party"], "drill": outage["drill"],
                 "wall_seconds": round(real, 3), "rate": float(f"{outage['duration_seconds'] / max(real, 1e-3):.3g}")}
            )  # fmt: skip
    why = None
    if rate < asked:
        slowest = min(outage_rates, key=lambda o: o["rate"], default=None)
        if not run.get("skip", True) and slowest is not None:
            why = (
                f"without time jumps the clock runs at one rate: the slowest a scripted outage needs to last "
                f"long enough on the wall clock for the nodes to notice it (line {slowest['line']}: "
                f"{slowest['drill']} in {slowest['wall_seconds']:.1f} s real)"
            )
        else:
            why = "the clock ran slower than asked: it fell behind its plan (a slow machine, or nodes slow to answer)"
    notices = list(facts["scenario"].get("notices") or [])
    people = sorted({m.group(1) for m in (_PERSON.search(n) for n in notices) if m})
    return {
        "speed": asked, "rate": rate, "why": why, "skip": bool(run.get("skip", True)), "outages": outage_rates,
        "jumps": jumps, "jumped_seconds": round(sum(
            (parse_time(b) - parse_time(a)).total_seconds() for a, b in jumps), 3),
        "held_seconds": round(held, 3), "left_out": len(notices), "people": people,
    }  # fmt: skip
