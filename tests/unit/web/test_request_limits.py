"""The node-wide budget of federation bodies held at once (`web.limits.RequestLimits`).

Red team: a federation body is read before its signature can be checked, so 30 unsigned 16 MiB
POSTs made a node hold 340 MB, and enough of them at once would exhaust its memory. Past the
budget a request is answered 503, and what a request held is freed when it is answered.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI, Request

from detente.web import errors
from detente.web.errors import FEDERATION_UNAVAILABLE
from detente.web.limits import FEDERATION_BUSY, RequestLimits
from support import run_async

BUDGET = 1_000


def _limited() -> tuple[RequestLimits, asyncio.Event]:
    """Return the middleware with a budget of 1,000 bytes around an app echoing the body's length."""
    app = FastAPI()
    errors.install(app)
    released = asyncio.Event()

    @app.post("/federation/v1/envelopes")
    async def envelopes(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @app.post("/api/v1/messages")
    async def messages(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    return RequestLimits(app, federation_budget=BUDGET), released


async def _post(limits: RequestLimits, path: str, chunks: list[bytes], hold: asyncio.Event | None = None,
                length: int | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """POST `chunks` through `limits`; with `hold`, wait for it before the last chunk. Return status and JSON."""
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "headers": headers,
             "query_string": b"", "http_version": "1.1", "scheme": "https", "server": ("127.0.0.1", 1),
             "client": ("127.0.0.1", 2), "root_path": ""}  # fmt: skip
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = pending.pop(0)
        if not pending and hold is not None:
            await hold.wait()
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await limits(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def test_a_federation_body_past_the_nodes_budget_is_answered_503_and_freed_with_its_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        limits, released = _limited()
        # The first request holds 600 bytes and waits for its last chunk: the node holds its body.
        first = asyncio.create_task(_post(limits, "/federation/v1/envelopes", [b"x" * 600, b""], hold=released))
        await asyncio.sleep(0.05)
        assert limits.federation_held == 600
        # Another 600 bytes would pass the budget: refused as they stream in, or at once when announced.
        streamed = await _post(limits, "/federation/v1/envelopes", [b"y" * 300, b"y" * 300])
        announced = await _post(limits, "/federation/v1/envelopes", [b"z" * 600], length=600)
        for status, answer in (streamed, announced):
            assert status == 503 and answer["detail"] == FEDERATION_UNAVAILABLE, answer  # a peer learns only that
        assert [r.getMessage() for r in caplog.records] == [f"federation request answered 503: {FEDERATION_BUSY}"] * 2
        assert limits.federation_held == 600
        # The operator API is not counted against the peers' budget.
        assert await _post(limits, "/api/v1/messages", [b"a" * 900]) == (200, {"read": 900})
        released.set()
        assert await first == (200, {"read": 600})
        assert limits.federation_held == 0
        # With the first answered, the same body fits.
        assert await _post(limits, "/federation/v1/envelopes", [b"z" * 600], length=600) == (200, {"read": 600})
        assert limits.federation_held == 0

    run_async(run())
