"""The drill report: figures computed from the envelopes of a run, each traced to those envelopes.

`compute(facts)` works only from the facts document the engine collected (`node.drill_collect`):
the plan's incidents and steps, the clock's (wall, drill) breakpoints, and one record per envelope
with its `created` time and its log index on each node. Every figure names the envelopes it comes
from (id, type, both log indexes), so it can be checked against either node's log, and gives its
value in drill time (the scenario's clock, via the breakpoints) and in wall-clock seconds.

What a message is "about": the incident its scripted step names (`about:`), else the incident of
the first envelope it refers to (`refs`) or of its case, recursively (`core.drill_envelopes`);
messages people send from a console count for an incident when they refer to (or join the case of)
a message about it.

Figures per incident (`core.drill_incidents`): advance notice (the first message about it sent
before it), the first message after it, that message's acknowledgement, and the first clarification
answer about it. For the run:
every message that needed an answer, answered or not, and whether it was answered within its
precedence's deadline *in drill time* (the nodes' own overdue records run on the wall clock and are
listed apart), link outages as each node saw them, and the time from the first strike to the first
de-escalation proposal the other side acknowledged. Steps the drill could not play at all (a token
refused, a node out of reach: `harness` in a step) are counted apart, since they are not findings
about the response. A run of three parties or more (a group of states) adds `pairs`: per pair, what
the two exchanged on their channels, how it was answered, the time to acknowledge, the outages one
saw of the other, and the incident figures over the pair's own messages (`incidents`); a workflow
there is held by its two parties' nodes only. Pure.
"""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from detente.core import drill_incidents, drill_time
from detente.core.drill_clock import to_drill
from detente.core.drill_compare import compare, headline
from detente.core.drill_envelopes import SERVICE, Run, pair_of, secs
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration
from detente.core.workflow_base import party as party_of


def compute(facts: dict[str, Any]) -> dict[str, Any]:
    """Return the report: the facts plus `figures` computed from them."""
    run = Run(facts)
    messages = _messages(run, facts)
    links, outages = drill_time.outages(run.samples, facts)
    figures: dict[str, Any] = {
        "incidents": [drill_incidents.incident(run, incident) for incident in facts["incidents"]],
        "messages": messages,
        "unanswered": [m for m in messages if m["status"] == "unanswered"],
        "overdue": [m for m in messages if m["overdue"]],
        "node_overdue": [m for m in messages if m["node_overdue_at"]],
        "links": links,
        "outages": outages,
        "clock": drill_time.clock(run.samples, facts, outages),
        "deescalation": _deescalation(run, facts),
        "parties": _parties(run, messages),
        "steps": _steps(facts),
        "workflows": _workflows(run, facts),
    }
    nodes = list(facts["run"]["nodes"])
    if len(nodes) > 2:
        # A group of states: each pair has its own channels, answers and link, so each pair gets
        # its figures. A two-party report has one pair, whose figures are the report's own, and
        # stays as it always was.
        for party in nodes:
            figures["parties"].setdefault(party, _party_figures([], []))
        figures["parties"] = dict(sorted(figures["parties"].items()))
        figures["pairs"] = _pairs(run, nodes, messages, links)
    figures["summary"] = _summary(run, figures)
    return {**facts, "figures": figures}


def _messages(run: Run, facts: dict[str, Any]) -> list[dict[str, Any]]:
    silences = {s["target"] for s in facts["steps"] if s["kind"] == "silence"}
    overdue_records = {e["refs"][0]: e for e in run.envelopes if e["type"] == "overdue" and e.get("refs")}
    out = []
    for envelope in run.envelopes:
        if envelope["type"] in SERVICE or not envelope.get("needs_ack"):
            continue
        sent = run.drill(envelope)
        limit = facts["deadlines"].get(envelope["channel"], {}).get(envelope["precedence"])
        deadline = sent + timedelta(seconds=limit) if limit is not None else None
        response = run.response_of(envelope)
        kind = (envelope.get("response") or {}).get("type")
        status = {"ack": "acknowledged", "decline": "declined"}.get(kind or "", "unanswered")
        answered = run.drill(response) if response is not None else None
        if answered is None and envelope.get("response"):  # answered, but the answer is not among the records
            answered = to_drill(run.samples, parse_time(envelope["response"]["at"]))
        if deadline is None:
            late = False
        elif answered is not None:
            late = answered > deadline
        else:
            late = run.end > deadline
        node_record = overdue_records.get(envelope["id"])
        out.append(
            {
                "envelope": run.trace(envelope), "about": run.about.get(envelope["id"]), "status": status,
                "deadline_drill": format_time(deadline) if deadline else None,
                "deadline_seconds": limit,
                "response": run.figure(sent, response, start=envelope) if response is not None else None,
                "overdue": bool(late),
                "silent_by_script": envelope.get("step") in silences if envelope.get("step") else False,
                "node_overdue_at": envelope.get("overdue_at"),
                "node_overdue_record": run.trace(node_record),
            }
        )  # fmt: skip
    return out


def _deescalation(run: Run, facts: dict[str, Any]) -> dict[str, Any]:
    incidents = sorted(facts["incidents"], key=lambda i: i["drill"])
    strikes = [i for i in incidents if i["kind"] == "strike"] or incidents  # no strike: the first incident
    proposals = [e for e in run.envelopes if e["type"] == "deescalation.proposal"]
    out: dict[str, Any] = {
        "first_strike": strikes[0] if strikes else None,
        "measured_from": "strike" if strikes and strikes[0]["kind"] == "strike" else "incident",
        "proposals": [],
        "accepted": None,
    }
    for proposal in proposals:
        response = run.response_of(proposal)
        entry = {
            "proposal": run.trace(proposal),
            "answer": run.trace(response),
            "status": {"ack": "accepted", "decline": "declined"}.get((response or {}).get("type", ""), "unanswered"),
        }
        out["proposals"].append(entry)
        if out["accepted"] is None and response is not None and response["type"] == "ack" and strikes:
            t0 = parse_time(strikes[0]["drill"])
            if run.drill(response) >= t0:
                out["accepted"] = run.figure(t0, response, via=proposal)
    return out


def _workflows(run: Run, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each workflow of the run stands on each node, and whether the nodes agree.

    A workflow stays between the two parties whose message opened it, so those two nodes must
    hold it and agree; a third node of a group never has it. Without its opener among the run's
    envelopes, every node of the run must hold it.
    """
    out = []
    for kind, states in sorted(facts.get("workflows", {}).items()):
        for target, views in states.items():
            opener = run.by_id.get(target)
            distinct = {repr(sorted(v.items())) for v in views.values()}
            holders = set(facts["run"]["nodes"]) if opener is None else pair_of(opener)
            out.append(
                {
                    "kind": kind, "id": target, "opener": run.trace(opener), "about": run.about.get(target),
                    "nodes": views, "agree": len(distinct) == 1 and set(views) == holders,
                }
            )  # fmt: skip
    return sorted(out, key=lambda w: (w["opener"] or {}).get("created", ""))


def _parties(run: Run, messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per party: messages it sent, and those it had to answer (never, late, the median time)."""
    sent: dict[str, list[dict[str, Any]]] = {}
    for envelope in run.envelopes:
        if envelope["type"] not in SERVICE:
            sent.setdefault(party_of(envelope["from"]), []).append(envelope)
    received: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        received.setdefault(party_of(message["envelope"]["to"]), []).append(message)
    return {p: _party_figures(sent.get(p, []), received.get(p, [])) for p in sorted({*sent, *received})}


def _party_figures(sent: list[dict[str, Any]], to_answer: list[dict[str, Any]]) -> dict[str, Any]:
    times = [m["response"]["drill_seconds"] for m in to_answer if m["response"] is not None]
    median = statistics.median(times) if times else None
    return {
        "sent": len(sent), "to_answer": len(to_answer),
        "unanswered": sum(1 for m in to_answer if m["status"] == "unanswered"),
        "overdue": sum(1 for m in to_answer if m["overdue"]),
        "median_answer_seconds": median, "median_answer": format_duration(median),
    }  # fmt: skip


def _pairs(
    run: Run, nodes: list[str], messages: list[dict[str, Any]], links: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per pair of parties (`pk-af`, in the order the run lists its nodes), what passed between them.

    The messages each sent the other, the channels they used, those that needed an answer and how
    they were answered (acknowledged, declined, never, late in drill time), the median and longest
    time to acknowledge in drill time, each interval in which one of the two saw the other
    DEGRADED or DOWN (its drill length, marked when the compression distorts it), and each
    incident's figures over the messages the two exchanged about it (`drill_incidents.between`).
    """
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            pair = {a, b}
            between = [e for e in run.envelopes if e["type"] not in SERVICE and pair_of(e) == pair]
            answers = [m for m in messages if pair_of(m["envelope"]) == pair]
            acks = [m["response"]["drill_seconds"] for m in answers if m["status"] == "acknowledged" and m["response"]]
            seen = [v for v in links if {v["node"], v["peer"]} == pair]
            median = statistics.median(acks) if acks else None
            longest = max(acks) if acks else None
            out[f"{a}-{b}"] = {
                "parties": [a, b],
                "sent": {p: sum(1 for e in between if party_of(e["from"]) == p) for p in (a, b)},
                "channels": sorted({e["channel"] for e in between}),
                "to_answer": len(answers),
                "acknowledged": len(acks),
                "declined": sum(1 for m in answers if m["status"] == "declined"),
                "unanswered": sum(1 for m in answers if m["status"] == "unanswered"),
                "silent_by_script": sum(1 for m in answers if m["status"] == "unanswered" and m["silent_by_script"]),
                "overdue": sum(1 for m in answers if m["overdue"]),
                "median_ack_seconds": median, "median_ack": format_duration(median),
                "max_ack_seconds": longest, "max_ack": format_duration(longest),
                "outages": [
                    {
                        "node": v["node"], "peer": v["peer"], "worst": v["worst"], "drill_from": v["drill_from"],
                        "drill_seconds": v["drill_seconds"], "drill": v["drill"], "wall_seconds": v["wall_seconds"],
                        "distorted": v["distorted"], "scripted": v["outage"] is not None,
                    }
                    for v in seen
                ],
                "incidents": drill_incidents.between(run, run.facts["incidents"], pair),
            }  # fmt: skip
    return out


def _steps(facts: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for step in facts["steps"]:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    problems = [s for s in facts["steps"] if s["status"] in ("failed", "skipped") or s.get("notes")]
    # Steps the drill could not play at all (a token refused, a node out of reach): not a finding.
    harness = [s for s in facts["steps"] if s["status"] == "failed" and s.get("harness")]
    return {"counts": counts, "problems": problems, "harness": harness}


def _summary(run: Run, figures: dict[str, Any]) -> dict[str, Any]:
    wall = parse_time(run.facts["run"]["wall_end"]) - parse_time(run.facts["run"]["wall_start"])
    drill = run.end - parse_time(run.facts["run"]["drill_start"])
    sent = [e for e in run.envelopes if e["type"] not in SERVICE]
    return {
        "messages": len(sent),
        "envelopes": len(run.envelopes),
        "unanswered": len(figures["unanswered"]),
        "overdue": len(figures["overdue"]),
        "node_overdue": len(figures["node_overdue"]),
        "outages": len(figures["links"]),
        "outage_drill_seconds": sum(o["drill_seconds"] for o in figures["links"]),
        "outages_scripted": len(figures["outages"]),
        "outages_not_scripted": sum(1 for o in figures["links"] if o["outage"] is None),
        "outages_distorted": sum(1 for o in figures["links"] if o["distorted"]),
        "rate": figures["clock"]["rate"],
        "left_out": figures["clock"]["left_out"],
        "wall_seconds": secs(wall),
        "drill_seconds": secs(drill),
        "failed_steps": figures["steps"]["counts"].get("failed", 0) + figures["steps"]["counts"].get("skipped", 0),
        "harness_failures": len(figures["steps"]["harness"]),
        "workflows": len(figures["workflows"]),
        "workflows_disagreeing": sum(1 for w in figures["workflows"] if not w["agree"]),
    }


__all__ = ["compare", "compute", "headline"]
