"""Precedence deadlines, wire times and date-time groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detente.core.precedence import Precedence, deadline_for, dtg, format_time, parse_precedence, parse_time
from detente.errors import Invalid

T = datetime(2024, 1, 16, 13, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("precedence", "minutes"),
    [(Precedence.FLASH, 10), (Precedence.IMMEDIATE, 30), (Precedence.PRIORITY, 180), (Precedence.ROUTINE, 360)],
)
def test_default_deadlines(precedence: Precedence, minutes: int) -> None:
    assert deadline_for(T, precedence) - T == timedelta(minutes=minutes)


def test_agreement_overrides_a_deadline() -> None:
    assert deadline_for(T, Precedence.FLASH, {Precedence.FLASH: timedelta(minutes=5)}) - T == timedelta(minutes=5)


def test_rank_orders_most_urgent_first() -> None:
    assert sorted(["ROUTINE", "FLASH", "PRIORITY"], key=lambda p: Precedence(p).rank) == [
        "FLASH",
        "PRIORITY",
        "ROUTINE",
    ]
    with pytest.raises(Invalid, match="unknown precedence"):
        parse_precedence("FLASH OVERRIDE")


def test_dtg() -> None:
    assert dtg(T) == "161305ZJAN24"
    assert dtg(datetime(2024, 12, 1, 0, 0, tzinfo=UTC)) == "010000ZDEC24"


def test_time_round_trip_and_strictness() -> None:
    assert format_time(T) == "2024-01-16T13:05:00.000Z"
    assert parse_time("2024-01-16T13:05:00Z") == T
    assert parse_time("2024-01-16T13:05:00.5Z") == T + timedelta(milliseconds=500)
    persian = "۲۰۲۴-۰۱-۱۶T۱۳:۰۵:۰۰Z"  # the same time in Persian digits: not RFC 3339
    arabic_indic = "2024-01-16T13:05:0٠Z"
    for bad in (
        "2024-01-16T13:05:00+05:00",
        "2024-01-16",
        "16 Jan 2024",
        "2024-13-01T00:00:00Z",
        "",
        persian,
        arabic_indic,
    ):
        with pytest.raises(Invalid):
            parse_time(bad)
