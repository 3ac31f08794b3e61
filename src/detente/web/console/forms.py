"""Forms generated from the JSON Schema of each message type, and their answers turned back into bodies.

`fields_for(schema)` flattens a pydantic-generated schema into a list of `FormField`s: nested
objects become groups (a fieldset legend) whose members have dotted paths (`location.lat`); `$ref`
and `anyOf: [X, null]` (an optional X) are resolved. Inputs are named `b.<path>`. A list of flat
objects (the action items of minutes) is a `rows` field: one row of inputs per object, named
`b.<path>.<row>.<column>`, its `id` column given in order (`A1`, `A2`, ...) rather than typed.

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
from dataclasses import dataclass, replace
from typing import Any, Literal

FieldKind = Literal[
    "text", "textarea", "integer", "number", "datetime", "date", "select", "lines", "points", "json", "rows"
]
PREFIX = "b."
PARAM_PREFIX = "p."
_MISSING = object()
POINT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*[,;\s]\s*([-+]?\d+(?:\.\d+)?)\s*$")
ROW_ID = "id"  # the column of a `rows` field that numbers its rows: A1, A2, ...
MAX_ROWS = 100  # rows of a `rows` field read from a form (minutes hold up to 50 items: the node says so)


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
    columns: tuple[FormField, ...] = ()  # of a `rows` field: one input per column, paths relative to a row
    option_texts: tuple[str, ...] = ()  # what a select shows for each of `options`, if not their labels

    @property
    def name(self) -> str:
        """The input's name in the form."""
        return PREFIX + self.path

    @property
    def dom_id(self) -> str:
        """An element id for the input (paths contain dots, which CSS selectors dislike)."""
        return "f-" + self.path.replace(".", "-")

    @property
    def typed_columns(self) -> tuple[FormField, ...]:
        """The columns of a `rows` field that are typed in (the `id` column is given)."""
        return tuple(c for c in self.columns if c.path != ROW_ID)

    def rows(self, values: Mapping[str, str]) -> range:
        """Return the row numbers of a `rows` field to show: every row typed in, and at least one."""
        return range(max(1, row_count(self.path, values)))

    def cell(self, row: int, column: FormField) -> FormField:
        """Return the input of one cell of a `rows` field, its path `<path>.<row>.<column>`."""
        return replace(column, path=f"{self.path}.{row}.{column.path}")


def row_id(row: int) -> str:
    """Return the id given to the action item (the row) numbered `row` from 0: `A1`, `A2`, ..."""
    return f"A{row + 1}"


def row_count(path: str, values: Mapping[str, Any]) -> int:
    """Return how many rows of the `rows` field at `path` the values (keyed `<path>.<row>.<column>`) hold."""
    head = path + "."
    numbers = {k[len(head) :].split(".", 1)[0] for k in values if k.startswith(head)}
    # A row numbered beyond MAX_ROWS comes only from a form altered by hand: it is not read.
    rows = [int(n) for n in numbers if n.isascii() and n.isdigit() and len(n) <= 3 and int(n) < MAX_ROWS]
    return max(rows) + 1 if rows else 0


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
        if _flat_object(items, defs) and "sha256" not in items.get("properties", {}):
            # Evidence stays a JSON list: the upload script fills it with each stored file.
            return "rows"
        return "json"
    if kind == "object" or isinstance(kind, list):
        return "json"
    if node.get("format") == "date-time":
        return "datetime"
    limit = node.get("maxLength")
    return "textarea" if limit is None or int(limit) > 200 else "text"


def _flat_object(node: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    """Return whether `node` is an object whose members are all single values (no object, no list)."""
    members = node.get("properties", {})
    return bool(members) and all(
        _resolve(dict(m), defs)[0].get("type") not in ("object", "array", None) for m in members.values()
    )


def _columns(node: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[FormField, ...]:
    items, _ = _resolve(dict(node.get("items", {})), defs)
    required = set(items.get("required", []))
    out = []
    for name, raw in items.get("properties", {}).items():
        child, nullable = _resolve(dict(raw), defs)
        kind = _kind(child, defs)
        limit = child.get("maxLength") if kind in ("text", "textarea") else None
        # A cell is one line: a long text is a text input all the same, stopped at the node's limit.
        out.append(FormField(name, _title(name, raw), "text" if kind == "textarea" else kind,
                             name in required and not nullable, options=tuple(str(v) for v in child.get("enum", ())),
                             max_length=None if limit is None else int(limit)))  # fmt: skip
    return tuple(out)


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
                          max_length=None if limit is None else int(limit),
                          columns=_columns(child, defs) if kind == "rows" else ())
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


def _rows(field: FormField, form: Mapping[str, str]) -> Any:
    """Return the list a `rows` field describes (rows left blank are left out), or `_MISSING` if none."""
    out: list[dict[str, Any]] = []
    for row in range(row_count(field.name, form)):
        item: dict[str, Any] = {}
        for column in field.columns:
            value = convert(column.kind, form.get(f"{field.name}.{row}.{column.path}", ""))
            if value is not _MISSING:
                item[column.path] = value
        if item:
            if any(c.path == ROW_ID for c in field.columns):
                item.setdefault(ROW_ID, row_id(len(out)))
            out.append(item)
    return out or _MISSING


def compact_rows(fields: list[FormField], form: Mapping[str, str]) -> dict[str, str]:
    """Return the form with the blank rows of its `rows` fields left out and the others numbered from 0.

    The node numbers the items of a list as the body holds them (`items.1.due`): so do the rows shown again.
    """
    out = dict(form)
    for field in fields:
        if field.kind != "rows":
            continue
        head = field.name + "."
        rows = [
            {c.path: form.get(f"{head}{n}.{c.path}", "") for c in field.columns}
            for n in range(row_count(field.name, form))
        ]
        for key in [k for k in out if k.startswith(head)]:
            del out[key]
        kept = [r for r in rows if any(v.strip() for v in r.values())]
        for n, row in enumerate(kept):
            out.update({f"{head}{n}.{column}": value for column, value in row.items() if column != ROW_ID})
    return out


def body_from_form(fields: list[FormField], form: Mapping[str, str]) -> dict[str, Any]:
    """Return the message body the form describes (empty inputs are left out)."""
    body: dict[str, Any] = {}
    for field in fields:
        if field.group:
            continue
        if field.kind == "rows":
            value = _rows(field, form)
        else:
            value = convert(field.kind, form.get(field.name, ""))
        if isinstance(value, str) and field.path.rsplit(".", 1)[-1] == "sha256":
            value = value.strip().lower()  # the record writes a digest in lower case; people copy it either way
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
