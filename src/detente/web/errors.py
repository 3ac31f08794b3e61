"""Every error becomes JSON `{"error": "<Name>", "detail": "..."}` here, and only here.

No traceback ever reaches a client: unexpected exceptions are logged and answered with a bare
500 `InternalError`. What a detail echoes of the request (an id, a value) is clipped here
(`clip_echoes`): an "id" of 5,000 characters comes back as its start and its length.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from detente.errors import Error, Unavailable

log = logging.getLogger("detente.web")


def _field(loc: tuple[Any, ...]) -> str:
    # FastAPI puts where the value came from first; a message's own `body` member keeps its name.
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)]
    return ".".join(parts) or "request"  # the request as a whole


# What FastAPI's "There was an error parsing the body" (400) was caused by, said plainly.
_UNREADABLE = (
    (UnicodeDecodeError, "request body is not UTF-8"),
    (RecursionError, "request body is nested too deeply"),
    (ValueError, "request body is not valid JSON"),
)


# The longest run of characters without a space a detail repeats whole. Ids are 36 characters, a
# SHA-256 64, a signature 88 in base64, and the CLI refuses an id over 200 (`cli.arguments.MAX_ID`);
# a longer run is something a request made up, and its start is enough to recognise it.
ECHO_LIMIT = 200
_LONG_RUN = re.compile(rf"\S{{{ECHO_LIMIT + 1},}}")


def clip_echoes(text: str) -> str:
    """Return `text` with each run of over `ECHO_LIMIT` non-space characters cut to its start and its length."""
    return _LONG_RUN.sub(lambda m: f"{m.group()[:ECHO_LIMIT]}… ({len(m.group())} characters)", text)


def _json(body: dict[str, Any], status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """Answer an error body with `clip_echoes` applied to its detail and to each field's message."""
    out = dict(body)
    if isinstance(out.get("detail"), str):
        out["detail"] = clip_echoes(out["detail"])
    if isinstance(out.get("fields"), dict):
        out["fields"] = {
            clip_echoes(str(k)): clip_echoes(v) if isinstance(v, str) else v for k, v in out["fields"].items()
        }
    return JSONResponse(out, status_code=status_code, headers=headers)


FEDERATION_UNAVAILABLE = "this node cannot answer now; try again later"  # all a peer is told of a 503


def error_response(exc: Error) -> JSONResponse:
    """Render one of our errors with its status code (what it echoes clipped: `clip_echoes`)."""
    headers = {"Retry-After": "60"} if exc.status_code == 429 else None
    return _json(exc.to_json(), exc.status_code, headers)


def install(app: FastAPI) -> None:
    """Install the exception handlers on `app`."""

    @app.exception_handler(Error)
    async def _ours(request: Request, exc: Error) -> JSONResponse:
        if isinstance(exc, Unavailable) and request.url.path.startswith("/federation/"):
            # What is down here (a database's user, host and name) is this state's own business: a
            # peer learns only to try again, which its deliverer does anyway.
            log.warning("federation request answered 503: %s", exc.detail)
            return error_response(Unavailable(FEDERATION_UNAVAILABLE))
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields: dict[str, str] = {}
        for item in exc.errors():
            kind = item.get("type", "")
            message = str(item.get("msg", "invalid"))
            if kind == "json_invalid":
                return JSONResponse(
                    {"error": "MalformedError", "detail": "request body is not valid JSON"}, status_code=400
                )
            if kind == "extra_forbidden":
                message = "unknown field"
            loc = tuple(item.get("loc", ()))
            if loc == ("body",):  # no JSON object at all: a missing body or Content-Type, `[]`, `null`, `42`
                message = "must be a JSON object, sent with Content-Type: application/json"
            fields[_field(loc)] = message
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return _json({"error": "Invalid", "detail": detail, "fields": fields}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, Error):  # raised while FastAPI read the body (a chunked body too large)
            return error_response(cause)
        if exc.status_code == 400:
            detail = next((text for kind, text in _UNREADABLE if isinstance(cause, kind)), str(exc.detail))
            return JSONResponse({"error": "MalformedError", "detail": detail}, status_code=400)
        name = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized", 403: "Forbidden"}.get(
            exc.status_code, "HTTPError"
        )
        return _json({"error": name, "detail": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"error": "InternalError", "detail": "the node could not complete this request"}, 500)
