"""`WS /api/v1/stream`: live events for the operator's offices.

A stream is authenticated when it opens, like any API request (bearer token or console session),
and again each time that answer has stood for as long as the node trusts it (`web.deps.TOKEN_TTL`,
2 s): at that moment by a timer, and before sending an event. So an operator disabled or a token
replaced while the stream is open ends it within 2 s, with the close a refused connection gets
(4401 and the reason), and no event goes out on an answer older than that.

Clients only listen. Text frames are read and dropped; a binary frame closes the stream with 1003.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from detente.errors import Error
from detente.node.auth import WIDE_ROLES
from detente.node.events import Event
from detente.node.runtime import Node
from detente.store.operators import Operator
from detente.web.deps import websocket_credentials

log = logging.getLogger("detente.stream")
router = APIRouter()
# Put in a stream's queue to wake its sender when the stream must end: its client has gone or sent
# a binary frame, or its credentials were refused.
_WAKE = Event("stream.closed", None, ())
REFUSED = 4401  # credentials refused, when the stream opens or later (the 401 of HTTP)
UNSUPPORTED_DATA = 1003  # RFC 6455 §7.4.1: a frame of a type the endpoint does not accept
INTERNAL_ERROR = 1011  # RFC 6455 §7.4.1: the credentials could not be checked
_REASON_MAX = 120  # a close reason fits in 123 bytes (RFC 6455 §5.5)
# Least wait before the timer looks again: the loop may run a timer a hair early, and the answer
# then still stands.
_MIN_WAIT = 0.01


def concerns(event: Event, operator: Operator) -> bool:
    """Return whether the operator should see `event`."""
    if event.everyone or any(operator.has(r) for r in WIDE_ROLES):
        return True
    return any(office in operator.offices for office in event.offices)


class _Stream:
    """One open stream: its subscription, the time its credentials stand until, and how it must end."""

    def __init__(self, websocket: WebSocket, node: Node, operator: Operator, trusted_until: float) -> None:
        self.websocket = websocket
        self.node = node
        self.operator = operator
        self.trusted_until = trusted_until
        self.closing: tuple[int, str] | None = None  # the close the sender owes the client, if any
        self.queue = node.ctx.bus.subscribe()

    def wake(self) -> None:
        """Stop the subscription and wake the sender, which then ends."""
        self.node.ctx.bus.unsubscribe(self.queue)
        if self.queue.full():  # the bus drops the oldest event for a full queue; so does this
            self.queue.get_nowait()
        self.queue.put_nowait(_WAKE)

    def end(self, code: int, reason: str) -> None:
        """End the stream with this close code, sent by the sender (the first reason wins)."""
        if self.closing is None:
            self.closing = (code, reason[:_REASON_MAX])
        self.wake()

    async def trusted(self) -> bool:
        """Return whether the credentials still stand, asking again once their answer has expired.

        A refusal or a failed check ends the stream. Raises nothing.
        """
        if self.closing is not None:
            return False
        if time.monotonic() < self.trusted_until:
            return True
        try:
            # The same check as at connect, through the node's token cache: one database read per
            # token (not per stream or event) each TOKEN_TTL, or one per console stream.
            _, self.trusted_until = await websocket_credentials(self.websocket)
        except Error as exc:
            self.end(REFUSED, exc.detail)
            return False
        except Exception:
            # Without an answer the stream cannot go on: it fails closed, and a client may reconnect.
            log.exception("the credentials of a stream could not be checked")
            self.end(INTERNAL_ERROR, "the credentials could not be checked")
            return False
        return True

    async def watch(self) -> None:
        """Check the credentials each time their answer expires, until they no longer stand."""
        while await self.trusted():
            await asyncio.sleep(max(self.trusted_until - time.monotonic(), _MIN_WAIT))

    async def drain_client(self) -> None:
        """Read what the client sends until it leaves; a binary frame ends the stream with 1003."""
        # Reading is how a closed connection is noticed; clients are not expected to send.
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                self.end(UNSUPPORTED_DATA, "the stream takes no binary frames")
                return

    async def run(self) -> None:
        """Accept the stream, send each event that concerns the operator until it ends, then close it if owed."""
        reader: asyncio.Task[None] | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            await self.websocket.accept()
            hello = {"event": "hello", "id": None, "offices": list(self.operator.offices), "party": self.node.ctx.party}
            await self.websocket.send_json(hello)
            # The sender waits on the queue alone: waiting on the queue and the reader together cost
            # a task and a wait per event, on the path of every FLASH message to its operator. The
            # reader and the timer wake it through the queue instead.
            reader = asyncio.create_task(self.drain_client())
            reader.add_done_callback(self._client_gone)
            watcher = asyncio.create_task(self.watch())
            while (event := await self.queue.get()) is not _WAKE:
                # Checked here too, not only by the timer: an event may come in after the answer
                # expired and before the timer has run.
                if concerns(event, self.operator):
                    if not await self.trusted():
                        break
                    await self.websocket.send_json(event.to_json())
            if self.closing is not None:
                await self.websocket.close(*self.closing)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if reader is not None:
                reader.remove_done_callback(self._client_gone)
                reader.cancel()
            if watcher is not None:
                watcher.cancel()
            self.node.ctx.bus.unsubscribe(self.queue)

    def _client_gone(self, _: asyncio.Task[None]) -> None:
        self.wake()


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Send each event that concerns the operator as one JSON text message, while its credentials stand."""
    try:
        operator, trusted_until = await websocket_credentials(websocket)
    except Error as exc:
        # Accept, then close with a reason: a bare handshake refusal would not say why.
        await websocket.accept()
        await websocket.close(code=REFUSED, reason=exc.detail[:_REASON_MAX])
        return
    # Subscribed before the handshake, so that no event published meanwhile is missed.
    await _Stream(websocket, websocket.app.state.node, operator, trusted_until).run()
