"""Throughput: concurrent senders on pk across three channels, everything delivered to ir, nothing lost.

Each sender is an operator client (pk-dgmo, pk-fs, pk-lo-zahedan in turn) POSTing ROUTINE
`hotline.text` messages back to back for the duration: one per request, or, in the batched run,
several per `POST /api/v1/messages/batch`. A sampler reads pk's outbox depth and ir's
incoming count straight from the databases, and both nodes' RSS, every `SAMPLE` seconds. When the
senders stop, the bench waits for the outbox to drain, then checks every accepted id against both
`envelopes` tables (pk's row must carry ir's receipt) and both `log` tables, and then waits until
pk has proven every one of them in ir's log (proofs wait while the link has a backlog).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bench.client import MESSAGE_TIMEOUT, RawClient, StreamWatcher, api_client, message_request
from bench.common import proc_cpu, summary_ms
from bench.nodes import Cluster, Node
from detente.store.tables import envelopes, log

CHANNELS = (("dgmo", "ir:dgmo", "pk-dgmo"), ("fs", "ir:fs", "pk-fs"), ("liaison", "ir:lo-turbat", "pk-lo-zahedan"))
SAMPLE = 0.25
PROOF_POLL = 0.5  # seconds between looks at pk's proofs of delivery after the drain
PRECEDENCE = "ROUTINE"  # six-hour deadline: nothing turns overdue while the bench runs


def _incoming(node: Node) -> int:
    with node.engine().connect() as conn:
        query = select(func.count()).select_from(envelopes).where(envelopes.c.direction == "in")
        return int(conn.execute(query).scalar() or 0)


@dataclass(frozen=True)
class Load:
    """What the senders do: how many, for how long, and how they send.

    With `per_request` above 1, each sender posts that many messages at a time to
    `POST /api/v1/messages/batch` instead of one to `POST /api/v1/messages`. With `flash_every`,
    the senders load every channel but the last, and a FLASH message goes on the last one every
    `flash_every` seconds: the time until ir's stream shows it is what a duty officer waits for a
    FLASH while other channels carry a backlog. ir's liaison officer then acknowledges each one,
    and the time until pk's stream shows it is how long the sender waits for that answer.
    """

    senders: int
    duration: float
    drain_timeout: float
    per_request: int = 1
    flash_every: float = 0.0


async def measure(cluster: Cluster, load: Load, update: Callable[[float], None]) -> dict[str, Any]:
    """Run the load; return rates, the outbox series, RSS samples and the loss check."""
    senders, duration, drain_timeout = load.senders, load.duration, load.drain_timeout
    per_request, flash_every = load.per_request, load.flash_every
    pk, ir = cluster["pk"], cluster["ir"]
    accepted: list[tuple[float, str]] = []
    errors: list[str] = []
    ir_before = await asyncio.to_thread(_incoming, ir)
    series: list[dict[str, float]] = []
    cpu_before = {"pk": proc_cpu(pk.pid), "ir": proc_cpu(ir.pid), "bench": time.process_time()}
    start = time.perf_counter()
    stop_at = start + duration

    loaded = CHANNELS[:-1] if flash_every else CHANNELS
    flashes: list[float] = []
    acks: list[float] = []

    async def sender(k: int) -> None:
        channel, to, operator = loaded[k % len(loaded)]
        async with api_client(pk.url, pk.context, pk.token(operator)) as client:
            i = 0
            while time.perf_counter() < stop_at:
                texts = [f"sender {k} message {i + j}: status report" for j in range(per_request)]
                requests = [message_request(channel, to, PRECEDENCE, text) for text in texts]
                path, payload = ("/api/v1/messages", requests[0])
                if per_request > 1:
                    path, payload = ("/api/v1/messages/batch", {"messages": requests})
                try:
                    response = await client.post(path, json=payload)
                except Exception as exc:  # counted and reported; the run goes on
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                finally:
                    i += per_request
                if response.status_code != 201:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                answered = time.perf_counter() - start
                sent = response.json()["messages"] if per_request > 1 else [response.json()]
                accepted.extend((answered, one["id"]) for one in sent)

    sending = [asyncio.create_task(sender(k)) for k in range(senders)]
    drained_at: float | None = None

    async def acknowledge(client: RawClient, stream: StreamWatcher, message_id: str) -> None:
        asked = time.perf_counter()
        response = await client.post(f"/api/v1/messages/{message_id}/ack", json={})
        if response.status_code != 201:
            errors.append(f"FLASH ack: HTTP {response.status_code}: {response.text[:200]}")
            return
        try:
            acks.append(await stream.wait("acknowledged", message_id) - asked)
        except TimeoutError:
            errors.append(f"the ack of FLASH {message_id} not on pk's stream within {MESSAGE_TIMEOUT} s")

    async def flash(stream: StreamWatcher, pk_stream: StreamWatcher) -> None:
        channel, to, operator = CHANNELS[-1]
        answering: list[asyncio.Task[None]] = []
        async with (
            api_client(pk.url, pk.context, pk.token(operator)) as client,
            api_client(ir.url, ir.context, ir.token(to.replace(":", "-"))) as ir_client,
        ):
            i = 0
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                request = message_request(channel, to, "FLASH", f"FLASH {i} among the load")
                response = await client.post("/api/v1/messages", json=request)
                i += 1
                if response.status_code != 201:
                    errors.append(f"FLASH: HTTP {response.status_code}: {response.text[:200]}")
                    continue
                accepted.append((sent - start, response.json()["id"]))
                try:
                    flashes.append(await stream.wait("message", response.json()["id"]) - sent)
                except TimeoutError:
                    errors.append(f"FLASH {i - 1} not on ir's stream within {MESSAGE_TIMEOUT} s")
                else:  # answered beside the next FLASH, so that the probe keeps its pace
                    answering.append(asyncio.create_task(acknowledge(ir_client, pk_stream, response.json()["id"])))
                await asyncio.sleep(flash_every)
            await asyncio.gather(*answering)

    async with (
        StreamWatcher(ir.ws_url, ir.context, ir.token("ir-supervisor")) as ir_stream,
        # The liaison officer's own stream: a supervisor's would carry every sent and receipt event.
        StreamWatcher(pk.ws_url, pk.context, pk.token(CHANNELS[-1][2])) as pk_stream,
    ):
        if flash_every:
            sending.append(asyncio.create_task(flash(ir_stream, pk_stream)))
        hard_stop = stop_at + drain_timeout
        while time.perf_counter() < hard_stop:
            await asyncio.sleep(SAMPLE)
            now = time.perf_counter() - start
            depth = await asyncio.to_thread(pk.outbox_depth)
            arrived = await asyncio.to_thread(_incoming, ir) - ir_before
            pk_mem, ir_mem = pk.memory(), ir.memory()
            series.append(
                {
                    "t": round(now, 2),
                    "accepted": len(accepted),
                    "outbox": depth,
                    "ir_received": arrived,
                    "pk_rss_mb": pk_mem.get("VmRSS", 0.0),
                    "ir_rss_mb": ir_mem.get("VmRSS", 0.0),
                }
            )
            update(now)
            if all(task.done() for task in sending) and depth == 0 and arrived >= len(accepted):
                drained_at = now
                break
        pushed = ir_stream.counts.get("message", 0)
    cpu_after = {"pk": proc_cpu(pk.pid), "ir": proc_cpu(ir.pid), "bench": time.process_time()}
    for task in sending:
        task.cancel()
    await asyncio.gather(*sending, return_exceptions=True)
    sent_for = max((t for t, _ in accepted), default=duration)
    check = await asyncio.to_thread(_loss_check, cluster, [i for _, i in accepted])
    delivered = check["on_both"]
    # Proofs of delivery wait while the link has a backlog (node.delivery_proofs): say how long
    # after the drain every accepted message was proven in ir's log, so the deferred work shows.
    proofs = await _proofs_caught_up(pk, {i for _, i in accepted}, drain_timeout) if drained_at else None
    cpu_proven = {"pk": proc_cpu(pk.pid), "ir": proc_cpu(ir.pid)}
    in_window = [s for s in series if s["t"] <= duration]
    window_received = in_window[-1]["ir_received"] if in_window else 0
    return {
        "senders": senders,
        "per_request": per_request,
        "duration_s": duration,
        "precedence": PRECEDENCE,
        "channels": [c for c, _, _ in loaded],
        "flash_among_load": {
            "channel": CHANNELS[-1][0],
            "every_s": flash_every,
            **summary_ms(flashes),
            "ack_seen": summary_ms(acks),
        }
        if flash_every
        else None,
        "accepted": len(accepted),
        "errors": len(errors),
        "first_errors": errors[:5],
        "accepted_per_s": round(len(accepted) / sent_for, 1) if accepted else 0.0,
        "received_per_s_while_sending": round(window_received / duration, 1),
        "drained": drained_at is not None,
        "drain_s": None if drained_at is None else round(max(0.0, drained_at - sent_for), 2),
        "delivered_per_s": round(delivered / drained_at, 1) if drained_at else None,
        "max_outbox": max((s["outbox"] for s in series), default=0),
        "cpu_ms_per_message": {
            k: round((cpu_after[k] - cpu_before[k]) / max(delivered, 1) * 1000, 3) for k in cpu_before
        },
        "cpu_ms_per_message_with_proofs": {
            k: round((cpu_proven[k] - cpu_before[k]) / max(delivered, 1) * 1000, 3) for k in cpu_proven
        },
        "pushed_on_ir_stream": pushed,
        "loss": check,
        "proofs": proofs,
        "series": series,
        "peak_rss_mb": {"pk": pk.memory().get("VmHWM"), "ir": ir.memory().get("VmHWM")},
    }


def _ids(node: Node, query: Any) -> set[str]:
    with node.engine().connect() as conn:
        return {str(r[0]) for r in conn.execute(query)}


async def _proofs_caught_up(pk: Node, wanted: set[str], timeout: float) -> dict[str, Any]:
    """Wait until pk holds a verified inclusion proof for every id in `wanted` (or `timeout`)."""
    start = time.perf_counter()
    query = select(envelopes.c.id).where(envelopes.c.verified_at.is_not(None))
    while True:
        verified = len(await asyncio.to_thread(_ids, pk, query) & wanted)
        waited = time.perf_counter() - start
        if verified == len(wanted) or waited > timeout:
            return {"verified": verified, "of": len(wanted), "after_drain_s": round(waited, 2)}
        await asyncio.sleep(PROOF_POLL)


def _loss_check(cluster: Cluster, accepted: list[str]) -> dict[str, Any]:
    """Count the accepted ids present in each table; `lost` must be 0."""
    pk, ir = cluster["pk"], cluster["ir"]
    wanted = set(accepted)
    receipted = _ids(pk, select(envelopes.c.id).where(envelopes.c.receipt.is_not(None))) & wanted
    pk_log = _ids(pk, select(log.c.envelope_id)) & wanted
    ir_env = _ids(ir, select(envelopes.c.id).where(envelopes.c.direction == "in")) & wanted
    ir_log = _ids(ir, select(log.c.envelope_id)) & wanted
    both = receipted & pk_log & ir_env & ir_log
    return {
        "accepted": len(wanted),
        "pk_receipted": len(receipted),
        "pk_logged": len(pk_log),
        "ir_stored": len(ir_env),
        "ir_logged": len(ir_log),
        "on_both": len(both),
        "lost": len(wanted - both),
        "duplicates": len(accepted) - len(wanted),
    }


def run(cluster: Cluster, load: Load, update: Callable[[float], None]) -> dict[str, Any]:
    """Blocking entry point (runs its own event loop)."""
    return asyncio.run(measure(cluster, load, update))
