"""Military precedence, handling deadlines, UTC times and date-time groups.

Handling objectives follow ACP 121 practice (reference/domain.md §4.1): FLASH within 10 minutes,
IMMEDIATE 30 minutes, PRIORITY 3 hours, ROUTINE 6 hours. An agreement may set others per channel.
Times on the wire are RFC 3339 UTC with millisecond precision and a "Z" (`2024-01-16T13:05:00.000Z`);
the date-time group is `DDHHMMZMONYY` (`161305ZJAN24`).
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta

from detente.errors import Invalid


class Precedence(enum.StrEnum):
    """The four message precedences, highest first."""

    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"

    @property
    def rank(self) -> int:
        """0 for FLASH ... 3 for ROUTINE: sort ascending to put the most urgent first."""
        return list(Precedence).index(self)


DEFAULT_DEADLINES: dict[Precedence, timedelta] = {
    Precedence.FLASH: timedelta(minutes=10),
    Precedence.IMMEDIATE: timedelta(minutes=30),
    Precedence.PRIORITY: timedelta(hours=3),
    Precedence.ROUTINE: timedelta(hours=6),
}

# ASCII digits only: `\d` alone also matches other scripts' digits (Persian ۲, Arabic-Indic ٢), which
# `int` reads, so "۲۰۲۴-…" would pass as a time while RFC 3339 allows only ASCII.
_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$", re.ASCII)
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def parse_precedence(value: str) -> Precedence:
    """Return the precedence named `value`. Raises `Invalid` for an unknown name."""
    try:
        return Precedence(value)
    except ValueError:
        raise Invalid(
            f"unknown precedence {value!r}; expected one of {', '.join(p.value for p in Precedence)}"
        ) from None


def format_time(moment: datetime) -> str:
    """Return `moment` as RFC 3339 UTC with milliseconds, e.g. `2024-01-16T13:05:00.000Z`.

    A naive `moment` is taken as local time, as `datetime.astimezone` does.
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # `isoformat` is C and pads the year to four digits (strftime's %Y does not for years < 1000,
    # which `parse_time` would then refuse); every message formats two or three times.
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 UTC time ending in "Z". Raises `Invalid` on anything else."""
    # The pattern decides what is accepted (`fromisoformat` alone takes offsets, week dates and
    # more); `fromisoformat` then reads the matched text in C, a fifth of the time of reading the
    # groups in Python.
    if not isinstance(value, str) or not _TIME.match(value):
        raise Invalid(f"time {value!r} is not RFC 3339 UTC (e.g. 2024-01-16T13:05:00Z)")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"time {value!r} is not a real date: {exc}") from None


def now() -> datetime:
    """Return the current time in UTC, truncated to milliseconds (the wire precision)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def dtg(moment: datetime) -> str:
    """Return the date-time group of `moment`, e.g. `161305ZJAN24`."""
    moment = moment.astimezone(UTC)
    return f"{moment:%d%H%M}Z{_MONTHS[moment.month - 1]}{moment:%y}"


def deadline_for(
    created: datetime, precedence: Precedence, overrides: dict[Precedence, timedelta] | None = None
) -> datetime:
    """Return when a message of `precedence` created at `created` must be acknowledged."""
    table = {**DEFAULT_DEADLINES, **(overrides or {})}
    return created + table[precedence]
