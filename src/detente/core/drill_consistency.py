"""Is a drill report what its facts give? Recompute everything it derives and compare.

A report stores values it derived at run time beside the facts they come from: each envelope's
drill time (its `created` time through the clock table), whether it needed an answer (the node's
deadline), the scripted step it answers to, and the whole `figures` block. `drill report` and
`drill compare` recompute the figures from the facts, but a reader of the JSON or of an old HTML
page sees the stored values, so a report whose stored values disagree with its facts is refused
rather than silently corrected: `problem(data)` names the first such value and both readings.

Facts that cannot be recomputed are cross-checked where they meet: the clock table must start
where the run started and never run backwards; an answer recorded on a message must be the
envelope that answers it (same type, same `created` time, referring to it); the checkpoints a
node signed, when the report carries them, must be well-formed notes of the size they state, above
every log index the run's envelopes have on that node. What no report can prove by itself (that
its envelopes are the nodes' envelopes) is checked against the nodes' logs by their ids and log
indexes. Pure.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from detente.core.drill_clock import to_drill
from detente.core.precedence import format_time, parse_time

EDITED = "the report was edited"


def problem(data: dict[str, Any]) -> str | None:
    """Return the first stored value of a report (checked for shape) that its facts contradict, or None."""
    samples = [(parse_time(w), parse_time(d)) for w, d in data["clock"]["samples"]]
    return (
        _clock(data, samples)
        or _envelopes(data, samples)
        or _checkpoints(data)
        or _figures(data)
    )  # fmt: skip


def _clock(data: dict[str, Any], samples: list[tuple[datetime, datetime]]) -> str | None:
    run = data["run"]
    if not samples:
        return "clock.samples: empty: without the clock table no drill time can be checked"
    first_wall, first_drill = samples[0]
    if format_time(first_wall) != run["wall_start"] or format_time(first_drill) != run["drill_start"]:
        return (
            f"clock.samples[0]: the clock table starts at {format_time(first_wall)} → {format_time(first_drill)}, "
            f"but the run at {run['wall_start']} → {run['drill_start']}; {EDITED}"
        )
    for index, ((w1, d1), (w2, d2)) in enumerate(zip(samples, samples[1:], strict=False), 1):
        if w2 < w1 or d2 < d1:
            return f"clock.samples[{index}]: the clock runs backwards from clock.samples[{index - 1}]; {EDITED}"
    if samples[-1][0] > parse_time(run["wall_end"]):
        return f"clock.samples[{len(samples) - 1}]: after the end of the run ({run['wall_end']}); {EDITED}"
    return None


def _envelopes(data: dict[str, Any], samples: list[tuple[datetime, datetime]]) -> str | None:
    by_id = {e["id"]: e for e in data["envelopes"]}
    steps = {s["id"]: s for s in data["steps"] if s.get("id")}
    for envelope in data["envelopes"]:
        name = f"envelope {envelope['id']} ({envelope['type']})"
        drill = format_time(to_drill(samples, parse_time(envelope["created"])))
        if envelope["drill"] != drill:
            return (
                f"{name}: its drill time is {envelope['drill']}, but its created time {envelope['created']} "
                f"converts to {drill} with the clock table; {EDITED}"
            )
        if "deadline" in envelope and "needs_ack" in envelope:
            needs = envelope["deadline"] is not None
            if envelope["needs_ack"] is not needs:
                deadline = envelope["deadline"]
                return f"{name}: needs_ack is {envelope['needs_ack']}, but its deadline is {deadline}; {EDITED}"
        step = steps.get(envelope["id"])
        for key, value in (("line", step and step.get("line")), ("step", step and step.get("label"))):
            if key in envelope and envelope[key] != value and step is not None:
                return f"{name}: {key} is {envelope[key]!r}, but its step says {value!r}; {EDITED}"
        response = envelope.get("response")
        answer = by_id.get(response["id"]) if response else None
        if response and answer is not None:
            refs = answer.get("refs") or []
            if answer["type"] != response["type"] or answer["created"] != response["at"] or envelope["id"] not in refs:
                return (
                    f"{name}: its answer is recorded as {response['type']} {response['id']} at {response['at']}, "
                    f"but that envelope is a {answer['type']} created {answer['created']} "
                    f"referring to {', '.join(refs) or 'nothing'}; {EDITED}"
                )
    return None


def _checkpoints(data: dict[str, Any]) -> str | None:
    # Imported here: only reports that carry checkpoints need the note and checkpoint parsers.
    from detente.core.checkpoint import parse_checkpoint
    from detente.core.note import parse_note
    from detente.errors import Error

    for party, entry in (data.get("checkpoints") or {}).items():
        where = f"checkpoints.{party}"
        try:
            note = parse_note(entry["note"].encode("utf-8"))
            size = parse_checkpoint(note.text).size
        except Error as exc:
            return f"{where}.note: not a signed checkpoint: {exc.detail}"
        if size != entry["size"]:
            return f"{where}: size is {entry['size']}, but its note says {size}; {EDITED}"
        # The report says an export and audit of the node prove every index below the size: so
        # every envelope of the run must lie below it in that node's log.
        for envelope in data["envelopes"]:
            index = envelope["log"].get(party)
            if index is not None and index >= size:
                return (
                    f"envelope {envelope['id']} ({envelope['type']}): its {party} log index is {index}, "
                    f"but {where} covers only the indexes below {size}; {EDITED}"
                )
    return None


def _figures(data: dict[str, Any]) -> str | None:
    stored = data.get("figures")
    if not isinstance(stored, dict):
        return None  # facts alone: nothing stored to contradict
    # Imported here: `drill_report` does not need this module, and this one needs it only here.
    from detente.core.drill_report import compute

    fresh = compute({k: v for k, v in data.items() if k != "figures"})["figures"]
    return _differs(stored, fresh, "figures")


def _differs(stored: Any, fresh: Any, path: str) -> str | None:
    """Return where `stored` says something `fresh` does not, comparing only what both hold."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        # Keys only one side holds are left alone: a report from another version names other figures.
        for key in stored.keys() & fresh.keys():
            found = _differs(stored[key], fresh[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{path}: the report lists {len(stored)}, its facts give {len(fresh)}; {EDITED}"
        for index, (left, right) in enumerate(zip(stored, fresh, strict=True)):
            found = _differs(left, right, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if _same(stored, fresh):
        return None
    return f"{path}: the report says {stored!r}, its facts give {fresh!r}; {EDITED}"


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)
