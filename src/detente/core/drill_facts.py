"""A drill report read back from its JSON file: its facts checked field by field before use.

`drill report` and `drill compare` recompute a report's figures from the facts it holds
(`core.drill_report.compute`), and render them. A report file may have been edited, cut short or
written by another version; `check(data)` makes sure every field those functions read is there
and of its type, and names the first that is not (`clock.samples[3][0]: ...`), so a damaged
report is refused with its field named rather than failing deep inside the arithmetic.

The shape is written as data (`FACTS`): a dict lists its keys (required, unless the key ends in
`?`; other keys are allowed), a
`("list", item)` or `("map", value)` its items, `("pair", item)` a two-item list, `("opt", shape)`
a value that may be null; the strings name scalar types, a trailing `?` allowing null.

A report that has the right shape may still have been edited: a figure changed, or the drill time
stored beside an envelope. So `check` also recomputes what a report derives and refuses it when a
stored value disagrees (`core.drill_consistency`), naming the value and both readings. Pure.
"""

from __future__ import annotations

import math
from typing import Any

from detente.core import drill_consistency
from detente.core.precedence import parse_time
from detente.errors import Invalid

FORMAT = "detente-drill-report/1"

_ENVELOPE = {
    "id": "str", "type": "str", "channel": "str", "from": "str", "to": "str", "precedence": "str",
    "created": "time", "drill": "time", "refs?": ("list", "str"), "case?": "str?", "log": ("map", "int"),
    "response": ("opt", {"id": "str", "type": "str", "at": "time"}),
}  # fmt: skip
_RUN = {
    "speed": "number", "nodes": ("map", "str"), "agreement": "str", "wall_start": "time", "wall_end": "time",
    "drill_start": "time", "drill_end": "time",
}  # fmt: skip
_STEP = {
    "kind": "str", "status": "str", "line": "int", "drill": "time", "target": "str?", "id?": "str?",
    "about?": "str?", "error?": "str?", "harness?": "bool",
}  # fmt: skip
_INTERRUPTED = {
    "drill": "time", "variant": "str?", "steps_played": "int", "steps_left": "int", "envelopes": "str",
    "step": ("opt", {"line": "int", "kind": "str", "status": "str", "label": "str?"}),
    "next": ("opt", {"line": "int", "kind": "str", "drill": "time", "label": "str?"}),
}  # fmt: skip
FACTS: dict[str, Any] = {
    "format": "str",
    "scenario": {"title": "str", "variant": "str?"},
    "run": _RUN,
    "clock": {"samples": ("list", ("pair", "time")), "jumps": ("list", ("pair", "time"))},
    "deadlines": ("map", ("map", "number")),
    "incidents": ("list", {"label": "str", "kind": "str", "drill": "time"}),
    "steps": ("list", _STEP),
    "envelopes": ("list", _ENVELOPE),
    "links": {"events": ("list", {"node": "str", "peer": "str?", "state": "str?", "wall": "time"})},
    "workflows?": ("map", ("map", ("map", "dict"))),  # reports from before workflows were collected lack it
    # each node's newest checkpoint with its peer's cosignature, when the run collected it
    "checkpoints?": ("map", {"size": "int", "note": "str"}),
    "checkpoints_missing?": ("map", "str"),  # a node the run has no checkpoint of, and why
    # each node's log key and witness key (C2SP vkeys), with which its checkpoints are verified
    "keys?": ("map", {"log": "str", "witness": "str"}),
    "interrupted?": _INTERRUPTED,  # a partial run: where it stopped
}


def check(data: Any) -> None:
    """Check a report's facts against `FACTS`, then what it derives from them against a recomputation.

    Raises `Invalid` naming the first field that is wrong, or the first stored value (an envelope's
    drill time, a figure) that its facts do not give, with both values.
    """
    if not isinstance(data, dict):
        raise Invalid("is not a drill report: the file holds no JSON object")
    if data.get("format") != FORMAT:
        raise Invalid(f"is not a drill report: format is {data.get('format')!r}, not {FORMAT!r}")
    problem = _check(data, FACTS, "")
    if problem is not None:
        raise Invalid(f"is not a complete drill report: {problem}")
    problem = drill_consistency.problem(data)
    if problem is not None:
        raise Invalid(f"was edited or is damaged: {problem}")


def _check(value: Any, shape: Any, path: str) -> str | None:
    """Return the first problem of `value` against `shape`, as `path: problem`, or None."""
    if isinstance(shape, str):
        return _scalar(value, shape, path)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{path or 'the report'}: must be an object, not {_kind(value)}"
        for name, inner in shape.items():
            key = name.rstrip("?")
            where = f"{path}.{key}" if path else key
            if key not in value:
                if name.endswith("?"):
                    continue
                return f"{where}: missing"
            problem = _check(value[key], inner, where)
            if problem is not None:
                return problem
        return None
    kind, inner = shape
    if kind == "opt":
        return None if value is None else _check(value, inner, path)
    if kind == "map":
        if not isinstance(value, dict):
            return f"{path}: must be an object, not {_kind(value)}"
        items = [(f"{path}.{key}", item) for key, item in value.items()]
    else:
        if not isinstance(value, list) or (kind == "pair" and len(value) != 2):
            return f"{path}: must be a list{' of two' if kind == 'pair' else ''}, not {_kind(value)}"
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    for where, item in items:
        problem = _check(item, inner, where)
        if problem is not None:
            return problem
    return None


def _scalar(value: Any, shape: str, path: str) -> str | None:
    name = shape.rstrip("?")
    if value is None and shape.endswith("?"):
        return None
    if name == "str" and isinstance(value, str):
        return None
    if name == "dict" and isinstance(value, dict):
        return None
    if name == "bool" and isinstance(value, bool):
        return None
    if name == "int" and isinstance(value, int) and not isinstance(value, bool):
        return None
    if name == "number" and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return None
    if name == "time" and isinstance(value, str):
        try:
            parse_time(value)
        except Invalid as exc:
            return f"{path}: {exc.detail}"
        return None
    expected = {"str": "a text", "dict": "an object", "bool": "true or false", "int": "a whole number",
                "number": "a number"}  # fmt: skip
    return f"{path}: must be {expected.get(name, 'a time')}, not {_kind(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false"}.get(
        type(value), repr(value) if isinstance(value, int | float) else type(value).__name__
    )
