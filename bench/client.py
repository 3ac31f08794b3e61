"""The operator's side of the bench: API clients and a WebSocket stream watcher that timestamps events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import websockets

MESSAGE_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0


class Response:
    """What `RawClient` read: the status, the body, and `json()`."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class RawClient:
    """A minimal HTTP/1.1 keep-alive client over one TLS connection, for load generation.

    httpx spends about 2 ms of CPU per request on this machine, more than the server it measures;
    this client writes the request by hand and reads a Content-Length response, so the load
    generator leaves the cores to the nodes. One request at a time per client.
    """

    def __init__(self, url: str, context: ssl.SSLContext, token: str = "") -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.context = context
        self.headers = f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
        if token:
            self.headers += f"Authorization: Bearer {token}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def post(self, path: str, json: Any = None) -> Response:
        body = b"" if json is None else _dumps(json)
        head = f"POST {path} HTTP/1.1\r\n{self.headers}Content-Length: {len(body)}\r\n\r\n".encode()
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.context), 15
                )
            try:
                return await asyncio.wait_for(self._exchange(head + body), REQUEST_TIMEOUT)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()  # the server closed a kept-alive connection: retry once on a new one
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, request: bytes) -> Response:
        assert self._reader is not None and self._writer is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise RuntimeError("chunked responses are not supported by RawClient")
        content = await self._reader.readexactly(length)
        if close:
            await self.close()
        return Response(status, content)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def api_client(url: str, context: ssl.SSLContext, token: str) -> RawClient:
    """An HTTPS keep-alive client for one operator of one node."""
    return RawClient(url, context, token)


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
