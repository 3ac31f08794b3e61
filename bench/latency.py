"""FLASH latency: one message at a time from pk's DGMO to ir's DGMO, and the acknowledgement back.

For each message: POST /api/v1/messages on pk (201 = durably accepted) → the `message` event on
ir-dgmo's stream (stored and logged on ir, with its receipt signed) → the `receipt` event on
pk-dgmo's stream (pk holds the receipt). Then ir-dgmo POSTs the ack → the `acknowledged` event on
pk-dgmo's stream. The next message starts only after the ack's own receipt reached ir, so the
messages never overlap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.client import StreamWatcher, api_client, message_request
from bench.common import summary_ms
from bench.nodes import Cluster

TEXT = "FLASH: explosions reported near Panjgur. Request immediate clarification."


async def measure(cluster: Cluster, n: int, warmup: int, advance: Callable[[int], None]) -> dict[str, Any]:
    """Send `warmup` + `n` FLASH messages one at a time; return the latency summaries (ms)."""
    pk, ir = cluster["pk"], cluster["ir"]
    samples: dict[str, list[float]] = {k: [] for k in ("accept", "deliver", "receipt", "ack_accept", "ack_seen")}
    failures: list[str] = []
    pk_api = api_client(pk.url, pk.context, pk.token("pk-dgmo"))
    ir_api = api_client(ir.url, ir.context, ir.token("ir-dgmo"))
    started = time.perf_counter()
    async with (
        pk_api,
        ir_api,
        StreamWatcher(pk.ws_url, pk.context, pk.token("pk-dgmo")) as pk_stream,
        StreamWatcher(ir.ws_url, ir.context, ir.token("ir-dgmo")) as ir_stream,
    ):
        for i in range(warmup + n):
            try:
                one = await _round_trip(pk_api, ir_api, pk_stream, ir_stream, i)
            except (TimeoutError, RuntimeError) as exc:
                failures.append(f"message {i}: {type(exc).__name__}: {exc}")
                if len(failures) > max(10, n // 20):
                    raise RuntimeError(f"too many failed round trips: {failures[-3:]}") from exc
                continue
            finally:
                advance(1)
            if i >= warmup:
                for key, value in one.items():
                    samples[key].append(value)
            if i % 100 == 0:
                pk_stream.forget()
                ir_stream.forget()
    return {
        "n": n,
        "warmup": warmup,
        "seconds": round(time.perf_counter() - started, 2),
        "failures": failures,
        **{key: summary_ms(values) for key, values in samples.items()},
    }


async def _round_trip(
    pk_api: Any, ir_api: Any, pk_stream: StreamWatcher, ir_stream: StreamWatcher, i: int
) -> dict[str, float]:
    t0 = time.perf_counter()
    response = await pk_api.post("/api/v1/messages", json=message_request("dgmo", "ir:dgmo", "FLASH", f"{TEXT} #{i}"))
    t_accept = time.perf_counter()
    if response.status_code != 201:
        raise RuntimeError(f"send answered {response.status_code}: {response.text[:200]}")
    message_id = response.json()["id"]
    t_deliver = await ir_stream.wait("message", message_id)
    t_receipt = await pk_stream.wait("receipt", message_id)
    t1 = time.perf_counter()
    ack = await ir_api.post(f"/api/v1/messages/{message_id}/ack", json={})
    t_ack_accept = time.perf_counter()
    if ack.status_code != 201:
        raise RuntimeError(f"ack answered {ack.status_code}: {ack.text[:200]}")
    t_ack_seen = await pk_stream.wait("acknowledged", message_id)
    await ir_stream.wait("receipt", ack.json()["id"])
    return {
        "accept": t_accept - t0,
        "deliver": t_deliver - t0,
        "receipt": t_receipt - t0,
        "ack_accept": t_ack_accept - t1,
        "ack_seen": t_ack_seen - t1,
    }


def run(cluster: Cluster, n: int, warmup: int, advance: Callable[[int], None]) -> dict[str, Any]:
    """Blocking entry point (runs its own event loop)."""
    return asyncio.run(measure(cluster, n, warmup, advance))
