"""Proof of delivery: each envelope this node sent is proven to sit in the receiver's log.

The receiver's signed receipt names the log index it gave the envelope. Once this node (as a
witness) has cosigned a checkpoint of the receiver's log that covers that index, a `ProofFetcher`
asks the receiver for the RFC 6962 inclusion proof of that index at that checkpoint's size, and
verifies it against the root *it cosigned* with the leaf hash of the envelope bytes it sent. Only
then is the message marked `verified` (the proof is kept, so it can be shown offline later).

The receiver is trusted for nothing: a wrong proof does not verify. If the proof of a receipted
index fails against a cosigned root, the receiver's log does not hold the envelope where its
signed receipt says it does: that is raised as an alarm of kind `inclusion`, once per envelope.

Delivery comes first: while the link to the peer carries a backlog, the fetcher waits (at most
`MAX_DEFER` seconds at a time), because proving costs both nodes CPU that the backlog needs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from detente.core import merkle, merkle_verify
from detente.core.envelope import uuid7
from detente.core.precedence import format_time, now
from detente.errors import MalformedError, NotFound, Unavailable, VerificationError
from detente.node.context import NodeContext
from detente.node.events import Event, wait_set
from detente.node.peers import PeerClient
from detente.store import tlog
from detente.store.db import read_connection

log = logging.getLogger("detente.proofs")
BATCH = 256  # proofs per request: the most the endpoint gives (web.record.MAX_PROOFS)
IDLE = 3.0
MAX_DEFER = 30.0  # seconds a backlog may hold back proofs of delivery before one batch goes anyway
DEFER_STEP = 0.5  # how often a deferred fetcher looks again


def parse_proof_reply(doc: Any, index: int | None, size: int) -> tuple[int, list[bytes]]:
    """Return (index, proof hashes) from a peer's inclusion proof JSON reply.

    Raises `MalformedError` if it is not {"index": int, "size": int, "proof": [base64 hash, ...]}
    for the index (if given) and size asked.
    """
    try:
        got_index, got_size, proof = int(doc["index"]), int(doc["size"]), doc["proof"]
        hashes = [base64.b64decode(p, validate=True) for p in proof]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise MalformedError("malformed inclusion proof reply") from exc
    if got_size != size or (index is not None and got_index != index) or len(hashes) > 64:
        raise MalformedError("inclusion proof reply is for another index or size")
    return got_index, hashes


async def fetch_inclusion(client: PeerClient, size: int, **key: Any) -> tuple[int, list[bytes]]:
    """Ask the peer for an inclusion proof (by `index=` or `id=`) at `size`.

    Raises `Unavailable` if it cannot be reached or refuses, `NotFound` if it has no such entry at
    that size, and `MalformedError` for a reply that is not a proof of what was asked.
    """
    params = {**{k: str(v) for k, v in key.items()}, "size": str(size)}
    response = await client.request("GET", "/federation/v1/log/proof/inclusion", params=params)
    if response.status_code != 200:
        detail = f"{client.peer.id} gave no inclusion proof: {response.refusal()}"
        raise NotFound(detail) if response.status_code == 404 else Unavailable(detail)
    try:
        doc = response.json()
    except ValueError as exc:
        raise MalformedError("inclusion proof reply is not JSON") from exc
    return parse_proof_reply(doc, key.get("index"), size)


async def fetch_inclusions(client: PeerClient, size: int, indexes: list[int]) -> list[list[bytes]]:
    """Ask the peer for the inclusion proofs of `indexes` at `size`, in one request.

    Raises `Unavailable` if it cannot be reached or refuses, `NotFound` if it lacks an entry or the
    size, and `MalformedError` for a reply that does not answer exactly what was asked.
    """
    body = json.dumps({"size": size, "indexes": indexes}).encode()
    response = await client.request("POST", "/federation/v1/log/proof/inclusions", body)
    if response.status_code != 200:
        detail = f"{client.peer.id} gave no inclusion proofs: {response.refusal()}"
        raise NotFound(detail) if response.status_code == 404 else Unavailable(detail)
    try:
        doc = response.json()
        items = doc["proofs"]
        if doc["size"] != size or len(items) != len(indexes):
            raise MalformedError("inclusion proofs reply does not answer what was asked")
        return [
            parse_proof_reply({**item, "size": size}, index, size)[1]
            for item, index in zip(items, indexes, strict=True)
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedError("malformed inclusion proofs reply") from exc


class ProofFetcher:
    """Verifies the delivery of this node's envelopes into one peer's log."""

    def __init__(self, ctx: NodeContext, client: PeerClient, busy: Callable[[], bool] | None = None) -> None:
        self.ctx = ctx
        self.client = client
        self.peer = client.peer.id
        self.origin = client.peer.log_origin
        self.wake = asyncio.Event()
        self._alarmed: set[str] = set()
        self._busy = busy or (lambda: False)  # whether the delivery link to the peer has a backlog
        self.deferred = 0  # rounds held back by a backlog (for tests and status)

    def _read(self) -> tuple[Any, list[Any]]:
        with read_connection(self.ctx.engine) as conn:
            state = tlog.get_witness_state(conn, self.origin)
            rows = [] if state is None else tlog.unverified_sent(conn, self.peer, BATCH + len(self._alarmed))
        return state, rows

    async def run(self) -> None:
        """Verify deliveries until cancelled, after the delivery link's backlog (see the module)."""
        while True:
            self.wake.clear()
            await self._after_backlog()
            try:
                progressed = await self.verify_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged; tried again at the next wake
                log.warning("proof of delivery from %s failed: %s", self.peer, exc)
                progressed = False
            if progressed:
                continue
            await wait_set(self.wake, IDLE)

    async def _after_backlog(self) -> None:
        """Wait while the link to the peer has a backlog, at most `MAX_DEFER` seconds."""
        # Proving a batch costs pk a read, BATCH proofs to check and a write, and the peer BATCH
        # proofs to build: about an eighth of each node's CPU per message under load, which the
        # backlog needs more. The wait is bounded so that a sustained load still gets a batch
        # proven every MAX_DEFER seconds.
        waited = 0.0
        while waited < MAX_DEFER and self._busy():
            self.deferred += 1
            await asyncio.sleep(DEFER_STEP)
            waited += DEFER_STEP

    async def verify_once(self) -> bool:
        """Verify what the newest cosigned checkpoint of the peer covers; return whether all of a full batch was."""
        state, rows = await asyncio.to_thread(self._read)
        if state is None:
            return False
        size, root = int(state["size"]), bytes(state["root"])
        done: list[tuple[Any, int, list[bytes]]] = []
        failed: list[tuple[Any, int, list[bytes], str]] = []
        wanted: list[tuple[Any, int]] = []
        for row in rows:
            if row["id"] in self._alarmed:
                continue
            index = int(json.loads(row["receipt"])["log_index"])
            if index < size:  # else not covered by a checkpoint we cosigned yet
                wanted.append((row, index))
            if len(wanted) >= BATCH:
                break
        proofs = await fetch_inclusions(self.client, size, [index for _, index in wanted]) if wanted else []
        for (row, index), proof in zip(wanted, proofs, strict=True):
            try:
                merkle_verify.verify_inclusion(index, size, merkle.leaf_hash(bytes(row["raw"])), proof, root)
            except VerificationError as exc:
                failed.append((row, index, proof, exc.detail))
                self._alarmed.add(str(row["id"]))
            else:
                done.append((row, index, proof))
        if done or failed:
            events = await self.ctx.writer.run(self._store_job(size, state, done, failed))
            self.ctx.bus.publish(*events)
        return len(done) >= BATCH

    def _store_job(
        self,
        size: int,
        state: Any,
        done: list[tuple[Any, int, list[bytes]]],
        failed: list[tuple[Any, int, list[bytes], str]],
    ) -> Callable[[Connection], list[Event]]:
        def job(conn: Connection) -> list[Event]:
            at = format_time(now())
            events: list[Event] = []
            tlog.mark_verified(conn, size, at, [(str(row["id"]), proof) for row, _, proof in done])
            for row, index, _ in done:
                if row["type"] != "link.test":
                    data = {"peer": self.peer, "log_index": index, "size": size, "verified_at": at}
                    events.append(Event("verified", str(row["id"]), (str(row["from_office"]),), data))
            for row, index, proof, detail in failed:
                evidence = {
                    "kind": "inclusion",
                    "origin": self.origin,
                    "log_vkey": self.client.peer.vkey,
                    "envelope": bytes(row["raw"]).decode(),
                    "receipt": json.loads(row["receipt"]),
                    "cosigned": {"size": size, "root": base64.b64encode(bytes(state["root"])).decode(),
                                 "note": bytes(state["note"]).decode()},
                    "proof": [base64.b64encode(p).decode() for p in proof],
                    "reason": detail,
                }  # fmt: skip
                summary = (
                    f"{self.peer}'s receipt puts envelope {row['id']} at index {index}, but its log "
                    f"of size {size} that this node cosigned does not prove it there"
                )
                alarm_id = uuid7()
                tlog.insert_alarm(conn, alarm_id, "inclusion", self.peer, self.origin, summary, evidence, at)
                data = {
                    "kind": "inclusion",
                    "peer": self.peer,
                    "origin": self.origin,
                    "summary": summary,
                    "created": at,
                }
                events.append(Event("alarm", alarm_id, (), data, everyone=True))
            return events

        return job
