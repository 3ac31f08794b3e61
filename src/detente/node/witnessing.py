"""The witness client: this node submits its checkpoints to each peer and keeps their cosignatures.

One `WitnessClient` runs per peer. Each time a new checkpoint is signed (and every `IDLE`
seconds otherwise) it sends the latest one to the peer's `POST /federation/v1/add-checkpoint`
with the RFC 6962 consistency proof from the size that peer last cosigned. It starts from the
largest size whose cosignature by that peer is stored, or with `old 0` when there is none
(tlog-witness bootstrap). A 409 answer carries the size the peer really holds: the client proves
from that size and sends again. A 200 answer's cosignature is verified with the peer's pinned
key (as a cosignature/v1 key) over our checkpoint before it is stored and served.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from detente.core import merkle
from detente.core.checkpoint import format_add_checkpoint, open_checkpoint, parse_size_body
from detente.core.note import add_signatures, parse_note, parse_signature_lines, signature_for
from detente.core.precedence import format_time, now
from detente.errors import Error, VerificationError
from detente.node.context import NodeContext
from detente.node.events import wait_set
from detente.node.peers import PeerClient
from detente.node.witness import witness_verifier
from detente.store import tlog
from detente.store.db import read_connection

T = TypeVar("T")
log = logging.getLogger("detente.witnessing")
IDLE = 10.0
MAX_BACKOFF = 10.0
MAX_RESYNC = 3


class WitnessClient:
    """Gets this node's checkpoints cosigned by one peer."""

    def __init__(self, ctx: NodeContext, client: PeerClient, new_checkpoint: asyncio.Event) -> None:
        self.ctx = ctx
        self.client = client
        self.peer = client.peer.id
        self.new_checkpoint = new_checkpoint
        self.cosigned: int | None = None  # the size the peer last cosigned, as far as we know
        self.last_error: str | None = None
        self._failures = 0

    async def run(self) -> None:
        """Submit checkpoints until cancelled."""
        self.cosigned = await asyncio.to_thread(self._read, lambda c: tlog.last_cosigned_size(c, self.peer))
        while True:
            self.new_checkpoint.clear()
            try:
                await self.submit_latest()
                self._failures = 0
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # recorded and retried with backoff
                self._failures += 1
                self.last_error = exc.detail if isinstance(exc, Error) else f"{type(exc).__name__}: {exc}"
                log.warning("witnessing by %s failed: %s", self.peer, self.last_error)
            if self._failures:  # a new checkpoint does not cut a backoff short
                await asyncio.sleep(min(MAX_BACKOFF, 0.2 * 2 ** min(self._failures, 6)) * random.uniform(0.5, 1.0))
                continue
            await wait_set(self.new_checkpoint, IDLE)

    def _read(self, query: Callable[[Connection], T]) -> T:
        with read_connection(self.ctx.engine) as conn:
            return query(conn)

    def _proof(self, old: int, new: int) -> list[bytes]:
        with read_connection(self.ctx.engine) as conn:
            return merkle.prove_consistency(old, new, tlog.TableHashReader(conn))

    async def submit_latest(self) -> bool:
        """Submit our newest checkpoint unless the peer already cosigned it; return whether it did now.

        Raises `Unavailable` if the peer cannot be reached, `VerificationError` for a bad
        cosignature, and `Error` for any refusal.
        """
        latest = await asyncio.to_thread(self._read, tlog.latest_checkpoint)
        if latest is None:
            return False
        size, note = int(latest["size"]), bytes(latest["note"])
        if self.cosigned == size:
            return False
        old = self.cosigned or 0
        for _ in range(MAX_RESYNC):
            if old > size:
                raise Error(
                    f"{self.peer} has cosigned size {old} of our log, but our newest checkpoint is {size}: "
                    "this node's log lost entries (restored from an old backup?)"
                )
            proof = [] if old == 0 else await asyncio.to_thread(self._proof, old, size)
            body = format_add_checkpoint(old, proof, note)
            response = await self.client.request(
                "POST", "/federation/v1/add-checkpoint", body, content_type="text/plain; charset=utf-8"
            )
            if response.status_code == 409:
                old = parse_size_body(response.content)
                self.cosigned = old
                if old == size:
                    return False  # cosigned already (the cosignature we lost is not needed)
                continue
            if response.status_code != 200:
                raise Error(f"{self.peer} refused our checkpoint {size}: {response.refusal(300)}")
            await self._store(size, note, response.content)
            self.cosigned = size
            return True
        raise Error(f"{self.peer} kept answering 409 to checkpoint {size}")

    async def _store(self, size: int, note: bytes, reply: bytes) -> None:
        """Verify the peer's cosignature on our checkpoint and store it. Raises `VerificationError`."""
        verifier = witness_verifier(self.ctx, self.peer)
        try:
            sigs = parse_signature_lines(reply)
            ours = [s for s in sigs if s.name == verifier.name and s.key_id == verifier.key_id]
            signed = add_signatures(parse_note(note), *ours)
            _, _, cosigned = open_checkpoint(signed, self.ctx.signer.verifier, [verifier])
        except Error as exc:
            raise VerificationError(f"{self.peer} returned a bad cosignature: {exc.detail}") from exc
        sig = signature_for(signed, verifier)
        if verifier.name not in cosigned or sig is None:
            raise VerificationError(f"{self.peer} returned no cosignature by its pinned key")
        line = sig.line().rstrip("\n")
        at = format_time(now())
        await self.ctx.writer.run(lambda conn: tlog.add_cosignature(conn, size, self.peer, verifier.name, line, at))
