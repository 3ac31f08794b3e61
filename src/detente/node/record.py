"""The record's background work in a running node: checkpoints, witnessing and proofs of delivery.

`Record.start` starts one `Checkpointer` for the node's own log and, per peer, a
`WitnessClient` (gets our checkpoints cosigned) and a `ProofFetcher` (proves our envelopes sit in
that peer's log). The witness *server* side is the federation endpoint (`web/record.py`), which
wakes the peer's `ProofFetcher` after it cosigned a new checkpoint of that peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from detente.node.checkpoints import Checkpointer
from detente.node.context import NodeContext
from detente.node.delivery_proofs import ProofFetcher
from detente.node.peers import PeerClient
from detente.node.witnessing import WitnessClient


class Record:
    """Owns the record's tasks of one node."""

    def __init__(
        self, ctx: NodeContext, clients: dict[str, PeerClient], busy: dict[str, Callable[[], bool]] | None = None
    ) -> None:
        """`busy` says, per peer, whether the delivery link has a backlog (proofs wait for it)."""
        self.ctx = ctx
        self.clients = clients
        self.checkpointer = Checkpointer(ctx)
        self.witness_clients = {p: WitnessClient(ctx, c, self.checkpointer.listen()) for p, c in clients.items()}
        self.fetchers = {p: ProofFetcher(ctx, c, (busy or {}).get(p)) for p, c in clients.items()}

    def start(self) -> list[asyncio.Task[Any]]:
        """Create and return the record's tasks (the node cancels them when it stops)."""
        tasks = [asyncio.create_task(self.checkpointer.run(), name="checkpointer")]
        tasks += [asyncio.create_task(w.run(), name=f"witnessing-{p}") for p, w in self.witness_clients.items()]
        tasks += [asyncio.create_task(f.run(), name=f"proofs-{p}") for p, f in self.fetchers.items()]
        return tasks

    def cosigned(self, peer: str) -> None:
        """Say that this node just cosigned a new checkpoint of `peer`'s log."""
        fetcher = self.fetchers.get(peer)
        if fetcher is not None:
            fetcher.wake.set()

    def status(self) -> dict[str, Any]:
        """Return what the witness clients know: per peer, the size it last cosigned and the last error."""
        return {p: {"cosigned_size": w.cosigned, "last_error": w.last_error} for p, w in self.witness_clients.items()}
