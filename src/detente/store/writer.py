"""One writer per node: every write runs in one place, and jobs are committed in batches.

Callers hand a job (a function of a SQLAlchemy connection) to `Writer.run`; the writer takes every
job waiting, runs them in one transaction, commits once, and only then answers each caller (group
commit). A job that raises is rolled back alone: the batch is run again with a SAVEPOINT per job,
and the others in it still commit. Because there is a single writer, log indexes and sequence
numbers are allocated without races. If the connection failed before the COMMIT (PostgreSQL
restarting or stopped: connecting failed, or the server dropped it), the batch runs again on a new
connection, waiting as `store.db.Retries` says (`Dropped`); if PostgreSQL still cannot be reached,
every job of the batch fails with `Unavailable`. A batch whose COMMIT was under way when the
connection failed is never run again: the server may have committed it.

Where the jobs run: a serving node `attach`es the writer to its event loop, which then runs the
jobs itself and hands only the COMMIT (the wait for the disk) to a thread, unless the batch is one
job with nothing queued behind it: that one commits on the loop, sooner. A batch on the loop takes
jobs up to `max_weight` envelopes' worth (a heavier job runs alone) and, from `TURNS_FROM` of
them, gives the loop a turn between its jobs every `TURN` seconds of their work: an urgent job (a
FLASH message) that arrived meanwhile cuts in there, runs next in the same transaction and is
committed at once, and the jobs not yet run go back to the head of the queue. Elsewhere (the
command line, tests, a caller on another loop) jobs run on a dedicated writer thread. The loop is the
faster home: SQLite gives up Python's GIL for every statement, and a writer thread has to win it
back from the busy event loop each time. Measured on two cores, that contention doubled the
writer's CPU per send job, and the loop carries 9–29% more messages/s (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from detente.store import logtail
from detente.store.db import Retries
from detente.store.write_failures import (
    Dropped,
    Failed,
    given_up,
    in_doubt_on_failure,
    open_write,
    rolled_back_on_error,
)

T = TypeVar("T")
Job = Callable[[Connection], Any]
Item = tuple[Job, Any, int]  # a job, the future its caller awaits, its weight
_STOP = object()
MAX_WEIGHT = 256  # envelopes a batch on the loop writes at most, unless one job writes more
TURN = 0.002  # seconds of jobs' work a batch on the loop runs before it gives the loop a turn
TURNS_FROM = 32  # envelopes' worth: a lighter batch runs without turns


class Writer:
    """Serialises and batches write transactions on a dedicated thread."""

    def __init__(self, engine: Engine, max_batch: int = 256, max_weight: int = MAX_WEIGHT) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_weight = max_weight
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._attached: asyncio.AbstractEventLoop | None = None
        self._pending: list[Item] = []
        self._ahead: list[Item] = []  # the next batch (a delivery batch's receipts)
        self._urgent: list[Item] = []  # cutting into the running batch, or the next (FLASH traffic)
        self._draining: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the jobs that callers on `loop` hand to `run` on that loop from now on."""
        self._attached = loop

    async def detach(self) -> None:
        """Commit the jobs already queued on the attached loop, then go back to the writer thread."""
        while self._draining is not None:
            await asyncio.wait({self._draining})  # its failures went to the jobs' callers
        self._attached = None

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
        self._queue.put((job, future, 1))
        return future

    async def run(
        self, job: Callable[[Connection], T], *, urgent: bool = False, ahead: bool = False, weight: int = 1
    ) -> T:
        """Run `job` in the writer and return its result once committed; re-raise its error.

        An `urgent` job (FLASH traffic) cuts into the running batch at its next turn, or makes up
        the next batch, so that under load it waits for about `TURN` of other jobs' work (or one
        job heavier than that). A job `ahead` (a delivery batch's receipts) goes into the next
        batch, before the jobs already waiting: cutting in ends a batch early and costs a commit,
        worth it for a FLASH message, not for what comes every few milliseconds. `weight` is about
        how many envelopes the job writes: a batch on the loop takes jobs up to `max_weight` of
        them, and always one.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._attached:
            return await asyncio.wrap_future(self.submit(job))
        future: asyncio.Future[T] = loop.create_future()
        (self._urgent if urgent else self._ahead if ahead else self._pending).append((job, future, weight))
        if self._draining is None:
            self._draining = loop.create_task(self._drain(), name="detente-writer")
        return await future

    async def _drain(self) -> None:
        # Jobs that arrive while a batch commits wait for the next batch: group commit on the loop.
        # Urgent jobs make up a batch of their own (a few statements, not a whole queue's), or cut
        # into the running one (`_execute_with_turns`).
        try:
            while self._urgent or self._ahead or self._pending:
                batch = self._take(self._urgent or self._ahead or self._pending)
                try:
                    outcomes = await self._commit_on_loop(batch)
                except BaseException:
                    for _, future, _ in batch:  # no caller waits forever on a batch that died
                        future.cancel()
                    raise
                self._settle(batch, outcomes)
        finally:
            self._draining = None

    def _take(self, source: list[Item]) -> list[Item]:
        """Take the next batch from `source`: jobs up to `max_weight` in all, at least one."""
        # A batch's callers hear of it at its commit: a bound on its work bounds their wait.
        taken, weight = 0, 0
        for _, _, w in source[: self.max_batch]:
            if taken and weight + w > self.max_weight:
                break
            taken, weight = taken + 1, weight + w
        batch = source[:taken]
        del source[:taken]
        return batch

    async def _commit_on_loop(self, batch: list[Item]) -> list[tuple[bool, Any]]:
        # The same recovery as `_commit`: the whole batch first, then a SAVEPOINT per job.
        try:
            return [(True, r) for r in await self._run_on_loop_again(batch, savepoints=False)]
        except Failed as failed:  # the database, not a job: running the jobs again would not help
            return [(False, failed.error)] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [(False, exc)]
        try:
            return await self._run_on_loop_again(batch, savepoints=True)
        except Failed as failed:
            return [(False, failed.error)] * len(batch)
        except Exception as exc:  # the commit itself failed: nothing was written
            return [(False, exc)] * len(batch)

    async def _run_on_loop_again(self, batch: list[Item], *, savepoints: bool) -> list[Any]:
        """`_run_on_loop`, again on a new connection while the connection fails before COMMIT (`Retries`).

        Raises `Failed` when the tries are over on PostgreSQL, the last try's error on SQLite.
        """
        retries: Retries | None = None  # made at the first failure: nothing to do on the hot path
        while True:
            try:
                return await self._run_on_loop(batch, savepoints=savepoints)
            except Dropped as exc:
                dropped = exc
            retries = retries or Retries(self.engine)
            wait = retries.next_wait()
            if wait is None:
                raise given_up(retries, dropped)
            await asyncio.sleep(wait)  # the loop serves requests meanwhile

    async def _run_on_loop(self, batch: list[Item], *, savepoints: bool) -> list[Any]:
        """Run the jobs in one transaction on the loop and commit it in a thread.

        Raises `Dropped` if the connection failed before COMMIT, `Failed` if it failed during
        COMMIT, else the jobs' error. Without `savepoints`, urgent jobs may cut in (`batch` is
        then changed).
        """
        with open_write(self.engine) as (conn, transaction):
            with rolled_back_on_error(transaction):
                if savepoints:  # the rare second try runs the batch as it was, without turns
                    out = self._execute(conn, batch, savepoints=True)
                else:
                    out = await self._execute_with_turns(conn, batch)
            with in_doubt_on_failure(self.engine, len(batch)):
                if len(batch) == 1 and not self._pending and not self._ahead and not self._urgent:
                    # A lone job with nothing queued behind it commits here: the hand-off to a thread
                    # and back adds about 0.3 ms to its answer, and a FLASH message crosses two such
                    # jobs. Interleaved runs: FLASH delivered p50 lower in 7 of 8 pairs, by 0.4-0.7 ms
                    # in the medians (docs/performance.md, item 12). The loop waits for the disk
                    # meanwhile, which is why a busier writer still hands its COMMIT to a thread.
                    transaction.commit()
                    return out
                # COMMIT waits for the disk (fsync); the loop serves requests meanwhile. The connection
                # is used by one thread at a time: this task waits for the commit before going on, even
                # when cancelled (closing the connection under a running COMMIT would corrupt it).
                commit = asyncio.ensure_future(asyncio.to_thread(transaction.commit))
                try:
                    await asyncio.shield(commit)
                except asyncio.CancelledError:
                    await asyncio.wait({commit})
                    raise
                return out

    async def _execute_with_turns(self, conn: Connection, batch: list[Item]) -> list[Any]:
        """Run the jobs on `conn`, giving the loop a turn every `TURN` seconds of their work.

        An urgent job that arrived by a turn runs next, in this transaction, and the batch ends
        with it: the jobs not yet run go back to the head of the queue, and `batch` becomes the
        jobs that ran, in order. A batch lighter than `TURNS_FROM` runs without turns.
        """
        # A FLASH message that reaches a busy node waited for the whole batch running there (up to
        # 64 envelopes' worth, about 25 ms, on each node). With turns it waits for about TURN, and
        # batches can be large again: fewer commits. A light batch (sixteen senders' single
        # messages) gains nothing from turns, and its callers, who all wait for its commit, lost
        # 6-7% of their throughput to them in 2 of 3 pairs (docs/performance.md, item 31).
        if sum(weight for _, _, weight in batch) < TURNS_FROM:
            return self._execute(conn, batch, savepoints=False)
        out: list[Any] = []
        started = time.perf_counter()
        for i, (job, _, _) in enumerate(list(batch)):
            if i and time.perf_counter() - started >= TURN:
                await asyncio.sleep(0)
                started = time.perf_counter()
                if self._urgent:
                    self._pending[:0] = batch[i:]
                    del batch[i:]
                    cutting_in = self._take(self._urgent)
                    batch.extend(cutting_in)
                    out.extend(urgent(conn) for urgent, _, _ in cutting_in)
                    break
            out.append(job(conn))
        logtail.flush(conn)  # as `_execute`: log rows still pending fail here, where the batch can be retried
        return out

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

    def _commit(self, batch: list[Item]) -> None:
        # Most batches succeed whole: run them without per-job SAVEPOINTs, which cost as much as the
        # jobs' own statements. Only when a job raises is the batch rolled back and run again with a
        # SAVEPOINT per job, so that the failing job fails alone.
        try:
            results = self._run_again(batch, savepoints=False)
        except Failed as failed:  # the database, not a job: running the jobs again would not help
            self._settle(batch, [(False, failed.error)] * len(batch))
            return
        except BaseException as exc:  # noqa: B036 - nothing was written
            if len(batch) == 1:
                self._settle(batch, [(False, exc)])
                return
        else:
            self._settle(batch, [(True, r) for r in results])
            return
        try:
            outcomes = self._run_again(batch, savepoints=True)
        except Failed as failed:
            self._settle(batch, [(False, failed.error)] * len(batch))
            return
        except BaseException as exc:  # noqa: B036 - the commit itself failed: nothing was written
            self._settle(batch, [(False, exc)] * len(batch))
            return
        self._settle(batch, outcomes)

    def _run_again(self, batch: list[Item], *, savepoints: bool) -> list[Any]:
        """`_run`, again on a new connection while the connection fails before COMMIT (`Retries`).

        Raises `Failed` when the tries are over on PostgreSQL, the last try's error on SQLite.
        """
        retries: Retries | None = None  # made at the first failure: nothing to do on the hot path
        while True:
            try:
                return self._run(batch, savepoints=savepoints)
            except Dropped as exc:
                dropped = exc
            retries = retries or Retries(self.engine)
            wait = retries.next_wait()
            if wait is None:
                raise given_up(retries, dropped)
            time.sleep(wait)

    def _run(self, batch: list[Item], *, savepoints: bool) -> list[Any]:
        """Run the jobs in one transaction and commit it; with `savepoints`, return (ok, value) per job.

        Raises `Dropped` if the connection failed before COMMIT, `Failed` if it failed during
        COMMIT, else the jobs' error.
        """
        with open_write(self.engine) as (conn, transaction):
            with rolled_back_on_error(transaction):
                out = self._execute(conn, batch, savepoints=savepoints)
            with in_doubt_on_failure(self.engine, len(batch)):
                transaction.commit()
            return out

    def _execute(self, conn: Connection, batch: list[Item], *, savepoints: bool) -> list[Any]:
        """Run the jobs on `conn`, inside its transaction; with `savepoints`, return (ok, value) per job."""
        out: list[Any] = []
        for job, _, _ in batch:
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

    def _settle(self, batch: list[Item], outcomes: list[tuple[bool, Any]]) -> None:
        # The futures are `concurrent.futures` ones from the thread and asyncio ones on the loop:
        # both answer done(), set_result() and set_exception().
        self.batches += 1
        self.jobs += len(batch)
        for (ok, value), (_, future, _) in zip(outcomes, batch, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
