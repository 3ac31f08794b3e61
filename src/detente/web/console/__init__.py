"""The crisis-room console each node serves at `/`: server-rendered pages in English, Urdu and Persian.

    /login /logout                  password login (argon2, rate-limited), signed session cookie
    /                               Now: links, messages waiting, cases, actions, consultations, alarms
    /channel/<name>                 the thread with the other office, compose, codebook, ack/decline
    /messages/<id>/translate        translate a message; /translations/<id>/review: certify or dispute
    /cases  /case/<id>              cases: timeline in every party's time, escalation, actions, evidence
    /find                           find messages: words, days, precedence, channel, direction, peer, id
    /action/<id> /consultation/<id> /clarification/<id>
                                    one workflow: its state, timeline and what this side may send next
    /record                         the log, its latest checkpoint and cosignatures, alarms, proofs
    /admin                          operators, the agreement in force and its ratifications
    /static/...                     the console's own CSS and script (nothing is fetched from elsewhere)

Live updates come over the operator stream (`WS /api/v1/stream`), which accepts the session cookie
through the hook `install` sets on `app.state.session_operator`.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detente.node.runtime import Node
from detente.web.console import auth_routes, find, record, routes, translations, workflow_routes
from detente.web.console.i18n import N_
from detente.web.console.site import STATIC, Console

# No inline script or style anywhere; the stream is same-origin (CSP 3 lets 'self' match wss:).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = (b"cache-control", b"no-store")
# Where the node answers programs, in JSON, whoever asks.
MACHINE_PREFIXES = ("/api", "/federation", "/static")
# Translated on the page (`site.FIXED_DETAILS`).
PAGE_MISSES = {
    404: N_("there is no page at this address"),
    405: N_("this address does not answer this kind of request"),
}


class SecurityHeaders:
    """Add the console's security headers to every response outside `/api/` and `/federation/`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(("/api/", "/federation/")):
            await self.app(scope, receive, send)
            return
        extra = PAGE_HEADERS if path.startswith("/static/") else [*PAGE_HEADERS, NO_STORE]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def wants_page(request: Request) -> bool:
    """Return whether a request is a browser's for a console page: it accepts HTML, outside the API paths."""
    path = request.url.path
    if any(path == prefix or path.startswith(prefix + "/") for prefix in MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def _pages_for_unknown_addresses(app: FastAPI, console: Console) -> None:
    """Answer a browser's request for an unknown console address with the console's error page.

    Routing fails before any console route runs, so these answers come from the application's
    HTTP error handler: this one wraps it, and leaves everything else (the API's JSON) to it.
    """
    previous = app.exception_handlers.get(StarletteHTTPException)

    async def handler(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException) and exc.status_code in PAGE_MISSES and wants_page(request):
            return await console.error_page(request, exc.status_code, PAGE_MISSES[exc.status_code])
        if previous is None:
            raise exc
        answer = previous(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    app.add_exception_handler(StarletteHTTPException, handler)


def install(app: FastAPI, node: Node) -> Console:
    """Serve the console on `app` and let console sessions use the operator API and stream."""
    console = Console(node)
    app.state.console = console
    app.state.session_operator = console.session_operator
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth_routes.router)
    app.include_router(routes.router)
    app.include_router(workflow_routes.router)  # an action, a consultation, a clarification
    app.include_router(find.router)  # the Find screen
    app.include_router(translations.router)  # translate, certify, dispute
    app.include_router(record.router)
    app.add_middleware(SecurityHeaders)
    _pages_for_unknown_addresses(app, console)
    return console


__all__ = ["Console", "install"]
