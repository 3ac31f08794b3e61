"""Settings of the HTTP stack shared by every node (and by the benchmark's floor server).

Kept apart from the application so that the floor, which must run the same stack, does not have
to import the node to get them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi.telemetry import TelemetryConfig

# FastAPI's native OpenTelemetry, off: a node sends nothing about its traffic to a collector, and
# asking on every request whether one is configured cost a seventh of a request's handling.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# uvicorn's options beside the address and the TLS files.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "timeout_graceful_shutdown": 5,
    # An idle connection is kept 30 s (uvicorn's default is 5), while a peer's client drops it after
    # 3 s (`node.peers.KEEPALIVE`). The server counts from when it wrote its answer; on a slow link
    # the answer, then the next request's first TLS record (16 KB: 2 s at 64 kbit/s), are still
    # crossing meanwhile, and with 5 s the server closed connections just as a request arrived
    # ("it closed the connection before answering"), failing batches that had crossed (QA).
    "timeout_keep_alive": 30,
    # Stream events are small: compressing them costs CPU per event and subscriber, and
    # compressing a peer's text beside our own under TLS invites length side channels.
    "ws_per_message_deflate": False,
    # A node terminates its own TLS (peers pin its certificate), so no HTTP proxy stands before it
    # whose X-Forwarded-For it could trust. uvicorn trusts that header from 127.0.0.1 by default: a
    # client reaching the node through a local TCP forwarder could name any address, and so escape
    # the console's per-address login limit.
    "proxy_headers": False,
}


class NodeServer(uvicorn.Server):
    """uvicorn's server, which lets go at once of a connection it has already closed.

    On shutdown uvicorn closes every idle keep-alive connection and waits until each is gone. Over
    TLS, a closed connection is gone only when the client answers with its own close_notify, and an
    idle client (a browser tab, an operator's HTTP client between two requests) reads nothing:
    every Ctrl-C of a node with a console open took the whole 5 s grace and ended with an error.
    A connection whose close has been sent in full is aborted instead; one still writing, and one
    with a request in flight, is waited for as before (`timeout_graceful_shutdown`).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._early: list[int] = []

    def hold_signals(self) -> None:
        """Keep a Ctrl-C or SIGTERM that comes before the server takes its signals, to act on it then.

        `serve` says "serving on" before the server runs; a Ctrl-C between the two (during the
        collection before it, or the event loop's start) was lost, and the node went on serving
        until a second one (found by a test that stops a node the moment it says it serves).
        """
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda caught, _frame: self._early.append(caught))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            for caught in self._early:  # handled as if they came now: the server stops as soon as it started
                self.handle_exit(caught, None)
            yield

    async def _wait_tasks_to_complete(self) -> None:
        # uvicorn 0.54's own wait (pinned in pyproject.toml) follows, once every connection left
        # is gone; the graceful timeout around this whole method still bounds the wait.
        while self.server_state.connections and not self.force_exit:
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None and transport.is_closing() and transport.get_write_buffer_size() == 0:
                    transport.abort()  # everything it was sent has left, close_notify included
            await asyncio.sleep(0.05)
        await super()._wait_tasks_to_complete()
