"""Precedence deadlines, wire times and date-time groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_time_keeps_four_year_digits_and_converts_other_zones() -> None:
    early = datetime(5, 1, 2, 3, 4, 5, 678_900, tzinfo=UTC)
    assert format_time(early) == "0005-01-02T03:04:05.678Z"
    assert parse_time(format_time(early)) == early.replace(microsecond=678_000)
    tehran = timezone(timedelta(hours=3, minutes=30))
    assert format_time(datetime(2024, 1, 16, 16, 35, tzinfo=tehran)) == "2024-01-16T13:05:00.000Z"
    with pytest.raises(Invalid, match="not a real date"):
        parse_time("2024-02-30T00:00:00Z")


@given(st.datetimes(timezones=st.just(UTC)))
def test_time_round_trips_at_millisecond_precision(moment: datetime) -> None:
    text = format_time(moment)
    parsed = parse_time(text)
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parsed.tzinfo is UTC
    assert format_time(parsed) == text
