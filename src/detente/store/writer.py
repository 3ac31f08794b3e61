"""One writer per node: every write runs on one thread, and jobs are committed in batches.

Callers hand a job (a function of a SQLAlchemy connection) to `Writer.run`; the writer thread
takes every job waiting, runs them in one transaction, commits once, and only then answers each
caller (group commit). A job that raises is rolled back alone: the batch is run again with a
SAVEPOINT per job, and the others in it still commit. Because there is a single writer, log indexes and sequence
numbers are allocated without races.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from detente.store import logtail
from detente.store.db import write_transaction

T = TypeVar("T")
Job = Callable[[Connection], Any]
_STOP = object()


class Writer:
    """Serialises and batches write transactions on a dedicated thread."""

    def __init__(self, engine: Engine, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.jobs = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="detente-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the jobs already queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue `job` and return a future that resolves after its batch commits."""
        if self._thread is None:
            self.start()
        future: Future[T] = Future()
        self._queue.put((job, future))
        return future

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in the writer and return its result once committed; re-raise its error."""
        return await asyncio.wrap_future(self.submit(job))

    def run_sync(self, job: Callable[[Connection], T]) -> T:
        """Blocking form of `run`, for the command line and tests."""
        return self.submit(job).result()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Job, Future[Any]]]) -> None:
        # Most batches succeed whole: run them without per-job SAVEPOINTs, which cost as much as the
        # jobs' own statements. Only when a job raises is the batch rolled back and run again with a
        # SAVEPOINT per job, so that the failing job fails alone.
        try:
            results = self._run(batch, savepoints=False)
        except BaseException as exc:  # noqa: B036 - nothing was written
            if len(batch) == 1:
                self._settle(batch, [(False, exc)])
                return
        else:
            self._settle(batch, [(True, r) for r in results])
            return
        try:
            outcomes = self._run(batch, savepoints=True)
        except BaseException as exc:  # noqa: B036 - the commit itself failed: nothing was written
            self._settle(batch, [(False, exc)] * len(batch))
            return
        self._settle(batch, outcomes)

    def _run(self, batch: list[tuple[Job, Future[Any]]], *, savepoints: bool) -> list[Any]:
        """Run the jobs in one transaction and commit it; with `savepoints`, return (ok, value) per job."""
        out: list[Any] = []
        with write_transaction(self.engine) as conn:
            for job, _ in batch:
                if not savepoints:
                    out.append(job(conn))
                    continue
                savepoint = conn.begin_nested()
                try:
                    result = job(conn)
                    logtail.flush(conn)  # a job's log rows fail with the job, not at its RELEASE
                except BaseException as exc:  # noqa: B036 - handed back to the caller
                    savepoint.rollback()
                    out.append((False, exc))
                else:
                    savepoint.commit()
                    out.append((True, result))
            logtail.flush(conn)  # log rows still pending fail here, where the batch can be retried
        return out

    def _settle(self, batch: list[tuple[Job, Future[Any]]], outcomes: list[tuple[bool, Any]]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        for (ok, value), (_, future) in zip(outcomes, batch, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
