"""The operator stream on a real server (uvicorn, TLS, in this process): events, and clients that leave."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets

from detente.node.demo import setup_demo
from detente.node.runtime import Node
from detente.node.tls import trust_exactly
from detente.web.app import create_app
from detente.web.stack import UVICORN_OPTIONS
from support import run_async

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.timeout(90)
def test_a_stream_carries_events_and_its_sender_ends_when_the_client_leaves(tmp_path: Path) -> None:
    info = setup_demo(tmp_path / "demo", ROOT / "agreements" / "pk-ir.toml")
    pk = info["nodes"]["pk"]
    token = next(op["token"] for op in pk["operators"] if op["name"] == "pk-dgmo")
    node = Node.open(Path(pk["data"]))
    bus = node.ctx.bus
    config = node.ctx.config
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(node, start_background=False),
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(config.cert_path),
            ssl_keyfile=str(config.tls_key_path),
            **UVICORN_OPTIONS,
        )
    )
    context = trust_exactly(Path(config.cert_path).read_text())
    headers = {"Authorization": f"Bearer {token}"}

    async def subscribers_become(n: int) -> None:
        for _ in range(200):
            if len(bus._subscribers) == n:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"{len(bus._subscribers)} stream subscribers, expected {n}")

    async def scenario() -> None:
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.02)
            url = f"wss://127.0.0.1:{port}/api/v1/stream"
            async with websockets.connect(url, ssl=context, additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["event"] == "hello"
                await subscribers_become(1)
                async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=context) as api:
                    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
                               "body": {"text": "stream"}}  # fmt: skip
                    sent = await api.post("/api/v1/messages", json=request, headers=headers)
                assert sent.status_code == 201, sent.text
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert (event["event"], event["id"]) == ("sent", sent.json()["id"])
            # The client has gone and no event follows: the server's sender, waiting for the next
            # event, must still end and stop being fed.
            await subscribers_become(0)
        finally:
            server.should_exit = True
            await serving

    run_async(scenario())
