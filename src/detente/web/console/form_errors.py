"""The node's errors on a compose form, worded as plain English sentences naming their fields.

`explain_errors` puts each of the node's field errors on the input it belongs to (as
`forms.place_errors` does) and words it as a sentence an officer reads at once, naming the field as
the form shows it: "Location · Latitude must be a number from -90 to 90." rather than pydantic's
"Input should be less than or equal to 90", and "Window · Start must be a UTC time written like
2024-01-16 13:05" rather than the node's "time 'tomorrow' is not RFC 3339 UTC". The node's own
messages are English, like the API's (docs/console.md); the console translates its own words, not
the node's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from detente.web.console.forms import POINT, FormField, row_id
from detente.web.console.labels import FIELDS, humanise

# The request members the compose form's own inputs stand for, named as an officer knows them.
MEMBERS = {
    "precedence": "Precedence", "refs": "In reply to", "case": "Case", "type": "Message type", "channel": "Channel",
    "to": "Addressee", "lang": "Language", "body": "The message", "code": "Code", "params": "Parameters",
}  # fmt: skip
_POINT_PARTS = {"lat": "the latitude", "lon": "the longitude"}
# A rule's message that starts with one of these has left out its subject: the field's name goes first.
_VERBS = frozenset(
    "is are was were must may should cannot can has have does do lists names needs takes belongs ends starts".split()
)
# pydantic's words for a type or constraint, as a predicate about the field (matched in this order).
_PYDANTIC: tuple[tuple[str, str], ...] = (
    (r"Field required", "is required"),
    (r"Input should be a valid number.*", "must be a number"),
    (r"Input should be a valid integer.*", "must be a whole number"),
    (r"Input should be a finite number", "must be a finite number"),
    (r"Input should be a valid string", "must be text"),
    (r"Input should be a valid boolean.*", "must be true or false"),
    (r"Input should be a valid (?:dictionary|object).*", "must be a JSON object, in braces { }"),
    (r"Input should be a valid (?:list|array|tuple).*", "must be a list"),
    (r"Extra inputs are not permitted", "is not a field of this message"),
)


_NOT_A_NUMBER = re.compile(r"Input should be a valid (?:number|integer)")
# pydantic's words for a number beyond an inclusive bound of its field: said like a number that is none, with
# the range (an exclusive bound keeps pydantic's words: "from 0" would not say that 0 itself is refused).
_OUT_OF_RANGE = re.compile(r"Input should be (?:greater|less) than or equal to \S+")
# The node's words for a time that is not one (`precedence.parse_time`), said in the form's own format.
_NOT_A_TIME = re.compile(r"time .* is not RFC 3339 UTC.*", re.DOTALL)
_NOT_A_DATE = re.compile(r"time .* is not a real date.*", re.DOTALL)
TIME_EXAMPLE = "2024-01-16 13:05"  # as the form's placeholder writes a time
_DOTTED = re.compile(r"(?<![\w.])[a-z_]+(?:\.[a-z_]+)+(?!\w|\.\w)")  # a field's path in a sentence


def plain_number(value: float) -> str:
    """Return a number as people write it, never in exponent notation: 1000000, 0.5, -90."""
    if value.is_integer():
        return str(int(value))
    return f"{value:f}".rstrip("0").rstrip(".")


def english_label(field: FormField) -> str:
    """Return a field's English label without its hint in brackets: `Time (UTC)` -> `Time`."""
    text = FIELDS.get(field.title, humanise(field.title))
    return re.sub(r"\s*\(.*\)$", "", text) or text


def _finish(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def sentence(subject: str, message: str) -> str:
    """Return an error `message` about `subject` as one plain English sentence naming it.

    pydantic's `Input should be less than or equal to 90` about `Latitude` becomes `Latitude must
    be less than or equal to 90.`; a rule's message that leaves out its subject (`must not be
    blank`, `is 3 h after the message was created; ...`) gets the subject in front; any other
    message reads `Subject: message.` Raises nothing.
    """
    text = re.sub(r"^(?:Value error|Assertion failed), ", "", message.strip()).replace(" after validation", "")
    for pattern, predicate in _PYDANTIC:
        if re.fullmatch(pattern, text, re.DOTALL):
            return _finish(f"{subject} {predicate}")
    choices = re.fullmatch(r"Input should be ((?:'[^']*'(?:, | or )?)+)", text)
    if choices:
        return _finish(f"{subject} must be one of: {choices.group(1).replace(chr(39), '')}")
    should = re.fullmatch(r"(?:Input|String|List|Value|Dictionary|Tuple|Set|Object|Decimal) should (.*)", text, re.S)
    if should:
        return _finish(f"{subject} must {should.group(1)}")
    first = text.split(" ", 1)[0]
    return _finish(f"{subject} {text}" if first in _VERBS else f"{subject}: {text}")


def member_sentence(key: str, message: str) -> str:
    """Return an error on a request member (`precedence`, `refs.0`) as a sentence naming it. Raises nothing."""
    head, _, index = key.removeprefix("body.").partition(".")
    name = MEMBERS.get(head, humanise(key))
    return sentence(f"{name}, item {int(index) + 1}" if head in MEMBERS and index.isdigit() else name, message)


def _number_sentence(field: FormField, label: str, raw: str) -> str:
    whole = field.kind == "integer"
    wanted = "a whole number" if whole else "a number"
    if field.minimum is not None and field.maximum is not None:
        wanted += f" from {plain_number(field.minimum)} to {plain_number(field.maximum)}"
    return _finish(f"{label} must be {wanted}, not “{raw.strip()}”")


def _time_sentence(subject: str, message: str, raw: str) -> str | None:
    """Return the sentence for a time the node could not read, in the form's format; None for another error."""
    if _NOT_A_TIME.fullmatch(message.strip()):
        return _finish(f"{subject} must be a UTC time written like {TIME_EXAMPLE}, not “{raw.strip()}”")
    if _NOT_A_DATE.fullmatch(message.strip()):
        return _finish(f"{subject}: “{raw.strip()}” is not a real date and time")
    return None


def _cell_sentence(field: FormField, label: str, sub: str, message: str, values: Mapping[str, str]) -> str:
    """Return an error on one row of a `rows` field (`1.due`), naming the row as the form does (`A2`)."""
    index, _, part = sub.partition(".")
    where = f"{label}, {row_id(int(index))}"
    column = next((c for c in field.columns if c.path == part.split(".", 1)[0]), None)
    if column is None:
        return sentence(where, message)
    subject = f"{where} · {english_label(column)}"
    raw = values.get(f"{field.path}.{index}.{column.path}", "")
    said = _time_sentence(subject, message, raw) if column.kind == "datetime" else None
    return said or sentence(subject, message)


def _field_sentence(field: FormField, label: str, sub: str, message: str, values: Mapping[str, str]) -> str:
    raw = values.get(field.path, "")
    index, _, part = sub.partition(".")
    if field.kind in ("integer", "number") and not sub and _NOT_A_NUMBER.match(message):
        return _number_sentence(field, label, raw)
    ranged = field.minimum is not None and field.maximum is not None
    if field.kind in ("integer", "number") and not sub and ranged and _OUT_OF_RANGE.fullmatch(message.strip()):
        return _number_sentence(field, label, raw)  # the same words whichever way the number is wrong
    if field.kind == "datetime" and not sub:
        said = _time_sentence(label, message, raw)
        if said:
            return said
    if field.kind == "rows" and index.isdigit():
        return _cell_sentence(field, label, sub, message, values)
    if field.kind in ("lines", "points") and index.isdigit():
        # The node counts the items the form made, one per non-blank line; the officer counts lines.
        lines = [(n, line.strip()) for n, line in enumerate(raw.splitlines(), 1) if line.strip()]
        number, text = lines[int(index)] if int(index) < len(lines) else (int(index) + 1, "")
        where = f"{label}, line {number}"
        if field.kind == "points" and not part and text and not POINT.match(text):
            example = "write the latitude and longitude in degrees, for example “27.5, 63.1”"
            return _finish(f"{where}: “{text}” is not a position; {example}")
        if part:
            return sentence(f"{where}: {_POINT_PARTS.get(part, part)}", message)
        return sentence(where, message)
    if index.isdigit():  # an item of a list typed as JSON (`evidence.1`)
        label = f"{label}, item {int(index) + 1}"
    return sentence(label, message)


def shown_label(path: str, by_path: Mapping[str, FormField]) -> str:
    """Return a field's name as the form shows it: inside a group, after the group's (`Window · Start`)."""
    parts = path.split(".")
    prefixes = (".".join(parts[: i + 1]) for i in range(len(parts)))
    return " · ".join(english_label(by_path[p]) for p in prefixes if p in by_path)


def _named(text: str, by_path: Mapping[str, FormField]) -> str:
    """Return `text` with the dotted paths of the form's fields (`window.start`) named as the form names them."""

    def name(match: re.Match[str]) -> str:
        path = match.group(0)
        return shown_label(path, by_path) if path in by_path else path

    return _DOTTED.sub(name, text)


def explain_errors(
    fields: list[FormField], errors: Mapping[str, str], values: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Like `place_errors`, with every message a plain sentence naming its field.

    `values` is what was typed, by field path (`values_of`): an error on the second point of a
    polygon names the line it was typed on and quotes it. An error on a cell of a `rows` field is
    placed on that cell (`items.1.due`). Errors that fit no field name the request member
    (`Precedence`, `In reply to`) and are returned for the top of the form. Raises nothing.
    """
    by_path = {f.path: f for f in fields}
    placed: dict[str, str] = {}
    rest: list[str] = []
    for key, message in errors.items():
        path = key.removeprefix("body.")
        best = max((p for p in by_path if path == p or path.startswith(p + ".")), key=len, default=None)
        if best is None:
            rest.append(_named(member_sentence(key, message), by_path))
            continue
        field, sub = by_path[best], path[len(best) + 1 :]
        text = _named(_field_sentence(field, shown_label(best, by_path), sub, message, values), by_path)
        index, _, part = sub.partition(".")
        column = part.split(".", 1)[0]
        if field.kind == "rows" and index.isdigit() and any(c.path == column for c in field.columns):
            best = f"{best}.{index}.{column}"  # the cell's own input
        placed[best] = f"{placed[best]} {text}" if best in placed else text
    return placed, rest


def explain_code_errors(errors: Mapping[str, str]) -> str:
    """Return a codebook message's errors (keyed `params.<name>` or a member) as sentences naming each parameter."""
    said = []
    for key, message in errors.items():
        name = key.removeprefix("params.")
        said.append(sentence(humanise(name), message) if key.startswith("params.") else member_sentence(key, message))
    return " ".join(said)
