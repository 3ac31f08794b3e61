"""The agreement's vocabulary tables: codebook, lead times, response deadlines, consultations.

These tables sit beside the ones `agreement.py` reads and are validated from the decoded document
(`Agreement.raw`), so this module imports nothing from `agreement.py` (which calls
`validate_extensions` while it loads):

    [[codebook]]                     one pre-agreed short message (1976 US-USSR practice, domain.md §0.3)
    code = "LO-DISPATCHED"           upper-case words joined by "-"
    params = { place = "text", time = "time" }    name -> text | int | number | time | date
    precedence = "IMMEDIATE"         optional: the precedence a console suggests
    [codebook.text]                  one template per language of [agreement].languages, no other;
    en = "Our liaison officer ... {place} ... {time}."   each uses exactly the declared {params}

    [lead_times]                     hours between a pre-notification and the start of its window
    "missile.prenotify" = 72         (may raise, never lower, the built-in 72 h floor)

    [response_deadlines]             hours the addressee has to answer
    "clarification.request" = 48

    [consultations.<key>]            a recurring consultation
    title = "..."   channel = "dgmo"   day_of_month = 15 (1-28) | every_days = 30   time = "06:00" (UTC)
    venue = "..." (optional)   agenda = ["..."] (optional)

Templates use `{name}` placeholders; `{{` and `}}` stand for literal braces.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from detente.core import table_keys
from detente.core.bodies import is_blank
from detente.core.precedence import Precedence, parse_time
from detente.errors import Invalid

PARAM_TYPES = ("text", "int", "number", "time", "date")
# Types whose pre-notification must come this far ahead; the agreement may raise the floor only.
LEAD_TIME_FLOORS: dict[str, timedelta] = {
    "operation.prenotify": timedelta(0),
    "missile.prenotify": timedelta(hours=72),  # 2005 India-Pakistan pact: >= 3 days (domain.md §3)
    "exercise.prenotify": timedelta(0),
}
# Types whose addressee owes an answer, with the default when the agreement is silent.
RESPONSE_DEADLINE_DEFAULTS: dict[str, timedelta | None] = {
    "clarification.request": timedelta(hours=48),  # Vienna Document risk reduction (domain.md §2)
    "operation.prenotify": None,
}
MAX_TEXT_PARAM = 200
# Codebook counts and measures are never negative (`killed`, `radius_km`); the caps refuse absurd
# values ("1e+308 km") and keep every accepted int inside the JSON-safe range (< 2^53), so a
# too-large one is named as `params.<name>` here, not refused later as uncanonicalisable.
MAX_INT_PARAM = 10**9
MAX_NUMBER_PARAM = 10**7
_CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*$")
_PARAM = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CONSULTATION_KEYS = ("title", "channel", "every_days", "day_of_month", "time", "venue", "agenda")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$", re.ASCII)  # wire formats: ASCII digits only
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


@dataclass(frozen=True)
class CodeEntry:
    """One codebook entry: a code, its typed parameters and a template per language."""

    code: str
    params: dict[str, str]  # name -> type, in declaration order
    text: dict[str, str]  # language -> template
    precedence: Precedence | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the entry as JSON for the API and the console."""
        return {
            "code": self.code,
            "params": dict(self.params),
            "text": dict(self.text),
            "precedence": self.precedence.value if self.precedence else None,
        }


@dataclass(frozen=True)
class ConsultationSchedule:
    """A recurring consultation: every `every_days` days, or on `day_of_month` each month."""

    key: str
    title: str
    channel: str
    every_days: int | None
    day_of_month: int | None
    time: str  # "HH:MM" UTC
    venue: str
    agenda: tuple[str, ...]

    def next_after(self, moment: datetime) -> datetime:
        """Return the first scheduled time strictly after `moment` (UTC).

        An `every_days` schedule counts from 2024-01-01 at `time` UTC, so both nodes agree.
        """
        hour, minute = (int(x) for x in self.time.split(":"))
        moment = moment.astimezone(UTC)
        if self.every_days is not None:
            epoch = datetime(2024, 1, 1, hour, minute, tzinfo=UTC)
            step = timedelta(days=self.every_days)
            periods = max(0, (moment - epoch) // step + 1)
            return epoch + step * periods
        assert self.day_of_month is not None
        year, month = moment.year, moment.month
        while True:
            candidate = datetime(year, month, self.day_of_month, hour, minute, tzinfo=UTC)
            if candidate > moment:
                return candidate
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def to_json(self) -> dict[str, Any]:
        """Return the schedule as JSON."""
        return {
            "key": self.key, "title": self.title, "channel": self.channel,
            "every_days": self.every_days, "day_of_month": self.day_of_month, "time": self.time,
            "venue": self.venue, "agenda": list(self.agenda),
        }  # fmt: skip


def languages(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the agreement's languages (default `en`)."""
    head = raw.get("agreement")
    langs = head.get("languages", ["en"]) if isinstance(head, dict) else ["en"]
    return tuple(langs) if isinstance(langs, list) else ("en",)


def placeholders(template: str) -> list[str]:
    """Return the `{name}` placeholders of a template in order. Raises `Invalid` on bad syntax."""
    names: list[str] = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise Invalid(f"template has unbalanced braces: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not _PARAM.match(name) or spec or conversion:
            raise Invalid(f"placeholder {{{name}}} must be a plain parameter name like {{place}}")
        names.append(name)
    return names


def _names(names: Any) -> str:
    return ", ".join("{" + n + "}" for n in sorted(set(names))) or "no placeholders"


def _entry(item: Any, index: int, langs: tuple[str, ...]) -> CodeEntry:
    where = f"[[codebook]] #{index + 1}"
    if not isinstance(item, dict):
        raise Invalid(f"{where}: each entry must be a table")
    code = item.get("code")
    if not isinstance(code, str) or len(code) > 48 or not _CODE.match(code):
        raise Invalid(f"{where}: code must be upper-case words joined by '-', like NO-HOSTILE-INTENT")
    where = f"[[codebook]] {code}"
    refused = table_keys.refusal(item, ("code", "params", "text", "precedence"), where)
    if refused:
        raise Invalid(refused)
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise Invalid(f"{where}: params must be a table of name = type")
    for name, kind in params.items():
        if not _PARAM.match(name):
            raise Invalid(f"{where}: parameter name {name!r} must be lower-case, like place")
        if kind not in PARAM_TYPES:
            raise Invalid(f"{where}: parameter {name} has type {kind!r}; expected one of {', '.join(PARAM_TYPES)}")
    precedence = item.get("precedence")
    if precedence is not None and precedence not in Precedence.__members__:
        raise Invalid(f"{where}: unknown precedence {precedence!r}")
    text = item.get("text")
    if not isinstance(text, dict):
        raise Invalid(f"{where}: text must be a table with one template per language")
    every_language(text, langs, f"{where}: text")
    for lang in langs:
        template = text[lang]
        if not isinstance(template, str) or not template.strip() or len(template) > 2000:
            raise Invalid(f"{where}: text.{lang} must be a non-empty string of at most 2000 characters")
        try:
            used = placeholders(template)
        except Invalid as exc:
            raise Invalid(f"{where}: text.{lang}: {exc.detail}") from None
        if set(used) != set(params):
            raise Invalid(f"{where}: text.{lang} uses {_names(used)} but the params are {_names(params)}")
    return CodeEntry(code, dict(params), {lang: text[lang] for lang in langs}, precedence and Precedence(precedence))


def every_language(table: Mapping[str, Any], langs: Sequence[str], what: str) -> None:
    """Refuse a table of one text per language (a codebook text, an office's title) that lacks a
    language of the agreement or has another: `Invalid` with `what` ("[[codebook]] X: text") first."""
    missing = [lang for lang in langs if lang not in table]
    extra = sorted(set(table) - set(langs))
    if missing:
        raise Invalid(f"{what} lacks language(s) {', '.join(missing)} of the agreement")
    if extra:
        raise Invalid(f"{what} has language(s) {', '.join(extra)} the agreement does not list")


def codebook(raw: Mapping[str, Any]) -> dict[str, CodeEntry]:
    """Return the agreement's codebook by code. Raises `Invalid` naming the broken entry."""
    items = raw.get("codebook", [])
    if not isinstance(items, list):
        raise Invalid("[[codebook]]: the codebook must be an array of tables")
    langs = languages(raw)
    book: dict[str, CodeEntry] = {}
    for index, item in enumerate(items):
        entry = _entry(item, index, langs)
        if entry.code in book:
            raise Invalid(f"[[codebook]] {entry.code}: code appears twice")
        book[entry.code] = entry
    return book


def _hours_table(raw: Mapping[str, Any], table: str, allowed: Mapping[str, Any]) -> dict[str, timedelta]:
    values = raw.get(table, {})
    if not isinstance(values, dict):
        raise Invalid(f"[{table}]: must be a table of message type = hours")
    refused = table_keys.refusal(values, allowed, f"[{table}]", "message type")
    if refused:
        raise Invalid(refused)
    out: dict[str, timedelta] = {}
    for name, hours in values.items():
        if not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 < hours <= 24 * 366:
            raise Invalid(f"[{table}]: {name} must be a positive number of hours (at most a year)")
        out[name] = timedelta(hours=hours)
    return out


def lead_times(raw: Mapping[str, Any]) -> dict[str, timedelta]:
    """Return the `[lead_times]` table. Raises `Invalid` for an unknown type or a value below its floor."""
    table = _hours_table(raw, "lead_times", LEAD_TIME_FLOORS)
    for name, value in table.items():
        if value < LEAD_TIME_FLOORS[name]:
            floor = LEAD_TIME_FLOORS[name].total_seconds() / 3600
            raise Invalid(f"[lead_times]: {name} may not be below {floor:g} h")
    return table


def lead_time(raw: Mapping[str, Any], name: str) -> timedelta | None:
    """Return the minimum lead time of type `name`: the agreement's value, else the built-in floor.

    Returns None for a type without a lead-time rule, and None when neither the agreement nor a
    floor above zero sets one.
    """
    if name not in LEAD_TIME_FLOORS:
        return None
    value = lead_times(raw).get(name)
    if value is not None:
        return value
    return LEAD_TIME_FLOORS[name] or None


def response_deadline(raw: Mapping[str, Any], name: str) -> timedelta | None:
    """Return how long the addressee of a `name` message has to answer (agreement, else default)."""
    if name not in RESPONSE_DEADLINE_DEFAULTS:
        return None
    table = _hours_table(raw, "response_deadlines", RESPONSE_DEADLINE_DEFAULTS)
    return table.get(name, RESPONSE_DEADLINE_DEFAULTS[name])


def consultations(raw: Mapping[str, Any]) -> dict[str, ConsultationSchedule]:
    """Return the `[consultations]` schedule by key. Raises `Invalid` naming the broken entry."""
    tables = raw.get("consultations", {})
    if not isinstance(tables, dict):
        raise Invalid("[consultations]: must be a table of consultations")
    channels = raw.get("channels", {})
    out: dict[str, ConsultationSchedule] = {}
    for key, table in tables.items():
        where = f"[consultations.{key}]"
        if not _KEY.match(key) or not isinstance(table, dict):
            raise Invalid(f"{where}: keys are lower-case words like border-security")
        refused = table_keys.refusal(table, _CONSULTATION_KEYS, where)
        if refused:
            raise Invalid(refused)
        title = table.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Invalid(f"{where}: title must be a non-empty string")
        channel = table.get("channel")
        if not isinstance(channel, str) or not isinstance(channels, dict) or channel not in channels:
            raise Invalid(f"{where}: channel must name a channel of the agreement")
        every, day = table.get("every_days"), table.get("day_of_month")
        if (every is None) == (day is None):
            raise Invalid(f"{where}: give exactly one of every_days and day_of_month")
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= 366):
            raise Invalid(f"{where}: every_days must be a whole number from 1 to 366")
        if day is not None and (not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 28):
            raise Invalid(f"{where}: day_of_month must be a whole number from 1 to 28 (every month has it)")
        time = table.get("time", "00:00")
        if not isinstance(time, str) or not _HHMM.match(time):
            raise Invalid(f"{where}: time must be HH:MM in UTC")
        venue = table.get("venue", "")
        agenda = table.get("agenda", [])
        if not isinstance(venue, str):
            raise Invalid(f"{where}: venue must be a string")
        if not isinstance(agenda, list) or not all(isinstance(a, str) and a.strip() for a in agenda):
            raise Invalid(f"{where}: agenda must be a list of non-empty strings")
        out[key] = ConsultationSchedule(key, title, channel, every, day, time, venue, tuple(agenda))
    return out


def validate_extensions(raw: Mapping[str, Any]) -> None:
    """Validate the codebook, lead times, response deadlines and consultations of an agreement.

    Raises `Invalid` naming the table and entry of the first broken rule.
    """
    codebook(raw)
    lead_times(raw)
    _hours_table(raw, "response_deadlines", RESPONSE_DEADLINE_DEFAULTS)
    consultations(raw)


def check_params(entry: CodeEntry, params: Mapping[str, Any], *, ranges: bool = True) -> dict[str, str]:
    """Return field errors (`params.<name>` -> message) for `params` against the entry; empty if fine.

    An `int` must be a whole number from 0 to `MAX_INT_PARAM`, a `number` a finite number from 0 to
    `MAX_NUMBER_PARAM`; `ranges=False` checks the types only.
    """
    errors: dict[str, str] = {}
    for name, kind in entry.params.items():
        if name not in params:
            errors[f"params.{name}"] = f"{entry.code} needs parameter {name} ({kind})"
            continue
        problem = _check_value(kind, params[name]) or (_check_range(kind, params[name]) if ranges else None)
        if problem:
            errors[f"params.{name}"] = problem
    for name in sorted(set(params) - set(entry.params)):
        errors[f"params.{name}"] = f"{entry.code} has no parameter {name}"
    return errors


def _check_value(kind: str, value: Any) -> str | None:
    if kind == "text":
        ok = isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_TEXT_PARAM
        return None if ok else f"must be a non-empty string of at most {MAX_TEXT_PARAM} characters"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if kind == "date":
        try:
            if isinstance(value, str) and _DATE.match(value):
                date.fromisoformat(value)
                return None
        except ValueError:
            pass
        return "must be a date like 2024-01-26"
    try:
        parse_time(value)
    except Invalid:
        return "must be an RFC 3339 UTC time like 2024-01-18T01:00:00Z"
    return None


def _check_range(kind: str, value: Any) -> str | None:
    # Called on a value `_check_value` accepted. The comparisons come first: they hold for ints of
    # any size and are false for NaN; `-0.0` counts as negative, since it would render as "-0".
    if kind == "text" and is_blank(value):  # zero-width spaces alone say nothing either
        return "must say something: it holds only spaces or invisible characters"
    if kind == "int" and not 0 <= value <= MAX_INT_PARAM:
        return f"must be a whole number from 0 to {MAX_INT_PARAM}"
    if kind == "number" and (not 0 <= value <= MAX_NUMBER_PARAM or math.copysign(1, value) < 0):
        return f"must be a finite number from 0 to {MAX_NUMBER_PARAM}"
    return None


def _format(kind: str, value: Any) -> str:
    if kind == "time":
        return parse_time(value).strftime("%Y-%m-%d %H:%M UTC")
    if kind == "number":
        return f"{value:g}"
    return str(value)


def render(entry: CodeEntry, params: Mapping[str, Any], lang: str) -> str:
    """Return the entry's text in `lang` with `params` filled in (times as `2024-01-18 01:00 UTC`).

    Raises `Invalid` (with `fields`) for a missing, extra or ill-typed parameter or an unknown language.
    """
    if lang not in entry.text:
        raise Invalid(
            f"{entry.code} has no text in {lang!r}; languages: {', '.join(entry.text)}",
            fields={"lang": f"not a language of the agreement: {lang!r}"},
        )
    # Types only: a message stored before the ranges existed must still read as text; the rules
    # (`check_params` with ranges) guard what is sent and received.
    errors = check_params(entry, params, ranges=False)
    if errors:
        raise Invalid(f"{entry.code}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    out: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(entry.text[lang]):
        out.append(literal)
        if name is not None:
            out.append(_format(entry.params[name], params[name]))
    return "".join(out)
