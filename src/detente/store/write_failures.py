"""How a write batch fails for the database rather than for a job, and what the writer does then.

Two moments matter (`store.writer` runs every batch through them):

- **before COMMIT** (`Dropped`): connecting failed, or the connection failed while the jobs ran.
  Nothing was written, so the batch runs again on a new connection, as `store.db.Retries` says;
- **during COMMIT** (`Failed` with `CommitInDoubt`): the server may have committed, so the batch
  is never run again, and every caller is told to look for its write before trying again.

When the tries are over, `given_up` turns the last `Dropped` into `Failed` with `Unavailable` on
PostgreSQL (SQLite's errors are the jobs' own, and the SAVEPOINT recovery may follow).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from detente.store.db import Retries, connection_failed, in_doubt

log = logging.getLogger("detente.database")


class Dropped(Exception):
    """The connection failed before COMMIT was sent (`connection_failed`): nothing was written.

    The batch then runs again on a new connection (a server restart, a connection it timed out):
    its jobs are functions of the connection alone, which the SAVEPOINT recovery already relies
    on. A connection lost at COMMIT is not retried (`Failed`): the server may have committed.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error  # the driver's error


class Failed(Exception):
    """The batch failed for the database, not for a job: every job fails with `error`, none runs again.

    Raised when the connection failed during COMMIT (`CommitInDoubt`: the server may have
    committed), or before it on every try (`Unavailable`).
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def given_up(retries: Retries, dropped: Dropped) -> BaseException:
    """Return what to raise when the last try of a batch failed with `dropped`: `Failed` with
    `Unavailable` on PostgreSQL, the driver's error itself on SQLite (the SAVEPOINT recovery may follow)."""
    failure = retries.gave_up(dropped.error)
    return dropped.error if failure is dropped.error else Failed(failure)


@contextmanager
def rolled_back_on_error(transaction: RootTransaction) -> Iterator[None]:
    """Roll `transaction` back if the block raises, and raise the error again.

    The error becomes `Dropped` if the connection failed (`connection_failed`). Only the jobs run
    in the block: a COMMIT that fails is never tried again.
    """
    try:
        yield
    except BaseException as exc:
        transaction.rollback()
        if connection_failed(transaction.connection.engine, exc):
            raise Dropped(exc) from exc
        raise


@contextmanager
def open_write(engine: Engine) -> Iterator[tuple[Connection, RootTransaction]]:
    """Open a connection and its write transaction (BEGIN IMMEDIATE on SQLite).

    Raises `Dropped` if connecting failed (`connection_failed`): nothing was run yet.
    """
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        if connection_failed(engine, exc):
            raise Dropped(exc) from exc
        raise
    with conn.execution_options(begin="immediate") as conn:
        yield conn, conn.begin()


_in_doubt = itertools.count(1)  # commits found in doubt since the process started


@contextmanager
def in_doubt_on_failure(engine: Engine, writes: int) -> Iterator[None]:
    """Raise `Failed` with `CommitInDoubt` if the connection fails in the block (the COMMIT of a batch
    of `writes` jobs): the server may have committed."""
    try:
        yield
    except DBAPIError as exc:
        if connection_failed(engine, exc):
            doubt = in_doubt(engine, exc)
            doubt.__cause__ = exc  # handed to each caller as it is, never raised here
            # Each one counted and worded apart: the log's filter of repeated warnings held back all
            # but the first of nine in ten seconds (QA), and each is a write someone must look for.
            log.warning("commit %d in doubt, of %d write(s): %s", next(_in_doubt), writes, doubt.detail)
            raise Failed(doubt) from exc
        raise
