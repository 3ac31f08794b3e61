"""Limits on a request before the app sees it: its path, and its body's size while the body streams in.

A path may not hold an encoded `/` (`%2F`). The server decodes it before routing, so an id such as
`x%2Fack` would reach another route than the one its client meant; no id, name or code holds `/`.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detente.core.workflow_bodies import MAX_EVIDENCE_BYTES
from detente.errors import BadRequest, TooLarge
from detente.web.errors import error_response

MAX_BODY = 256 * 1024
MAX_FEDERATION_BODY = 16 * 1024 * 1024
MAX_EVIDENCE_BODY = MAX_EVIDENCE_BYTES + 64 * 1024  # an evidence file, with room for multipart framing
EVIDENCE_PATH = "/api/v1/evidence"


class RequestLimits:
    """Answer 400 to a path holding `%2F`, and 413 to a body over its limit before the app reads it all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%2f" in scope.get("raw_path", b"").lower():
            refused = BadRequest("a URL path segment cannot hold an encoded '/' (%2F): no id holds one")
            await error_response(refused)(scope, receive, send)
            return
        limit = MAX_FEDERATION_BODY if scope["path"].startswith("/federation/") else MAX_BODY
        if scope["path"] == EVIDENCE_PATH:
            limit = MAX_EVIDENCE_BODY
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(send, limit)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the app, so the one error handler renders it as a 413.
                    raise TooLarge(f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"error": "TooLarge", "detail": f"request body is larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
