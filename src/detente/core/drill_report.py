"""The drill report: figures computed from the envelopes of a run, each traced to those envelopes.

`compute(facts)` works only from the facts document the engine collected (`node.drill_collect`):
the plan's incidents and steps, the clock's (wall, drill) breakpoints, and one record per envelope
with its `created` time and its log index on each node. Every figure names the envelopes it comes
from (id, type, both log indexes), so it can be checked against either node's log, and gives its
value in drill time (the scenario's clock, via the breakpoints) and in wall-clock seconds.

What a message is "about": the incident its scripted step names (`about:`), else the incident of
the first envelope it refers to (`refs`) or of its case, recursively; messages people send from a
console count for an incident when they refer to (or join the case of) a message about it.

Figures per incident: advance notice (the first message about it sent before it), the first message
after it, that message's acknowledgement, and the first clarification answer about it. For the run:
every message that needed an answer, answered or not, and whether it was answered within its
precedence's deadline *in drill time* (the nodes' own overdue records run on the wall clock and are
listed apart), link outages as each node saw them, and the time from the first strike to the first
de-escalation proposal the other side acknowledged. Steps the drill could not play at all (a token
refused, a node out of reach: `harness` in a step) are counted apart, since they are not findings
about the response. A run of three parties or more (a group of states) adds `pairs`: per pair, what
the two exchanged on their channels, how it was answered, the time to acknowledge and the outages one
saw of the other; a workflow there is held by its two parties' nodes only. Pure.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from detente.core import drill_time
from detente.core.drill_clock import to_drill, to_wall
from detente.core.drill_compare import compare, headline
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration
from detente.core.workflow_base import party as party_of

SERVICE = ("ack", "decline", "overdue", "status", "link.test")


def _t(value: str) -> datetime:
    return parse_time(value)


def _secs(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


class _Run:
    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts
        self.samples = [(_t(w), _t(d)) for w, d in facts["clock"]["samples"]]
        self.envelopes: list[dict[str, Any]] = facts["envelopes"]
        self.by_id = {e["id"]: e for e in self.envelopes}
        self.steps: list[dict[str, Any]] = facts["steps"]
        self.end = self.samples[-1][1] if self.samples else _t(facts["run"]["drill_end"])
        self.about = self._about()
        self.operators = {s["id"]: s.get("operator") for s in self.steps if s.get("id")}
        self.lines = {s["id"]: (s.get("label"), s.get("line")) for s in self.steps if s.get("id")}

    def _about(self) -> dict[str, str]:
        about: dict[str, str] = {s["id"]: s["about"] for s in self.steps if s.get("id") and s.get("about")}
        for envelope in self.envelopes:  # oldest first, so what it refers to is known
            if envelope["id"] in about:
                continue
            for ref in (*envelope.get("refs", []), envelope.get("case")):
                if ref and ref in about:
                    about[envelope["id"]] = about[ref]
                    break
        return about

    def drill(self, envelope: dict[str, Any]) -> datetime:
        """Return the envelope's drill time, converted from its `created` time with the clock table.

        The stored `drill` value is never used: `drill_facts.check` refuses a report whose stored
        value differs from this one.
        """
        return to_drill(self.samples, _t(envelope["created"]))

    def wall_at(self, drill: datetime) -> datetime:
        return to_wall(self.samples, drill)

    def trace(self, envelope: dict[str, Any] | None) -> dict[str, Any] | None:
        if envelope is None:
            return None
        label, line = self.lines.get(envelope["id"], (None, None))
        return {
            "id": envelope["id"], "type": envelope["type"], "from": envelope["from"], "to": envelope["to"],
            "precedence": envelope["precedence"], "created": envelope["created"],
            "drill": format_time(self.drill(envelope)), "log": dict(envelope.get("log", {})), "step": label,
            "line": line, "operator": self.operators.get(envelope["id"]), "author": envelope.get("author"),
        }  # fmt: skip

    def figure(
        self, start_drill: datetime, end: dict[str, Any] | None, *, start: dict[str, Any] | None = None,
        via: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """A duration from a drill time (an incident, or the envelope `start`) to the envelope `end`."""
        if end is None:
            return None
        start_wall = _t(start["created"]) if start is not None else self.wall_at(start_drill)
        drill_seconds = _secs(self.drill(end) - start_drill)
        return {
            "drill_seconds": drill_seconds,
            "drill": format_duration(drill_seconds),
            "wall_seconds": _secs(_t(end["created"]) - start_wall),
            "from": self.trace(start) if start is not None else {"drill": format_time(start_drill)},
            "via": self.trace(via),
            "to": self.trace(end),
        }

    def messages_about(self, label: str) -> list[dict[str, Any]]:
        return [e for e in self.envelopes if self.about.get(e["id"]) == label and e["type"] not in SERVICE]

    def response_of(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        response = envelope.get("response")
        if not response:
            return None
        return self.by_id.get(response["id"])


def compute(facts: dict[str, Any]) -> dict[str, Any]:
    """Return the report: the facts plus `figures` computed from them."""
    run = _Run(facts)
    messages = _messages(run, facts)
    links, outages = drill_time.outages(run.samples, facts)
    figures: dict[str, Any] = {
        "incidents": [_incident(run, incident) for incident in facts["incidents"]],
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


def _incident(run: _Run, incident: dict[str, Any]) -> dict[str, Any]:
    t0 = _t(incident["drill"])
    about = run.messages_about(incident["label"])
    before = [e for e in about if run.drill(e) < t0]
    after = [e for e in about if run.drill(e) >= t0]
    notice = None
    if before:
        first = before[0]
        notice = {
            "drill_seconds": _secs(t0 - run.drill(first)), "drill": format_duration(t0 - run.drill(first)),
            "to": run.trace(first),
        }  # fmt: skip
    first_after = after[0] if after else None
    ack = None
    declined = None
    if first_after is not None:
        response = run.response_of(first_after)
        if response is not None and response["type"] == "ack":
            ack = run.figure(t0, response, via=first_after)
        elif response is not None:
            declined = run.figure(t0, response, via=first_after)
    answers = [e for e in after if e["type"] == "clarification.response"]
    asked = any(e["type"] == "clarification.request" for e in about)
    clarification = None
    if answers:
        request = run.by_id.get(answers[0]["refs"][0]) if answers[0].get("refs") else None
        clarification = run.figure(t0, answers[0], via=request)
    return {
        **incident,
        "wall": format_time(run.wall_at(t0)),
        "notice": notice,
        "first_message": run.figure(t0, first_after),
        "acknowledged": ack,
        "declined": declined,
        "clarified": clarification,
        "clarification_asked": asked or clarification is not None,
        "messages": len(about),
    }


def _messages(run: _Run, facts: dict[str, Any]) -> list[dict[str, Any]]:
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
            answered = to_drill(run.samples, _t(envelope["response"]["at"]))
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


def _deescalation(run: _Run, facts: dict[str, Any]) -> dict[str, Any]:
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
            t0 = _t(strikes[0]["drill"])
            if run.drill(response) >= t0:
                out["accepted"] = run.figure(t0, response, via=proposal)
    return out


def _workflows(run: _Run, facts: dict[str, Any]) -> list[dict[str, Any]]:
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
            holders = set(facts["run"]["nodes"]) if opener is None else _pair_of(opener)
            out.append(
                {
                    "kind": kind, "id": target, "opener": run.trace(opener), "about": run.about.get(target),
                    "nodes": views, "agree": len(distinct) == 1 and set(views) == holders,
                }
            )  # fmt: skip
    return sorted(out, key=lambda w: (w["opener"] or {}).get("created", ""))


def _parties(run: _Run, messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
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
    run: _Run, nodes: list[str], messages: list[dict[str, Any]], links: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per pair of parties (`pk-af`, in the order the run lists its nodes), what passed between them.

    The messages each sent the other, the channels they used, those that needed an answer and how
    they were answered (acknowledged, declined, never, late in drill time), the median and longest
    time to acknowledge in drill time, and each interval in which one of the two saw the other
    DEGRADED or DOWN (its drill length, marked when the compression distorts it).
    """
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            pair = {a, b}
            between = [e for e in run.envelopes if e["type"] not in SERVICE and _pair_of(e) == pair]
            answers = [m for m in messages if _pair_of(m["envelope"]) == pair]
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
            }  # fmt: skip
    return out


def _pair_of(envelope: dict[str, Any]) -> set[str]:
    """Return the two parties an envelope (or its trace) passed between."""
    return {party_of(envelope["from"]), party_of(envelope["to"])}


def _steps(facts: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for step in facts["steps"]:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    problems = [s for s in facts["steps"] if s["status"] in ("failed", "skipped") or s.get("notes")]
    # Steps the drill could not play at all (a token refused, a node out of reach): not a finding.
    harness = [s for s in facts["steps"] if s["status"] == "failed" and s.get("harness")]
    return {"counts": counts, "problems": problems, "harness": harness}


def _summary(run: _Run, figures: dict[str, Any]) -> dict[str, Any]:
    wall = _t(run.facts["run"]["wall_end"]) - _t(run.facts["run"]["wall_start"])
    drill = run.end - _t(run.facts["run"]["drill_start"])
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
        "wall_seconds": _secs(wall),
        "drill_seconds": _secs(drill),
        "failed_steps": figures["steps"]["counts"].get("failed", 0) + figures["steps"]["counts"].get("skipped", 0),
        "harness_failures": len(figures["steps"]["harness"]),
        "workflows": len(figures["workflows"]),
        "workflows_disagreeing": sum(1 for w in figures["workflows"] if not w["agree"]),
    }


__all__ = ["compare", "compute", "headline"]
