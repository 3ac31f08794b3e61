"""Timed duties: deadlines that pass, and link tests on the agreement's schedule."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from detente.core import clocks, receipts
from detente.core.precedence import format_time, now
from detente.errors import Error
from detente.node.context import NodeContext
from detente.node.incoming import receipts_job
from detente.node.linkstate import contact_job, logged
from detente.node.outgoing import link_test_job, overdue_job
from detente.node.peers import PeerClient
from detente.store import messages as db
from detente.store.db import read_connection

log = logging.getLogger("detente.schedule")
TICK = 0.5
RETEST = 5.0  # seconds: the least time between a link test and one brought forward (`test_soon`)


class Scheduler:
    """Checks deadlines every tick and tests each peer's link every `link_test_seconds`."""

    def __init__(self, ctx: NodeContext, clients: dict[str, PeerClient], wake: Callable[[str | None], None]) -> None:
        self.ctx = ctx
        self.clients = clients
        self.wake = wake  # tells the deliverers that overdue notices wait in the outbox
        self._next_test = dict.fromkeys(clients, 0.0)

    def test_soon(self, peer: str) -> None:
        """Test the link to `peer` at the next tick, or `RETEST` seconds after the last test if sooner."""
        if peer in self._next_test:
            last = self._next_test[peer] - self.ctx.agreement.link_test_seconds
            self._next_test[peer] = min(self._next_test[peer], last + RETEST)

    async def run(self) -> None:
        """Run until cancelled."""
        tests: set[asyncio.Task[None]] = set()
        while True:
            try:
                await self.check_deadlines()
            except Exception as exc:  # a failed tick is logged and retried at the next one
                log.warning("deadline check failed: %s", exc)
            moment = time.monotonic()
            for peer, due in self._next_test.items():
                if moment >= due:
                    self._next_test[peer] = moment + self.ctx.agreement.link_test_seconds
                    task = asyncio.create_task(self.link_test(peer))
                    tests.add(task)
                    task.add_done_callback(tests.discard)
            await asyncio.sleep(TICK)

    async def check_deadlines(self) -> None:
        """Mark every message past its deadline as overdue and tell the alternates."""
        at = format_time(now())
        earliest = await asyncio.to_thread(self._earliest_deadline)
        if earliest is None or earliest >= at:
            return  # nothing due: no write transaction at all
        events = await self.ctx.writer.run(overdue_job(self.ctx, at))
        self.ctx.bus.publish(*events)
        if events:
            self.wake(None)  # the notices go to the peers now, not at the deliverers' next idle look

    def _earliest_deadline(self) -> str | None:
        with read_connection(self.ctx.engine) as conn:
            return db.next_deadline(conn)

    async def link_test(self, peer: str) -> None:
        """Send one link test to `peer` and record the answer, or the silence."""
        client = self.clients[peer]
        try:
            env = await self.ctx.writer.run(link_test_job(self.ctx, peer, secrets.token_hex(8)))
        except Error as exc:
            log.warning("could not record a link test: %s", exc)
            return
        sent, started = time.time(), time.perf_counter()
        body = b'{"envelopes":[' + env.raw + b"]}"
        try:
            response = await client.request("POST", "/federation/v1/envelopes", body, headers=receipts.ASK_BATCH)
            if response.status_code != 200:
                raise Error(response.refusal())
            result = response.json()["results"][0]
            receipts.verify_receipt(result.get("receipt"), self.ctx.agreement.party(peer).verifier(), peer, env)
            rtt = time.perf_counter() - started
            offset = round(clocks.measured_offset(result["receipt"]["received"], sent, rtt) * 1000, 1)
        except Exception as exc:  # any failure is silence on the link, recorded as such
            detail = exc.detail if isinstance(exc, Error) else f"{type(exc).__name__}: {exc}"
            event = await self.ctx.writer.run(contact_job(peer, False, error=detail, test=True))
        else:
            self.ctx.clock_offsets[peer] = offset
            await self.ctx.writer.run(receipts_job(self.ctx, peer, [(env, result["receipt"])]))
            contact = contact_job(peer, True, rtt_ms=round(rtt * 1000, 2), clock_offset_ms=offset, test=True)
            event = await self.ctx.writer.run(contact)
        event = logged(event)
        if event is not None:
            self.ctx.bus.publish(event)
