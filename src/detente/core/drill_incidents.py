"""The incident figures of a drill: how fast an incident was notified, acknowledged and clarified.

Per scripted incident (`incident`): the *advance notice* (the first message about it sent before
it, e.g. a pre-notification), the *first message* about it at or after its drill time, that
message's *acknowledgement* (or its decline), and the *first clarification answer* about it
(`clarification_asked` says whether anyone asked). Each is measured from the incident's drill time
to the named envelope's `created` time, in drill time and in real seconds (`drill_envelopes.Run`).

In a group of states the same figures are also computed for each pair of parties (`between`),
from the messages about the incident that passed between the two only: how fast Pakistan told Iran,
and Iran acknowledged, whatever Afghanistan heard and when. A pair whose parties never wrote to
each other about an incident has its entry all the same, every figure null (`messages` 0), so each
pair lists every incident. The whole run's figures come from all its messages together: its first
message is the earliest of the pairs' first messages, but its acknowledgement is that message's,
which need not be the earliest of the pairs' acknowledgements. Of messages sent at one moment,
the first the run lists (by `created` time, then id) counts, in a pair as in the whole run. Pure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detente.core.drill_envelopes import Run, pair_of, secs
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration


def incident(run: Run, scripted: dict[str, Any]) -> dict[str, Any]:
    """Return an incident (as scripted) with its figures over every message about it. Raises nothing."""
    t0 = parse_time(scripted["drill"])
    about = run.messages_about(scripted["label"])
    return {**scripted, "wall": format_time(run.wall_at(t0)), **_figures(run, t0, about)}


def between(run: Run, incidents: list[dict[str, Any]], pair: set[str]) -> list[dict[str, Any]]:
    """Return, for each incident (in the order given), its figures over the messages `pair` exchanged.

    Each entry names the incident (`label`, `kind`, `drill`) and holds the keys an entry of
    `figures.incidents` holds for its figures, null where the two never wrote about it. Raises
    nothing.
    """
    out = []
    for scripted in incidents:
        about = [e for e in run.messages_about(scripted["label"]) if pair_of(e) == pair]
        t0 = parse_time(scripted["drill"])
        out.append({"label": scripted["label"], "kind": scripted["kind"], "drill": scripted["drill"],
                    **_figures(run, t0, about)})  # fmt: skip
    return out


def _figures(run: Run, t0: datetime, about: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of an incident at drill time `t0` over the messages `about` it, oldest first."""
    before = [e for e in about if run.drill(e) < t0]
    after = [e for e in about if run.drill(e) >= t0]  # one sent at the very moment is no advance notice
    notice = None
    if before:
        first = before[0]
        notice = {
            "drill_seconds": secs(t0 - run.drill(first)), "drill": format_duration(t0 - run.drill(first)),
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
        "notice": notice,
        "first_message": run.figure(t0, first_after),
        "acknowledged": ack,
        "declined": declined,
        "clarified": clarification,
        "clarification_asked": asked or clarification is not None,
        "messages": len(about),
    }
