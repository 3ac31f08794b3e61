"""A running node logs a warning that repeats word for word once, then every `REPEAT_EVERY` seconds
(`node.database.RepeatedWarnings`): a database that is down no longer fills the log every tick."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from detente.node import database
from detente.node.database import RepeatedWarnings

DOWN = "deadline check failed: the database postgresql+psycopg://u@h/db is unavailable: Connection refused"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr(database.time, "monotonic", ticking)
    return ticking


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Filter the `detente` loggers, as a starting node does; yield what reads the lines that got through."""
    logging.getLogger("detente.schedule")  # as their modules make them at import
    logging.getLogger("detente.database")
    repeats = RepeatedWarnings()
    repeats.attach()
    try:
        with caplog.at_level(logging.INFO, logger="detente"):
            yield lambda: [f"{r.name}: {r.getMessage()}" for r in caplog.records]
    finally:
        repeats.detach()


def test_a_repeated_warning_is_logged_once_then_every_thirty_seconds_with_a_count(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    schedule = logging.getLogger("detente.schedule")
    repeats = RepeatedWarnings()
    repeats.attach()
    try:
        with caplog.at_level(logging.INFO, logger="detente"):
            for _ in range(60):  # 30 s of ticks, 0.5 s apart
                schedule.warning("deadline check failed: %s", DOWN.partition(": ")[2])
                clock.now += 0.5
            schedule.warning("deadline check failed: %s", DOWN.partition(": ")[2])
    finally:
        repeats.detach()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [DOWN, f"{DOWN} (59 more times in the last 30 s)"]


def test_other_lines_and_other_levels_go_through(clock: Clock, logged: Callable[[], list[str]]) -> None:
    schedule = logging.getLogger("detente.schedule")
    for _ in range(3):
        schedule.warning(DOWN)
        schedule.warning("could not record a link test: another cause")
        schedule.info("an info line")
        schedule.error("an error line")
        clock.now += 0.5
    assert logged() == [
        f"detente.schedule: {DOWN}",
        "detente.schedule: could not record a link test: another cause",
        "detente.schedule: an info line",
        "detente.schedule: an error line",
        "detente.schedule: an info line",
        "detente.schedule: an error line",
        "detente.schedule: an info line",
        "detente.schedule: an error line",
    ]


def test_the_database_back_lets_the_next_failure_through_at_once(clock: Clock, logged: Callable[[], list[str]]) -> None:
    schedule, store = logging.getLogger("detente.schedule"), logging.getLogger("detente.database")
    schedule.warning(DOWN)
    schedule.warning(DOWN)
    store.warning("the database postgresql+psycopg://u@h/db is available again", extra={"recovered": True})
    clock.now += 1
    schedule.warning(DOWN)  # down again: said at once, not 30 s later
    assert logged() == [
        f"detente.schedule: {DOWN}",
        "detente.database: the database postgresql+psycopg://u@h/db is available again",
        f"detente.schedule: {DOWN}",
    ]


def test_a_stopped_node_filters_nothing(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    schedule = logging.getLogger("detente.schedule")
    repeats = RepeatedWarnings()
    repeats.attach()
    repeats.detach()
    with caplog.at_level(logging.WARNING, logger="detente"):
        schedule.warning(DOWN)
        schedule.warning(DOWN)
    assert [r.getMessage() for r in caplog.records] == [DOWN, DOWN]


def test_two_nodes_in_one_process_count_the_same_line(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    schedule = logging.getLogger("detente.schedule")
    first, second = RepeatedWarnings(), RepeatedWarnings()
    first.attach()
    second.attach()
    try:
        with caplog.at_level(logging.WARNING, logger="detente"):
            for _ in range(4):
                schedule.warning(DOWN)
                clock.now += 10
    finally:
        first.detach()
        second.detach()
    assert [r.getMessage() for r in caplog.records] == [DOWN, f"{DOWN} (2 more times in the last 30 s)"]


def test_a_line_that_does_not_format_is_left_to_the_handler() -> None:
    record = logging.LogRecord("detente.schedule", logging.WARNING, __file__, 1, "%d", ("x",), None)
    assert RepeatedWarnings().filter(record) is True
