"""A PostgreSQL server that restarts or stops under the store (`store.db`, `store.writer`).

A restart is waited out: reads and writes during it succeed once the server is back within
`RETRY_FOR`. A server that stays down is `Unavailable`, naming the database without its password,
after about `RETRY_FOR` (then at once, until a connection succeeds again), and nothing is written.
The server is one of this module's own (`pg_support`): the test run's is shared by every test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from detente.errors import CommitInDoubt, Unavailable
from detente.store import db as store_db
from detente.store import messages as db
from detente.store.db import make_engine, migrate, read_connection
from detente.store.writer import Writer
from pg_support import OwnServer, own_server
from support import envelope_row, run_async

pytestmark = pytest.mark.postgres
PASSWORD = "pw-never-shown-7f3a"


@pytest.fixture(scope="module")
def server() -> Iterator[OwnServer]:
    with own_server() as own:
        yield own


@pytest.fixture
def engine(server: OwnServer) -> Iterator[Engine]:
    eng = make_engine(server.database("outage", PASSWORD))
    migrate(eng)
    try:
        yield eng
    finally:
        if not server.running():  # a test that failed with the server stopped
            server.start()
        eng.dispose()


def _count(engine: Engine) -> int:
    return int(store_db.read(engine, lambda conn: conn.execute(text("SELECT count(*) FROM envelopes")).scalar_one()))


def _named(engine: Engine, error: Unavailable) -> None:
    """Assert the error names the database as `user@host:port/db` and never shows the password."""
    url = engine.url
    assert f"the database postgresql+psycopg://postgres@127.0.0.1:{url.port}/{url.database} is unavailable: " in (
        error.detail
    ), error.detail
    assert PASSWORD not in error.detail and PASSWORD not in str(error) and "***" not in error.detail
    assert error.status_code == 503


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_reads_and_writes_during_a_restart_succeed(server: OwnServer, engine: Engine, mode: str) -> None:
    writer = Writer(engine)
    stop = threading.Event()
    failures: list[BaseException] = []
    written = [0]
    reads = [0]

    def reading() -> None:
        while not stop.is_set():
            try:
                store_db.read(engine, lambda conn: db.get_envelope(conn, "none"))
                reads[0] += 1
            except BaseException as exc:  # noqa: B036 - every failure is the test's to report
                failures.append(exc)

    def writing(base: int) -> None:
        n = base
        while not stop.is_set():
            row = envelope_row(n)
            try:
                writer.run_sync(lambda conn, row=row: db.insert_envelope(conn, **row))
                written[0] += 1
            except BaseException as exc:  # noqa: B036
                failures.append(exc)
            n += 1

    threads = [threading.Thread(target=reading) for _ in range(3)]
    threads += [threading.Thread(target=writing, args=(base,)) for base in (1, 100_001, 200_001)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        before = (reads[0], written[0])
        took = server.restart(mode)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        writer.stop()
    assert took < store_db.RETRY_FOR, f"the restart took {took:.2f} s, longer than the retry window"
    # Only a batch whose COMMIT was under way may fail (the server may have committed it): it is
    # never run again. Every read and every other write waited the restart out.
    in_doubt = [exc for exc in failures if _at_commit(exc)]
    assert [exc for exc in failures if exc not in in_doubt] == []
    assert reads[0] > before[0] and written[0] > before[1]  # they went on after the restart
    assert written[0] <= _count(engine) <= written[0] + len(in_doubt)  # each write stored once


def _at_commit(exc: BaseException) -> bool:
    """Whether `exc` is `CommitInDoubt`, caused by the driver's error from a COMMIT (not a statement's)."""
    cause = exc.__cause__
    frames = [frame.name for frame in traceback.extract_tb(cause.__traceback__)] if cause else []
    return isinstance(exc, CommitInDoubt) and isinstance(cause, DBAPIError) and "_commit_impl" in frames


def test_with_the_server_stopped_everything_is_unavailable_and_nothing_is_written(
    server: OwnServer, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    writer = Writer(engine)
    ran: list[int] = []

    def job(n: int) -> Any:
        def insert(conn: Connection) -> None:
            ran.append(n)
            db.insert_envelope(conn, **envelope_row(n))

        return insert

    try:
        writer.run_sync(job(1))
        server.stop()

        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            store_db.read(engine, lambda conn: db.get_envelope(conn, envelope_row(1)["id"]))
        waited = time.monotonic() - started
        _named(engine, caught.value)
        assert store_db.RETRY_FOR - 0.1 <= waited < store_db.RETRY_FOR + 1.0  # it waited the server out first

        # Found down: the next callers fail at once, each with the same clear error.
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught, read_connection(engine):
            pass
        _named(engine, caught.value)
        futures = [writer.submit(job(n)) for n in (2, 3, 4)]  # one batch on the writer thread
        for future in futures:
            error = future.exception(timeout=30)
            assert isinstance(error, Unavailable), repr(error)
            _named(engine, error)

        async def on_the_loop() -> None:
            writer.attach(asyncio.get_running_loop())
            try:
                with pytest.raises(Unavailable) as caught:
                    await writer.run(job(5))
                _named(engine, caught.value)
            finally:
                await writer.detach()

        run_async(on_the_loop())
        assert time.monotonic() - started < 1.0
        assert ran == [1]  # no job ran without a connection

        server.start()
        with caplog.at_level(logging.WARNING, logger="detente.database"):
            assert _count(engine) == 1  # nothing was written meanwhile
        back = [r for r in caplog.records if r.name == "detente.database"]
        assert [r.getMessage() for r in back] == [f"the database {store_db.shown_url(engine)} is available again"]
        writer.run_sync(job(6))
    finally:
        writer.stop()
    assert _count(engine) == 2
    assert ran == [1, 6]


def test_a_server_that_comes_back_within_the_window_is_waited_for(server: OwnServer, engine: Engine) -> None:
    server.stop()
    restarted = threading.Timer(0.6, server.start)
    restarted.start()
    try:
        started = time.monotonic()
        assert store_db.read(engine, lambda conn: db.get_envelope(conn, "none")) is None
        assert 0.5 < time.monotonic() - started < store_db.RETRY_FOR
    finally:
        restarted.join()
