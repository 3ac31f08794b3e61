"""Forms generated from the JSON Schema of each message type, and their answers turned back into bodies.

`fields_for(schema)` flattens a pydantic-generated schema into a list of `FormField`s: nested
objects become groups (a fieldset legend) whose members have dotted paths (`location.lat`); `$ref`
and `anyOf: [X, null]` (an optional X) are resolved. Inputs are named `b.<path>`.

`body_from_form` converts what the browser sent. It never judges the values: text that does not
parse as the number a field wants is passed on as text, so that the node's own validation (the
same that checks API requests) reports the error, and `place_errors` puts each of the node's
field errors (`location.lat`, `questions.0`) on the input it belongs to. `explain_errors` does the
same and words each error as a plain English sentence naming its field, and the line of a list
(`form_errors`: the node's own messages are English, like the API's; see docs/console.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FieldKind = Literal["text", "textarea", "integer", "number", "datetime", "date", "select", "lines", "points", "json"]
PREFIX = "b."
PARAM_PREFIX = "p."
_MISSING = object()
POINT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*[,;\s]\s*([-+]?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class FormField:
    """One input (or, with `group`, the legend of a nested object) of a generated form."""

    path: str
    title: str  # the schema's title: an English message id, translated when shown
    kind: FieldKind
    required: bool
    depth: int = 0
    options: tuple[str, ...] = ()
    group: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None  # of a text input: the browser stops typing there (the node's limit)

    @property
    def name(self) -> str:
        """The input's name in the form."""
        return PREFIX + self.path

    @property
    def dom_id(self) -> str:
        """An element id for the input (paths contain dots, which CSS selectors dislike)."""
        return "f-" + self.path.replace(".", "-")


def _resolve(node: dict[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return (the schema `node` stands for, whether it may be null)."""
    nullable = False
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        nullable = len(branches) < len(node["anyOf"])
        node = {**branches[0], **{k: v for k, v in node.items() if k not in ("anyOf",)}} if branches else {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = dict(defs.get(ref.rsplit("/", 1)[-1], {}))
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node, nullable


def _title(name: str, node: Mapping[str, Any]) -> str:
    title = node.get("title")
    return str(title) if title else name.replace("_", " ").capitalize()


def _kind(node: Mapping[str, Any], defs: Mapping[str, Any]) -> FieldKind:
    kind = node.get("type")
    if "enum" in node:
        return "select"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "array":
        items, _ = _resolve(dict(node.get("items", {})), defs)
        if items.get("type") == "string":
            return "lines"
        if set(items.get("properties", {})) == {"lat", "lon"}:
            return "points"
        return "json"
    if kind == "object" or isinstance(kind, list):
        return "json"
    if node.get("format") == "date-time":
        return "datetime"
    limit = node.get("maxLength")
    return "textarea" if limit is None or int(limit) > 200 else "text"


def fields_for(schema: Mapping[str, Any]) -> list[FormField]:
    """Return the form fields of a type's body schema, depth first in declaration order."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    out: list[FormField] = []

    def walk(node: Mapping[str, Any], prefix: str, required_here: bool, depth: int) -> None:
        required = set(node.get("required", []))
        for name, raw in node.get("properties", {}).items():
            child, nullable = _resolve(dict(raw), defs)
            path = f"{prefix}{name}"
            needed = required_here and name in required and not nullable
            if child.get("type") == "object" and child.get("properties"):
                out.append(FormField(path, _title(name, raw), "json", needed, depth, group=True))
                walk(child, path + ".", needed, depth + 1)
                continue
            kind = _kind(child, defs)
            options = tuple(str(v) for v in child.get("enum", ()))
            low = child.get("minimum", child.get("exclusiveMinimum"))
            high = child.get("maximum", child.get("exclusiveMaximum"))
            limit = child.get("maxLength") if kind in ("text", "textarea") else None
            out.append(
                FormField(path, _title(name, raw), kind, needed, depth, options,
                          minimum=None if low is None else float(low), maximum=None if high is None else float(high),
                          max_length=None if limit is None else int(limit))
            )  # fmt: skip

    walk(schema, "", True, 0)
    return out


def _number(text: str, integer: bool) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text  # the node will say it is not a number
    return value if not integer or not value.is_integer() else int(value)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def utc_time(text: str) -> str:
    """Turn `2024-01-16 13:05`, `2024-01-16T13:05:09` (read as UTC) into RFC 3339 UTC; leave anything else."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?(Z)?", text.strip())
    if not match:
        return text
    date, hhmm, seconds, _ = match.groups()
    return f"{date}T{hhmm}{seconds or ':00'}Z"


def convert(kind: FieldKind, raw: str) -> Any:
    """Return the JSON value of one input, or `_MISSING` when it was left empty."""
    text = raw.strip()
    if not text:
        return _MISSING
    if kind in ("integer", "number"):
        value = _number(text, kind == "integer")
        # NaN and infinity (`1e999`) are floats but no JSON number: passed on as text, the node
        # says "not a number" instead of comparing NaN with a bound or failing to canonicalise.
        return text if isinstance(value, float) and not math.isfinite(value) else value
    if kind == "datetime":
        return utc_time(text)
    if kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if kind == "points":
        points: list[Any] = []
        for line in (x for x in text.splitlines() if x.strip()):
            match = POINT.match(line)
            points.append({"lat": float(match.group(1)), "lon": float(match.group(2))} if match else line.strip())
        return points
    if kind == "json":
        try:  # NaN, Infinity and 1e999 are not JSON numbers: the text goes to the node as it is
            return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return text
    if kind == "textarea":
        # Browsers send a text area's line breaks as CRLF but count each as one character against
        # `maxlength`; as LF the node counts them the same way.
        return raw.replace("\r\n", "\n").rstrip()
    return text


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value


def body_from_form(fields: list[FormField], form: Mapping[str, str]) -> dict[str, Any]:
    """Return the message body the form describes (empty inputs are left out)."""
    body: dict[str, Any] = {}
    for field in fields:
        if field.group:
            continue
        value = convert(field.kind, form.get(field.name, ""))
        if value is not _MISSING:
            _put(body, field.path, value)
    return body


def values_of(form: Mapping[str, str]) -> dict[str, str]:
    """Return what the operator typed, by field path, to fill the form again after an error."""
    return {k[len(PREFIX) :]: v for k, v in form.items() if k.startswith(PREFIX)}


def place_errors(paths: list[str], errors: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Map the node's field errors onto form paths; return (path -> message, messages left over).

    An error on `questions.0` goes to `questions`, one on `location` (a whole group) to the group,
    one on `body.location.lat` to `location.lat`. Errors that fit no field are returned for the
    top of the form.
    """
    placed: dict[str, str] = {}
    rest: list[str] = []
    for key, message in errors.items():
        path = key.removeprefix("body.")
        best = max((p for p in paths if path == p or path.startswith(p + ".")), key=len, default=None)
        if best is None:
            rest.append(f"{key}: {message}")
        else:
            placed[best] = f"{placed[best]}; {message}" if best in placed else message
    return placed, rest


def code_params(kinds: Mapping[str, str], form: Mapping[str, str]) -> dict[str, Any]:
    """Return a codebook entry's parameters from inputs named `p.<name>` (kind: text, int, ...)."""
    params: dict[str, Any] = {}
    for name, kind in kinds.items():
        raw = form.get(PARAM_PREFIX + name, "").strip()
        if not raw:
            continue
        if kind in ("int", "number"):
            params[name] = _number(raw, kind == "int")
        elif kind == "time":
            params[name] = utc_time(raw)
        else:
            params[name] = raw
    return params
