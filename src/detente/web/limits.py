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
from detente.errors import BadRequest, Error, TooLarge, Unavailable
from detente.web.errors import FEDERATION_UNAVAILABLE, error_response

MAX_BODY = 256 * 1024
MAX_FEDERATION_BODY = 16 * 1024 * 1024
# The federation bodies the node holds at once, all requests together. A body is read before its
# signature can be checked (the signature covers it), so anyone who reaches the port could make
# the node hold 16 MiB per request, with as many requests as they like: memory runs out. Past this
# budget a peer's request is answered 503 (its sender retries, as for any outage) and its bytes
# are dropped. A real delivery batch is a few hundred KB; four bodies of the largest size fit.
FEDERATION_BODIES_AT_ONCE = 4 * MAX_FEDERATION_BODY
FEDERATION_BUSY = "this node is reading too many large requests from peers at once: send again shortly"
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
    """Answer 400 to a path holding `%2F`, 413 to a body over its limit before the app reads it all,
    and 503 to a federation request whose body would take the node past `FEDERATION_BODIES_AT_ONCE`."""

    def __init__(self, app: ASGIApp, federation_budget: int = FEDERATION_BODIES_AT_ONCE) -> None:
        self.app = app
        self.federation_budget = federation_budget
        self.federation_held = 0  # bytes of federation bodies received by requests not yet answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%2f" in scope.get("raw_path", b"").lower():
            refused = BadRequest("a URL path segment cannot hold an encoded '/' (%2F): no id holds one")
            await refuse(scope, receive, send, refused, "this address holds an encoded '/' (%2F): no page has one")
            return
        federation = scope["path"].startswith("/federation/")
        limit = MAX_FEDERATION_BODY if federation else MAX_BODY
        if scope["path"] == EVIDENCE_PATH:
            limit = MAX_EVIDENCE_BODY
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await refuse(scope, receive, send, TooLarge(too_large_detail(limit)), FORM_TOO_LARGE)
                return
            if name == b"content-length" and value.isdigit() and federation and not self._room(int(value)):
                # As the app's handler does for any 503 to a peer: the reason is logged, not told.
                log.warning("federation request answered 503: %s", FEDERATION_BUSY)
                await refuse(scope, receive, send, Unavailable(FEDERATION_UNAVAILABLE), FEDERATION_BUSY)
                return
        seen = counted = 0
        over = False

        async def limited() -> Message:
            nonlocal seen, counted, over
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                seen += size
                if seen > limit:
                    over = True
                    # Raised inside the app, so the one error handler renders it as a 413.
                    raise TooLarge(too_large_detail(limit))
                if federation:
                    if not self._room(size):
                        raise Unavailable(FEDERATION_BUSY)
                    self.federation_held += size
                    counted += size
            return message

        if for_machines(scope["path"]):
            try:
                await self.app(scope, limited, send)
            finally:
                self.federation_held -= counted  # the body is let go with its answer
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

    def _room(self, size: int) -> bool:
        """Whether `size` more bytes of federation bodies fit the node's budget."""
        return self.federation_held + size <= self.federation_budget


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
