"""Workflow states to and from the JSON the projection tables and the API hold.

`state_to_json(state)` is each state's own `to_json()` (the API's shape: a case's escalation and a
consultation's co-signatures as objects keyed by party, a consultation's `parties` added);
`state_from_json(kind, data)` is its exact inverse, so a node can keep a state in a table and apply
the next envelope to it without re-reading the envelopes (`node.workflow`). Members the dataclass
does not declare (`parties`) are ignored on the way back.
"""

from __future__ import annotations

import dataclasses
import types
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from detente.core.workflows import Action, Case, Clarification, Consultation, State
from detente.errors import Invalid

KINDS: dict[str, type[Any]] = {
    "case": Case,
    "clarification": Clarification,
    "action": Action,
    "consultation": Consultation,
}


def kind_of(state: State) -> str:
    """Return the workflow kind of a state: `case`, `clarification`, `action` or `consultation`."""
    for kind, cls in KINDS.items():
        if isinstance(state, cls):
            return kind
    raise TypeError(f"not a workflow state: {type(state).__name__}")


def state_to_json(state: State) -> dict[str, Any]:
    """Return the JSON of a state, as the API shows it."""
    return state.to_json()


def state_from_json(kind: str, data: Any) -> State:
    """Return the state of workflow `kind` that `state_to_json` turned into `data`.

    Raises `Invalid` for an unknown kind or JSON that does not fit the state.
    """
    cls = KINDS.get(kind)
    if cls is None:
        raise Invalid(f"unknown workflow {kind!r}")
    try:
        state: State = _decode(cls, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"stored {kind} state does not fit: {exc}") from None
    return state


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__} must be an object")
        hints = _hints(tp)
        kwargs = {f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value}
        return tp(**kwargs)
    origin = get_origin(tp)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            # Pairs keyed by party are objects in the JSON (`escalation`, `cosigned_by`).
            items = list(value.items()) if isinstance(value, dict) else value
            if not isinstance(items, list):
                raise TypeError("expected a list")
            return tuple(_decode(args[0], item) for item in items)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise TypeError(f"expected a list of {len(args)}")
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if origin is Union or origin is types.UnionType:
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        return _decode(others[0], value)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{value!r} is not one of {get_args(tp)}")
        return value
    if tp is bool and not isinstance(value, bool):
        raise TypeError("expected a boolean")
    if tp is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError("expected an integer")
    if tp is str and not isinstance(value, str):
        raise TypeError("expected a string")
    return value
