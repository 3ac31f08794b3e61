"""A drill run's envelopes read through its clock table: drill times, traces and durations.

Every figure of a drill report (`core.drill_report`, `core.drill_incidents`) is a duration between
two moments of the run, each an envelope's `created` time (or an incident's drill time), and names
the envelopes it comes from. `Run` holds what those figures are read from: the clock table's
(wall, drill) breakpoints, the envelopes by id, the scripted steps (label, line, operator), and what
each message is "about": the incident its scripted step names (`about:`), else the incident of the
first envelope it refers to (`refs`) or of its case, recursively. Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detente.core.drill_clock import to_drill, to_wall
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration
from detente.core.workflow_base import party as party_of

# Envelopes that answer, report on or test the link rather than say something: never a "message".
SERVICE = ("ack", "decline", "overdue", "status", "link.test")


def secs(delta: timedelta) -> float:
    """Return a duration in seconds, to the millisecond a `created` time holds."""
    return round(delta.total_seconds(), 3)


def pair_of(envelope: dict[str, Any]) -> set[str]:
    """Return the two parties an envelope (or its trace) passed between."""
    return {party_of(envelope["from"]), party_of(envelope["to"])}


class Run:
    """A run's facts, with each envelope's drill time, trace and topic at hand."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.facts = facts
        self.samples = [(parse_time(w), parse_time(d)) for w, d in facts["clock"]["samples"]]
        self.envelopes: list[dict[str, Any]] = facts["envelopes"]
        self.by_id = {e["id"]: e for e in self.envelopes}
        self.steps: list[dict[str, Any]] = facts["steps"]
        self.end = self.samples[-1][1] if self.samples else parse_time(facts["run"]["drill_end"])
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
        return to_drill(self.samples, parse_time(envelope["created"]))

    def wall_at(self, drill: datetime) -> datetime:
        """Return the wall time the clock table gives for a drill time."""
        return to_wall(self.samples, drill)

    def trace(self, envelope: dict[str, Any] | None) -> dict[str, Any] | None:
        """Return what names an envelope in a figure: id, type, offices, times, log indexes, step, operator."""
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
        start_wall = parse_time(start["created"]) if start is not None else self.wall_at(start_drill)
        drill_seconds = secs(self.drill(end) - start_drill)
        return {
            "drill_seconds": drill_seconds,
            "drill": format_duration(drill_seconds),
            "wall_seconds": secs(parse_time(end["created"]) - start_wall),
            "from": self.trace(start) if start is not None else {"drill": format_time(start_drill)},
            "via": self.trace(via),
            "to": self.trace(end),
        }

    def messages_about(self, label: str) -> list[dict[str, Any]]:
        """Return the messages (no answers, no service envelopes) about the incident `label`, oldest first."""
        return [e for e in self.envelopes if self.about.get(e["id"]) == label and e["type"] not in SERVICE]

    def response_of(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        """Return the envelope that answered `envelope` (ack or decline), if it is among the run's."""
        response = envelope.get("response")
        if not response:
            return None
        return self.by_id.get(response["id"])
