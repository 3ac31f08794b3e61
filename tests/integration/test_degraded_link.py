"""Two real nodes reaching each other through a bad link: a TCP relay that throttles the bytes.

Each party's URL in the agreement is its relay's address; the node itself listens on another port
(node.toml), as behind a NAT or a forwarder. The relay passes the TLS bytes through untouched.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import support
from detente.node.demo import free_port, setup_demo
from support import NodeProc, wait_for

pytestmark = pytest.mark.slow


class Relay:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target` in a thread of its own; `rate` (bytes/s,
    0 for none) throttles what goes to the target, shared by every connection, as a slow link would."""

    def __init__(self, target: int) -> None:
        self.port = free_port()
        self.target = target
        self.rate = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._lock = asyncio.Lock()  # one piece at a time crosses the throttled direction
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pump(reader, target_writer, throttled=True),
            self._pump(target_reader, writer, throttled=False),
            return_exceptions=True,
        )
        for w in (writer, target_writer):
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, throttled: bool) -> None:
        # The slow link's buffer, a router's or a modem's: up to 8 reads (128 KB) wait in it, so a
        # sender's write completes long before its bytes have crossed, as on a real slow link.
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)

        async def forward() -> None:
            while data := await queue.get():
                for start in range(0, len(data), 1024):
                    piece = data[start : start + 1024]
                    if throttled and self.rate:
                        async with self._lock:
                            await asyncio.sleep(len(piece) / self.rate)
                    writer.write(piece)
                    await writer.drain()
            writer.write_eof()

        forwarding = asyncio.create_task(forward())
        try:
            while data := await reader.read(1 << 14):
                await queue.put(data)
            await queue.put(b"")
            await forwarding
        except (OSError, RuntimeError):
            writer.close()
        finally:
            forwarding.cancel()

    def stop(self) -> None:
        async def cancel() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(cancel()))
        self._thread.join(5)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProc, NodeProc, dict[str, Relay]]]:
    """pk and ir, each reached by the other through its relay."""
    workdir = tmp_path_factory.mktemp("degraded")
    listen = {"pk": free_port(), "ir": free_port()}
    relays = {party: Relay(port) for party, port in listen.items()}
    ports = {party: relay.port for party, relay in relays.items()}
    info = setup_demo(workdir / "nodes", support.test_agreement(workdir), ports=ports, link_test_seconds=2)
    nodes: dict[str, NodeProc] = {}
    for party, node in info["nodes"].items():
        toml = Path(node["data"]) / "node.toml"
        toml.write_text(toml.read_text().replace(f"port = {relays[party].port}", f"port = {listen[party]}"))
        local: dict[str, Any] = {**node, "url": f"https://127.0.0.1:{listen[party]}"}  # operators reach it directly
        nodes[party] = NodeProc(local, workdir / f"{party}.log")
    for node in nodes.values():
        node.start(wait=False)
    try:
        for node in nodes.values():
            wait_for(node.is_up, 30, 0.1, f"node {node.party}")
        yield nodes["pk"], nodes["ir"], relays
    finally:
        for node in nodes.values():
            node.stop()
        for relay in relays.values():
            relay.stop()


def _links(node: NodeProc) -> dict[str, Any]:
    with node.client(f"{node.party}-admin") as client:
        found: dict[str, Any] = client.get("/api/v1/links").json()["links"][0]
    return found


def test_a_backlog_crosses_a_64_kbit_link_qa_degraded_link(linked: tuple[NodeProc, NodeProc, dict[str, Relay]]) -> None:
    # QA: at 64 kbit/s a batch of 100 KB takes over 12 s to cross, longer than the 10 s the client
    # waits for an answer from the moment it has written the batch: the deliverer sent the same
    # batch again and again and the outbox never emptied. It now halves a batch answered late.
    pk, ir, relays = linked
    relays["ir"].rate = 8000.0  # bytes/s from pk to ir
    # 72 envelopes of about 1.3 KB, queued in one transaction: the deliverer's first batch, 94 KB,
    # takes 12 s to cross.
    text = "Routine report from the Panjgur sector, nothing to note. " * 13
    messages = [
        {"channel": "fs", "to": "ir:fs", "precedence": "ROUTINE", "type": "hotline.text",
         "body": {"text": f"{n}: {text}"}}
        for n in range(72)
    ]  # fmt: skip
    ids = [m["id"] for m in pk.created("pk-fs", "/api/v1/messages/batch", {"messages": messages})["messages"]]
    started = time.monotonic()
    wait_for(lambda: _links(pk)["outbox"] == 0, 60, 0.5, "pk's outbox to empty over the slow link")
    took = time.monotonic() - started
    relays["ir"].rate = 0.0
    states = {pk.message("pk-fs", i)["state"] for i in ids}
    assert states == {"delivered"}, states
    with ir.client("ir-fs") as client:
        listed = client.get("/api/v1/messages", params={"box": "in", "limit": 1000}).json()["messages"]
    received = [m["id"] for m in listed if m["id"] in set(ids)]
    assert received == ids  # each once, in order
    assert took < 45, took
