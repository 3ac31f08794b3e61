"""The floor's server: the node's stack (uvicorn + FastAPI + TLS, same defaults) with trivial endpoints.

    python -m bench.floor_server --port P --cert tls.crt --key tls.key

POST /echo   parses a JSON object and answers {"ok": true}
POST /push   parses a JSON object and pushes {"event": "message", "id": ...} to every WS /ws client
WS   /ws     receives those pushes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from detente.web.stack import TELEMETRY_OFF, UVICORN_OPTIONS


def create_app() -> FastAPI:
    app = FastAPI(telemetry=TELEMETRY_OFF)
    subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/push", status_code=201)
    async def push(payload: dict[str, Any]) -> dict[str, bool]:
        event = {"event": "message", "id": payload.get("id")}
        for queue in list(subscribers):
            queue.put_nowait(event)
        return {"ok": True}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        subscribers.add(queue)
        await websocket.accept()
        await websocket.send_json({"event": "hello", "id": None})
        try:
            while True:
                await websocket.send_json(await queue.get())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            subscribers.discard(queue)
            with contextlib.suppress(Exception):
                await websocket.close()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
