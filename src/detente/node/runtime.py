"""A running node: its context, its deliverers and its scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection

from detente.core import wire
from detente.core.precedence import format_time, now
from detente.errors import NotRatified
from detente.node import linkstate
from detente.node.config import NodeConfig, load_config
from detente.node.context import NodeContext
from detente.node.database import RepeatedWarnings, database_errors, node_engine
from detente.node.deliver import Deliverer
from detente.node.events import EventBus
from detente.node.evidence import EvidenceFetcher, mark_absent
from detente.node.peers import PeerClient
from detente.node.record import Record
from detente.node.schedule import Scheduler
from detente.store import db as store_db
from detente.store import links as links_db
from detente.store import operators as operators_db
from detente.store.db import migrate, read_connection
from detente.store.writer import Writer

T = TypeVar("T")
log = logging.getLogger("detente.node")
ACCEPTS_RETRY = 1.0  # seconds before what the peers accept is written again after a failed write


def _announce_upgrade(current: str, newest: str) -> None:
    """Say that the database is being upgraded, before the upgrade starts (it may take minutes)."""
    log.warning(
        "upgrading the database from schema %s to %s, once: on a large log this takes minutes "
        "(about 30 s a million messages on SQLite, 90 s on PostgreSQL); stopped meanwhile, it starts over",
        current, newest,
    )  # fmt: skip


def open_context(config: NodeConfig) -> NodeContext:
    """Load the node's key and agreement and open its database (migrating it).

    Raises what `NodeConfig.signer`, `NodeConfig.agreement` and `database.node_engine` raise, and
    `Unavailable` if the database cannot be opened or migrated.
    """
    signer, agreement = config.signer(), config.agreement()  # before anything that must be undone
    engine = node_engine(config)
    try:
        with database_errors(config.db, "open"):
            migrate(engine, announce=_announce_upgrade)
            with read_connection(engine) as conn:
                ratified = operators_db.ratified_by(conn, config.party)
                links = links_db.all_links(conn)
    except BaseException:
        engine.dispose()
        raise
    offsets = {row["peer"]: row["clock_offset_ms"] for row in links}
    # What each peer last said it accepts, before this start too: a peer of an earlier release that
    # is unreachable now is still known as one (NULL: never heard from).
    accepts = {row["peer"]: wire.parse_accepts(row["accepts"]) for row in links if row["accepts"] is not None}
    writer = Writer(engine)
    writer.start()
    earlier = config.earlier_agreements(ratified, agreement.hash)
    unkept = tuple(sorted(set(ratified) - {agreement.hash} - set(earlier)))
    return NodeContext(config, signer, agreement, engine, writer, EventBus(), earlier, unkept, offsets, accepts=accepts)


def own_ratification(ctx: NodeContext) -> str:
    """Return this node's stored ratification of the agreement in force.

    Raises `NotRatified` if the node has not ratified it (or the signature does not verify).
    """
    with read_connection(ctx.engine) as conn:
        signature = operators_db.ratifications_of(conn, ctx.agreement.hash).get(ctx.party)
    if signature is None:
        raise NotRatified(
            f"this node has not ratified agreement {ctx.agreement.hash[:12]}…: run `detente agreement ratify`"
        )
    wire.check_ratification(ctx.agreement, ctx.party, signature)
    return signature


def _ended(task: asyncio.Task[Any]) -> None:
    # Each duty runs until the node stops. One that ends otherwise has stopped for good, which the
    # node must say: a deliverer that ended after an outage left its outbox queued in silence (QA).
    if task.cancelled():
        return
    error = task.exception()
    log.error("the node's %s duty stopped: %s", task.get_name(), error or "it returned", exc_info=error)


class Node:
    """One party's node: storage, keys, agreement, and the background work of federation."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.clients: dict[str, PeerClient] = {}
        self.deliverers: dict[str, Deliverer] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self.scheduler: Scheduler | None = None
        self.ratification = ""
        self.record: Record | None = None  # checkpoints, witnessing, proofs of delivery (once started)
        self.repeats = RepeatedWarnings()  # while running: a database that is down is not logged every tick

    @classmethod
    def open(cls, data: Path) -> Node:
        """Open the node whose data directory is `data`. Raises what `load_config` and `open_context` raise."""
        return cls(open_context(load_config(data)))

    def close(self) -> None:
        """Close the writer and the database of a node that was opened but never started."""
        self.ctx.writer.stop()
        self.ctx.engine.dispose()

    def check_ready(self) -> None:
        """Refuse to federate under an agreement that is incomplete or not ratified by this node.

        Raises `NotRatified` naming what is missing.
        """
        if not self.ctx.agreement.is_complete():
            raise NotRatified("the agreement lacks a node URL, key or TLS fingerprint; complete and ratify it")
        own_ratification(self.ctx)

    async def start(self) -> None:
        """Start delivering, testing links and watching deadlines, every link DOWN until its peer answers,
        and keeping what each peer says it accepts (`keep_accepts`).

        Marks `missing` each evidence file the database lists as stored that the disk lacks
        (`evidence.mark_absent`), so that the fetcher gets it back. Raises `NotRatified`
        (`check_ready`), and what `Writer.run` raises if the links or the evidence cannot be written.
        """
        self.check_ready()
        ratification = own_ratification(self.ctx)
        self.repeats.attach()
        await self.run(linkstate.started_job())  # before any contact of this run is counted
        # Before the fetcher and any request: a file the database says is stored but the disk lacks
        # (a PostgreSQL restore, a lost disk) is marked missing, so that it is fetched again.
        await mark_absent(self.ctx)
        heard = asyncio.Event()  # a peer said something else than the database keeps of what it accepts
        self.ctx.accepts_changed = heard.set
        if self.ctx.unkept_accepts():  # heard before this start (a request served before it)
            heard.set()
        for party in self.ctx.agreement.peers(self.ctx.party):
            client = PeerClient(self.ctx, party, ratification)
            self.clients[party.id] = client
            self.deliverers[party.id] = Deliverer(self.ctx, client)
        self._tasks = [asyncio.create_task(d.run(), name=f"deliver-{p}") for p, d in self.deliverers.items()]
        self.scheduler = Scheduler(self.ctx, self.clients, self.wake)
        self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))
        self.record = Record(self.ctx, self.clients, {p: d.backlogged for p, d in self.deliverers.items()})
        self._tasks += self.record.start()
        fetcher = EvidenceFetcher(self.ctx, self.clients)  # evidence files the peers' envelopes refer to
        self._tasks.append(asyncio.create_task(fetcher.run(), name="evidence"))
        self._tasks.append(asyncio.create_task(self._keeping_accepts(heard), name="accepts"))
        for task in self._tasks:
            task.add_done_callback(_ended)

    async def keep_accepts(self) -> None:
        """Write what each peer last said it accepts where the database keeps something else (one job).

        Raises what `Writer.run` raises; what was not written is written at the next call.
        """
        words = self.ctx.unkept_accepts()
        if not words:
            return
        at = format_time(now())

        def job(conn: Connection) -> None:
            for peer, said in words.items():
                links_db.keep_accepts(conn, peer, " ".join(sorted(said)), at)

        await self.run(job)
        self.ctx.accepts_kept(words)

    async def _keeping_accepts(self, heard: asyncio.Event) -> None:
        # A request or answer that brings a peer's new word only sets `heard` (`heard_accepts`):
        # none waits for the write, or adds one to the writer's jobs of its own.
        while True:
            await heard.wait()
            heard.clear()
            try:
                await self.keep_accepts()
            except Exception as exc:  # the database is down, say: try again, for a restart must not forget it
                log.warning("what the peers accept is not kept yet, trying again: %s", exc)
                await asyncio.sleep(ACCEPTS_RETRY)
                heard.set()

    def serve_writes(self) -> None:
        """Run this node's writer jobs on the running event loop (see `store.writer`) until `stop`."""
        self.ctx.writer.attach(asyncio.get_running_loop())

    def wake(self, peer: str | None = None, *, flash: bool = False) -> None:
        """Tell the deliverer of `peer` (or every deliverer) that the outbox has new rows.

        `flash` says a FLASH message is among them: the deliverer's express lane looks at once, and
        wakes the main lane for the rest once the FLASH is on its way (or it has nothing to send).
        """
        for party, deliverer in self.deliverers.items():
            if peer is None or peer == party:
                (deliverer.flash if flash else deliverer.wake).set()

    def clock_doubted(self, peer: str) -> None:
        """A signed request from `peer` contradicts its measured clock offset: forget it, measure again.

        Until the link test that follows (within a tick), the peer's times are read as they are, as
        before any offset was measured. A request cannot set an offset itself: a replayed one would.
        """
        self.ctx.clock_offsets[peer] = None
        if self.scheduler is not None:
            self.scheduler.test_soon(peer)

    async def run(self, job: Callable[[Connection], T], *, urgent: bool = False, weight: int = 1) -> T:
        """Run a writer job; return its result once its transaction has committed.

        `urgent` (FLASH traffic, a delivery batch's receipts) puts it in the writer's next batch, ahead
        of the jobs waiting; `weight` is about how many envelopes it writes (`Writer.run`).
        """
        return await self.ctx.writer.run(job, urgent=urgent, weight=weight)

    def read(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only function of a connection (`store.db.read`)."""
        return store_db.read(self.ctx.engine, query)

    async def aread(self, query: Callable[[Connection], T]) -> T:
        """Run a read-only function of a connection off the event loop."""
        return await asyncio.to_thread(self.read, query)

    async def read_quick(self, query: Callable[[Connection], T]) -> T:
        """Run a short read-only function on the event loop, and off it if its connection failed.

        For the reads on every request's path (a token, a session, a precedence): an indexed read
        costs less than the hand-off to a thread. One whose connection failed runs again with
        `aread`, which waits out a PostgreSQL restart in a thread while the node goes on serving.
        Raises what `read` raises (`Unavailable` once the database counts as down).
        """
        try:
            return store_db.read_without_waiting(self.ctx.engine, query)
        except store_db.ReadElsewhere:
            return await self.aread(query)

    async def stop(self) -> None:
        """Stop background work, close peer connections, keep what peers said they accept, close the writer."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in self.clients.values():
            await client.close()
        self.ctx.accepts_changed = None
        try:  # a peer's word heard just before the stop, not yet written: the next start needs it
            await self.keep_accepts()
        except Exception as exc:
            log.warning("what the peers accept was not kept: %s", exc)
        await self.ctx.writer.detach()
        self.ctx.writer.stop()
        self.ctx.engine.dispose()
        self.repeats.detach()
