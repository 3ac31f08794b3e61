"""The deliverer: takes envelopes from the outbox to a peer, in order, until each has a receipt.

One deliverer runs per peer. It posts batches of up to `BATCH` envelopes, verifies each signed
receipt against the peer's pinned key, and takes an envelope off the outbox only in the
transaction that stores its receipt. Failures are retried with exponential backoff and jitter;
a sequence gap reported by the peer makes it queue the missing range again. A batch the peer
answers slowly, or not in time, halves the next one (`Deliverer._pace`), so that a slow link
still carries a backlog.

With a backlog (a full batch read), the receipts of a batch are verified and stored while the
next batch travels and the peer stores it: each read leaves out the rows still awaiting their
receipts, and at most `MAX_UNSETTLED` batches are being settled at a time. A FLASH message ends
its batch, so that the peer stores and answers it without a full batch's wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from detente.core import envelope as envelope_mod
from detente.core import receipts
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence
from detente.errors import CommitInDoubt, Error, Unavailable
from detente.node.context import NodeContext
from detente.node.events import wait_set
from detente.node.incoming import receipts_job
from detente.node.linkstate import contact_job, logged
from detente.node.peers import TIMEOUT, PeerClient, PeerResponse
from detente.store import messages as db
from detente.store.db import read_connection

log = logging.getLogger("detente.deliver")
BATCH = 200
MAX_BACKOFF = 5.0
INLINE_READ_MAX = 4  # after a batch of at most this many rows, the next read runs on the loop
MAX_UNSETTLED = 2  # batches whose receipts may be stored while the next one travels
# The peer client's read timeout runs from the moment a request's bytes are handed to the kernel,
# not from when they have crossed: at 64 kbit/s a batch of 100 envelopes (48 KB) was still on its
# way when it expired, and the same batch went again and again, never answered (QA, a degraded
# link). A batch answered after SLOW seconds or more (or failing then) makes the next one half its
# size; a full batch answered within QUICK seconds doubles it again, up to BATCH.
SLOW = (TIMEOUT.sock_read or 10.0) / 2
QUICK = SLOW / 2


class Deliverer:
    """Delivers one peer's outbox."""

    def __init__(self, ctx: NodeContext, client: PeerClient) -> None:
        self.ctx = ctx
        self.client = client
        self.peer = client.peer.id
        self.wake = asyncio.Event()
        self._failures = 0
        self._last_ok_written = 0.0
        self._last_rows = 0  # rows in the last batch read
        self._rows = BATCH  # the most rows the next batch reads (`_pace`)
        # Batches whose receipts are being verified and stored, oldest first, each with its last
        # sequence number per channel: the next read leaves those rows out.
        self._unsettled: list[tuple[asyncio.Task[bool], dict[str, int]]] = []
        self.flash = asyncio.Event()  # a FLASH message was queued: the express lane looks at once
        self._posting: dict[str, int] = {}  # the main lane's batch until it is settled or listed above
        self._express: dict[str, int] = {}  # the express lane's batch on its way

    def backlogged(self) -> bool:
        """Whether the last read filled a whole batch: the peer's outbox holds a backlog."""
        return self._last_rows >= self._rows

    def _in_flight(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for _, sent in self._unsettled:
            for channel, seq in sent.items():
                last[channel] = max(seq, last.get(channel, 0))
        return last

    async def _settle(self, keep: int) -> bool | None:
        """Wait until at most `keep` batches are unsettled (and none that is done is still listed).

        Returns whether the batches settled here stored receipts (None: there were none).
        """
        progress = None
        while self._unsettled and (len(self._unsettled) > keep or self._unsettled[0][0].done()):
            task, _ = self._unsettled.pop(0)
            progress = await task or bool(progress)
        return progress

    async def run(self) -> None:
        """Deliver until cancelled (the main lane, and the express lane beside it)."""
        express = asyncio.create_task(self._express_lane(), name=f"express-{self.peer}")
        try:
            await self._run()
        finally:
            # A job already handed to the writer still commits; the next start re-sends the rest,
            # and the peer answers a duplicate with the receipt it gave the first time.
            tasks = {express} | {task for task, _ in self._unsettled}
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _run(self) -> None:
        while True:
            try:
                progressed = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep delivering whatever happens; the error is recorded
                progressed = False
                await self._failed(exc)
            if progressed:
                self._failures = 0
                continue
            if self._failures:
                delay = min(MAX_BACKOFF, 0.1 * 2 ** min(self._failures, 8)) * random.uniform(0.5, 1.0)
            else:
                delay = 5.0
            await wait_set(self.wake, delay)
            self.wake.clear()

    async def _failed(self, exc: Exception) -> None:
        """Note a failed round: the link's failure if the peer failed, else this node's own.

        This node's database failing (down, a statement cancelled, a lock it waited for too long)
        says nothing of the link: it is logged in one line and waited out with the same backoff,
        not recorded as the link DEGRADED with the SQL in its reason (QA). Recording a link failure
        needs the database too; if that fails as well, the deliverer goes on all the same (QA: the
        second error escaped, ended the task, and the outbox stopped for good after an outage).
        """
        if isinstance(exc, (Unavailable, CommitInDoubt, SQLAlchemyError)):
            self._failures += 1
            log.warning("delivery to %s waits for this node's database: %s", self.peer, _first_line(exc))
            return
        log.warning("delivery to %s failed: %s", self.peer, exc)
        try:
            await self._contact(False, str(exc))
        except Exception as again:  # the task must outlive any of them
            log.warning("delivery to %s: the failure could not be recorded: %s", self.peer, _first_line(again))

    async def _contact(self, ok: bool, error: str | None = None) -> None:
        was_failing = self._failures > 0
        self._failures = 0 if ok else self._failures + 1
        # A success only needs recording when it changes something or once a second: writing it
        # after every batch would cost a commit per batch under load.
        moment = time.monotonic()
        if ok and not was_failing and moment - self._last_ok_written < 1.0:
            return
        if ok:
            self._last_ok_written = moment
        event = logged(await self.ctx.writer.run(contact_job(self.peer, ok, error=error)))
        if event is not None:
            self.ctx.bus.publish(event)

    async def deliver_once(self) -> bool:
        """Post one batch; return whether to go on at once (receipts were stored, or are being stored)."""
        after, skip = self._in_flight(), set(self._express)
        if self._last_rows <= INLINE_READ_MAX or self._last_rows >= self._rows:
            # A quiet link's next batch is a message or two: reading it here (about 0.1 ms of SQL)
            # spares the hand-off to a worker thread and back, which took longer on a FLASH
            # message's way (docs/performance.md, item 15). So does a backlog's: on a node busy
            # enough to have one, a worker thread waits for the interpreter lock at each of the
            # read's statements, and the next batch waited with it (item 27). Between the two, the
            # read goes to a thread, where its rows do not hold the event loop.
            rows = self._read_batch(after, skip, self._rows)
        else:
            rows = await asyncio.to_thread(self._read_batch, after, skip, self._rows)
        self._last_rows = len(rows)
        rows = [row for row in rows if row[2] not in self._express]  # taken by the express lane meanwhile
        if not rows:
            return bool(await self._settle(0))
        rows, envelopes = _up_to_flash(rows)
        self._posting = {channel: seq for _, _, channel, seq in rows}  # rows are in order per channel
        try:
            return await self._post(rows, envelopes)
        finally:
            self._posting = {}

    def _pace(self, took: float) -> None:
        """Size the next batch from the seconds the peer took to answer this one, or to fail."""
        if took >= SLOW:
            self._rows = max(1, min(self._rows, self._last_rows) // 2)
        elif took < QUICK and self._last_rows >= self._rows:
            self._rows = min(BATCH, self._rows * 2)

    async def _post(self, rows: list[db.OutboxRow], envelopes: list[Envelope]) -> bool:
        started = time.monotonic()
        try:
            response = await self._send(envelopes)
        except Error as exc:
            self._pace(time.monotonic() - started)
            await self._settle(0)
            await self._contact(False, exc.detail)
            return False
        took = time.monotonic() - started
        if response.status_code != 200:
            await self._settle(0)
            await self._contact(False, response.refusal())
            return False
        # The batch before this one may still be settling: a short batch (a FLASH) need not wait
        # for a full batch's receipts, but no more than `MAX_UNSETTLED` wait at once.
        before = await self._settle(MAX_UNSETTLED - 1)
        await self._contact(True)
        results = response.json().get("results", [])
        backlog = self._last_rows >= self._rows  # rows read, before a FLASH cut the batch short
        self._pace(took)
        if not backlog:
            # Short of a backlog, the next batch gathers what arrives meanwhile: bigger batches cost
            # less per message than overlapped small ones (docs/performance.md, item 19).
            return await self.handle_results(envelopes, results) or bool(before)
        # A backlog: these receipts are verified and stored while the next full batch travels. Until
        # they are, the next read leaves this batch's rows out, so that a batch whose receipts fail
        # is not sent again at once: the read after it finds nothing new and waits.
        task = asyncio.create_task(self.handle_results(envelopes, results), name=f"receipts-{self.peer}")
        self._unsettled.append((task, dict(self._posting)))
        return True

    async def _express_lane(self) -> None:
        """Send a queued FLASH message at once when its channel has nothing on its way.

        The main lane has one batch on its way at a time, and a batch of up to BATCH envelopes
        takes the peer a hundred milliseconds or more to store. A FLASH on another channel need
        not wait for it: the peer accepts each channel's sequence on its own, so a second request
        may carry the channels the main lane's batch does not. Whatever this lane cannot send
        (its channel is on its way, the request fails) the main lane sends as before.
        """
        while True:
            await self.flash.wait()
            self.flash.clear()
            try:
                await self._express_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the main lane delivers what this one could not
                log.warning("express delivery to %s failed: %s", self.peer, _first_line(exc))
            finally:
                self.wake.set()  # the main lane may carry these channels again

    async def _express_once(self) -> None:
        # Read and claim with no await between: the main lane sees the claim before its next read.
        rows = self._read_batch(self._in_flight(), set(self._posting))
        rows, envelopes = _up_to_flash(rows)
        if not envelopes or envelopes[-1].precedence is not Precedence.FLASH:
            return
        self._express = {channel: seq for _, _, channel, seq in rows}
        # `Node.wake` leaves the main lane asleep for a FLASH, so that its read does not run on the
        # loop ahead of this one (docs/performance.md, item 32): it reads once the FLASH is on its way.
        self.wake.set()
        try:
            response = await self._send(envelopes)
            if response.status_code == 200:
                await self.handle_results(envelopes, response.json().get("results", []))
        finally:
            self._express = {}

    async def _send(self, envelopes: list[Envelope]) -> PeerResponse:
        body = b'{"envelopes":[' + b",".join(e.raw for e in envelopes) + b"]}"
        return await self.client.request("POST", "/federation/v1/envelopes", body, headers=receipts.ASK_BATCH)

    def _read_batch(self, in_flight: dict[str, int], skip: set[str], limit: int = BATCH) -> list[db.OutboxRow]:
        with read_connection(self.ctx.engine) as conn:
            return db.outbox_batch(conn, self.peer, limit, in_flight, skip)

    async def handle_results(self, envelopes: list[Envelope], results: list[Any]) -> bool:
        """Store the receipts in `results`, requeue after gaps and note errors; return progress."""
        check = receipts.ReceiptVerifier(self.ctx.agreement.party(self.peer).verifier(), self.peer)
        by_id = {e.id: e for e in envelopes}
        good: list[tuple[Envelope, dict[str, Any]]] = []
        problems: list[tuple[str, dict[str, Any]]] = []
        for result in results:
            env = by_id.get(str(result.get("id")))
            if env is None:
                continue
            if "receipt" in result:
                try:
                    check.verify(result["receipt"], env)
                except Error as exc:
                    problems.append((env.id, {"error": type(exc).__name__, "detail": exc.detail}))
                    continue
                good.append((env, result["receipt"]))
            else:
                problems.append((env.id, result))
        if good:
            # Ahead of the queued sends: until they are stored, these rows hold the outbox and the
            # next batch waits (at most MAX_UNSETTLED unsettled). Under load, behind a queue of send
            # jobs, they held delivery back by 14% (docs/performance.md, item 24).
            events = await self.ctx.writer.run(receipts_job(self.ctx, self.peer, good), ahead=True)
            self.ctx.bus.publish(*events)
        if problems:
            await self.ctx.writer.run(self._problems_job(problems))
            if any(p.get("error") == "SequenceGap" for _, p in problems):
                self.wake.set()  # the missing range is queued again: send it at once
        return bool(good)

    def _problems_job(self, problems: list[tuple[str, dict[str, Any]]]) -> Any:
        def job(conn: Any) -> None:
            for envelope_id, result in problems:
                if result.get("error") == "SequenceGap":
                    db.requeue_from(conn, self.peer, str(result["channel"]), int(result["expected"]))
                else:
                    log.warning("%s refused %s: %s", self.peer, envelope_id, json.dumps(result)[:300])
                    db.note_delivery_error(conn, envelope_id, f"{result.get('error')}: {result.get('detail')}")

        return job


def _first_line(exc: BaseException) -> str:
    """Return what a (database) error says on one line, without the SQL SQLAlchemy appends."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    return said.splitlines()[0] if said else type(exc).__name__


def _up_to_flash(rows: list[db.OutboxRow]) -> tuple[list[db.OutboxRow], list[Envelope]]:
    """Cut a batch after its first FLASH message; return the rows and their envelopes.

    The peer stores and answers a short batch at once, where a full one would hold the FLASH for
    the time it takes to store up to BATCH envelopes. The channels take turns in a batch, so a
    FLASH on a quiet channel is in the first turn.
    """
    envelopes = [envelope_mod.stored(raw) for _, raw, _, _ in rows]  # our own outbox
    flash = next((i for i, e in enumerate(envelopes) if e.precedence is Precedence.FLASH), len(rows))
    return rows[: flash + 1], envelopes[: flash + 1]
