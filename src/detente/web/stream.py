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

    reader = asyncio.create_task(drain_client())
    try:
        while not reader.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if concerns(event, operator):
                await websocket.send_json(event.to_json())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        node.ctx.bus.unsubscribe(queue)
