"""Limits on a request before the app sees it: its path, and its body's size while the body streams in.

A path may not hold an encoded `/` (`%2F`). The server decodes it before routing, so an id such as
`x%2Fack` would reach another route than the one its client meant; no id, name or code holds `/`.

The refusals are JSON under `/api/` and `/federation/`, like every API error, and elsewhere the
console's own HTML error page (in the viewer's language, with the menu if signed in): an officer
who posts a form too large sees a page, not the API's JSON.
"""

from __future__ import annotations

import html
import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detente.core.workflow_bodies import MAX_EVIDENCE_BYTES
from detente.errors import BadRequest, Error, TooLarge
from detente.web.errors import error_response

MAX_BODY = 256 * 1024
MAX_FEDERATION_BODY = 16 * 1024 * 1024
MAX_EVIDENCE_BODY = MAX_EVIDENCE_BYTES + 64 * 1024  # an evidence file, with room for multipart framing
EVIDENCE_PATH = "/api/v1/evidence"
# A console page's words for a form over MAX_BODY (the node's own messages are English; docs/console.md).
FORM_TOO_LARGE = (
    f"the form is larger than this node accepts ({MAX_BODY // 1024} KiB), so it was not read and nothing was sent: "
    "go back, shorten what you typed and send it again"
)
MACHINE_PREFIXES = ("/api", "/federation")

log = logging.getLogger("detente.web")


def for_machines(path: str) -> bool:
    """Return whether `path` (decoded) belongs to the operator or federation API, which answer JSON."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in MACHINE_PREFIXES)


def too_large_detail(limit: int) -> str:
    """Return the API's detail for a body over `limit` bytes."""
    return f"request body is larger than {limit} bytes"


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
            await refuse(scope, receive, send, refused, "this address holds an encoded '/' (%2F): no page has one")
            return
        limit = MAX_FEDERATION_BODY if scope["path"].startswith("/federation/") else MAX_BODY
        if scope["path"] == EVIDENCE_PATH:
            limit = MAX_EVIDENCE_BODY
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await refuse(scope, receive, send, TooLarge(too_large_detail(limit)), FORM_TOO_LARGE)
                return
        seen = 0
        over = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    # Raised inside the app, so the one error handler renders it as a 413.
                    raise TooLarge(too_large_detail(limit))
            return message

        if for_machines(scope["path"]):
            await self.app(scope, limited, send)
            return
        # A console page that reads its form meets the overflow as a failure of its own (its error
        # page says "could not show this page"): that answer is dropped and the 413 page sent instead.
        started = False

        async def console_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, console_send)
        except TooLarge:
            over = True
        if over and not started:
            await refuse(scope, receive, send, TooLarge(too_large_detail(limit)), FORM_TOO_LARGE)


async def refuse(scope: Scope, receive: Receive, send: Send, refused: Error, console_detail: str) -> None:
    """Answer `refused`: as JSON on the APIs, as the console's HTML error page saying `console_detail` elsewhere.

    Raises nothing of its own: if the console's page cannot be built, a bare HTML page says the same.
    """
    if for_machines(scope["path"]):
        await error_response(refused)(scope, receive, send)
        return
    response = await _console_page(scope, refused.status_code, console_detail)
    await response(scope, receive, send)


async def _console_page(scope: Scope, status: int, detail: str) -> Response:
    # Imported here: the console imports much of the node, and this module stands before all of it.
    from detente.web.console import NO_STORE, PAGE_HEADERS

    headers = {name.decode(): value.decode() for name, value in [*PAGE_HEADERS, NO_STORE]}
    app = scope.get("app")
    console = getattr(getattr(app, "state", None), "console", None)
    if console is not None:
        try:
            page: Response = await console.error_page(Request(scope), status, detail)
            page.headers.update(headers)
            return page
        except Exception:  # the plain page below still tells the officer what happened
            log.exception("the console's error page for %s could not be built", scope.get("path"))
    body = f'<!doctype html>\n<html lang="en"><title>{status}</title><h1>{status}</h1><p>{html.escape(detail)}</p>'
    return HTMLResponse(body, status_code=status, headers=headers)
