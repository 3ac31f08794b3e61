"""The operator's side of the bench: API clients and a WebSocket stream watcher that timestamps events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from typing import Any

import httpx
import websockets

MESSAGE_TIMEOUT = 15.0


def api_client(url: str, context: ssl.SSLContext, token: str) -> httpx.AsyncClient:
    """An HTTPS keep-alive client for one operator of one node."""
    return httpx.AsyncClient(
        base_url=url,
        verify=context,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
    )


def message_request(channel: str, to: str, precedence: str, text: str) -> dict[str, Any]:
    return {"channel": channel, "to": to, "precedence": precedence, "type": "hotline.text", "body": {"text": text}}


class StreamWatcher:
    """Reads one operator's `WS /api/v1/stream` and records when each (event, id) arrived.

    `wait(kind, id)` returns the arrival time (time.perf_counter) of that event, whether it came
    before or after the call; it raises TimeoutError after `timeout` seconds.
    """

    def __init__(self, url: str, context: ssl.SSLContext, token: str) -> None:
        self.url = url
        self.context = context
        self.token = token
        self.arrived: dict[tuple[str, str], float] = {}
        self.counts: dict[str, int] = {}
        self._waiters: dict[tuple[str, str], asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def __aenter__(self) -> StreamWatcher:
        self._ws = await websockets.connect(
            self.url,
            ssl=self.context,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=2**22,
            open_timeout=15,
        )
        hello = json.loads(await asyncio.wait_for(self._ws.recv(), 15))
        if hello.get("event") != "hello":
            raise RuntimeError(f"unexpected first stream message: {hello}")
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)

    async def _read(self) -> None:
        async for raw in self._ws:
            at = time.perf_counter()
            event = json.loads(raw)
            kind = str(event.get("event"))
            self.counts[kind] = self.counts.get(kind, 0) + 1
            key = (kind, str(event.get("id")))
            waiter = self._waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(at)
            else:
                self.arrived[key] = at

    async def wait(self, kind: str, event_id: str, timeout: float = MESSAGE_TIMEOUT) -> float:
        key = (kind, event_id)
        if key in self.arrived:
            return self.arrived.pop(key)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.pop(key, None)

    def forget(self) -> None:
        """Drop remembered arrivals nobody waited for (keeps memory flat in long runs)."""
        self.arrived.clear()
