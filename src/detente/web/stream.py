"""`WS /api/v1/stream`: live events for the operator's offices."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from detente.errors import Error
from detente.node.auth import WIDE_ROLES
from detente.node.events import Event
from detente.store.operators import Operator
from detente.web.deps import websocket_operator

router = APIRouter()
# Put in a stream's queue when its client has gone: the sender's loop then ends at its next read.
_CLOSED = Event("stream.closed", None, ())


def concerns(event: Event, operator: Operator) -> bool:
    """Return whether the operator should see `event`."""
    if event.everyone or any(operator.has(r) for r in WIDE_ROLES):
        return True
    return any(office in operator.offices for office in event.offices)


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Send each event that concerns the operator as one JSON text message."""
    try:
        operator = websocket_operator(websocket)
    except Error as exc:
        # Accept, then close with a reason: a bare handshake refusal would not say why.
        await websocket.accept()
        await websocket.close(code=4401, reason=exc.detail[:120])
        return
    node = websocket.app.state.node
    queue = node.ctx.bus.subscribe()
    await websocket.accept()
    await websocket.send_json(
        {"event": "hello", "id": None, "offices": list(operator.offices), "party": node.ctx.party}
    )

    async def drain_client() -> None:
        # Reading is how a closed connection is noticed; clients are not expected to send.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    def client_gone(_: asyncio.Task[None]) -> None:
        node.ctx.bus.unsubscribe(queue)
        if queue.full():  # the bus drops the oldest event for a full queue; so does this
            queue.get_nowait()
        queue.put_nowait(_CLOSED)

    # The sender waits on the queue alone: waiting on the queue and the reader together cost a task
    # and a wait per event, on the path of every FLASH message to its operator.
    reader = asyncio.create_task(drain_client())
    reader.add_done_callback(client_gone)
    try:
        while (event := await queue.get()) is not _CLOSED:
            if concerns(event, operator):
                await websocket.send_json(event.to_json())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.remove_done_callback(client_gone)
        reader.cancel()
        node.ctx.bus.unsubscribe(queue)
