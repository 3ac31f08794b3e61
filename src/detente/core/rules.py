"""Rules a message body must keep beyond its schema: lead times, windows, deadlines, the codebook.

A rule is a `Check`: a function of a `Draft` (the body, the agreement and the envelope members
that matter) returning `{field path: what is wrong}`, empty when the body is fine. Rules run only
on bodies that passed their schema. Rules that need the envelope's `created` time do nothing when
it is None (`notifications.validate_body`), so the full set runs only in `validate_message`.

Lead times follow reference/domain.md §3: a pre-notification's lead time is the time from the
envelope's `created` to the start of the notified window, and it must be at least the agreement's
`[lead_times]` value (for `missile.prenotify` at least 72 h whatever the agreement says).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from detente.core import codebook
from detente.core.precedence import Precedence, parse_time

if TYPE_CHECKING:
    from detente.core.agreement import Agreement

# A time a sender reports as past ("the incident happened at", "held at") may run this far ahead
# of the envelope's `created`, to allow for the sender's clock and typing time.
CLOCK_SKEW = timedelta(minutes=5)
MAX_WINDOWS: dict[str, timedelta] = {
    "operation.prenotify": timedelta(days=30),
    "missile.prenotify": timedelta(days=5),  # 2005 India-Pakistan pact: a launch window of 5 days
    "exercise.prenotify": timedelta(days=90),
}


@dataclass(frozen=True)
class Draft:
    """A message as its rules see it. `created` is None when only time-independent rules run."""

    name: str
    body: dict[str, Any]
    agreement: Agreement
    created: datetime | None = None
    precedence: Precedence | None = None
    refs: tuple[str, ...] = ()
    case: str | None = None


Check = Callable[[Draft], dict[str, str]]


def duration(delta: timedelta) -> str:
    """Return a duration as people read it in an error: `41 h`, `71 h 59 min`, `-3 h`."""
    sign = "-" if delta < timedelta(0) else ""
    minutes = int(abs(delta).total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{sign}{hours} h" + (f" {rest} min" if rest else "")


def _at(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def lead_time(draft: Draft) -> dict[str, str]:
    """The window must start at least the agreement's lead time after the message is created."""
    if draft.created is None:
        return {}
    lead = parse_time(draft.body["window"]["start"]) - draft.created
    required = codebook.lead_time(draft.agreement.raw, draft.name)
    if required is None:
        if lead < timedelta(0):
            return {"window.start": f"the window starts {duration(-lead)} before the message was created"}
        return {}
    if lead < required:
        own = draft.name in codebook.lead_times(draft.agreement.raw)
        source = "the agreement's" if own else "the minimum of"
        need = f"{source} {duration(required)} for {draft.name}"
        return {"window.start": f"lead time {duration(lead)} is below {need}"}
    return {}


def window_length(draft: Draft) -> dict[str, str]:
    """The notified window may not be longer than the type allows."""
    window = draft.body["window"]
    length = parse_time(window["end"]) - parse_time(window["start"])
    limit = MAX_WINDOWS[draft.name]
    if length > limit:
        return {
            "window.end": f"the window is {duration(length)} long; {draft.name} allows at most "
            f"{limit.days} days ({duration(limit)})"
        }
    return {}


def not_after_created(path: str) -> Check:
    """Return a rule: the time at `path` (something that happened) is not after `created`."""

    def check(draft: Draft) -> dict[str, str]:
        value = _at(draft.body, path)
        if draft.created is None or value is None:
            return {}
        ahead = parse_time(value) - draft.created
        if ahead > CLOCK_SKEW:
            return {path: f"is {duration(ahead)} after the message was created; it must be in the past"}
        return {}

    return check


def not_long_before_created(path: str, days: int) -> Check:
    """Return a sender's rule: the time at `path` is at most `days` before `created` (a typo of a year
    such as 1900 or 0001 is caught, an event of last month is not)."""

    def check(draft: Draft) -> dict[str, str]:
        value = _at(draft.body, path)
        if draft.created is None or value is None:
            return {}
        behind = draft.created - parse_time(value)
        if behind > timedelta(days=days):
            return {path: f"is {behind.days} days before the message was created; at most {days} are taken"}
        return {}

    return check


def after_created(path: str) -> Check:
    """Return a rule: the time at `path` (a deadline, a start) is after `created`."""

    def check(draft: Draft) -> dict[str, str]:
        value = _at(draft.body, path)
        if draft.created is None or value is None:
            return {}
        if parse_time(value) <= draft.created:
            return {path: "must be after the message is created"}
        return {}

    return check


def respond_by_before_start(draft: Draft) -> dict[str, str]:
    """The addressee's decision is due no later than the start of the operation."""
    respond_by = draft.body.get("respond_by")
    if respond_by is not None and parse_time(respond_by) > parse_time(draft.body["window"]["start"]):
        return {"respond_by": "must not be after window.start"}
    return {}


def code_known(draft: Draft) -> dict[str, str]:
    """The code is in the agreement's codebook and the params are exactly the entry's, typed."""
    code = draft.body["code"]
    entry = codebook.codebook(draft.agreement.raw).get(code)
    if entry is None:
        return {"code": f"{code} is not in the agreement's codebook"}
    return codebook.check_params(entry, draft.body.get("params", {}), ranges=False)


def code_params_in_range(draft: Draft) -> dict[str, str]:
    """A code's counts and distances are within bounds (0..10^9, 0..10^7): a sender's rule.

    Only the sender runs it (`MessageType.sending`): a peer of an earlier release may have sealed
    "-3 killed", and refusing it on receipt would stall the channel behind it.
    """
    entry = codebook.codebook(draft.agreement.raw).get(draft.body["code"])
    return {} if entry is None else codebook.check_params(entry, draft.body.get("params", {}))


def schedule_known(draft: Draft) -> dict[str, str]:
    """A consultation proposed under a schedule names one of the agreement's `[consultations]`."""
    key = draft.body.get("schedule")
    if key is not None and key not in codebook.consultations(draft.agreement.raw):
        return {"schedule": f"{key!r} is not a consultation of the agreement"}
    return {}


def owners_known(draft: Draft) -> dict[str, str]:
    """Every action item's owner is an office of the agreement."""
    errors: dict[str, str] = {}
    for index, item in enumerate(draft.body.get("items", [])):
        if item["owner"] not in draft.agreement.offices:
            errors[f"items.{index}.owner"] = f"{item['owner']} is not an office of the agreement"
    return errors


def distinct_evidence(draft: Draft) -> dict[str, str]:
    """Every evidence item is a file of its own: an item with the sha256 of an earlier one is refused."""
    errors: dict[str, str] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(draft.body.get("evidence", [])):
        earlier = first.setdefault(item["sha256"], index)
        if earlier != index:
            errors[f"evidence.{index}"] = f"lists the same file (sha256 {item['sha256']}) as evidence.{earlier}"
    return errors
