"""Cross-site request forgery defences of the console.

Three layers, each enough on its own against a browser on another site:

1. Session cookies are SameSite=Strict, so another site's form or script never carries them.
2. Every unsafe request (a form POST, or a script's POST to `/api/v1` with the session cookie)
   must carry a token bound to the session: `csrf` in the form, or the `X-CSRF-Token` header.
   The token is HMAC(key, "csrf|" + session nonce): it cannot be guessed without the key and dies
   with the session. The login form, which has no session yet, binds its token to a random
   pre-login cookie instead (double submit, signed).
3. A request whose `Origin` header names another origin is refused, as is a WebSocket whose
   `Origin` is not this node (cross-site WebSocket hijacking).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from detente.web.console.sessions import Session, Signer

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "x-csrf-token"
HEADER_NAME = "X-CSRF-Token"  # as the docs and error details spell it
FIELD = "csrf"


def session_token(signer: Signer, session: Session) -> str:
    """Return the CSRF token of a session (the same for every form of the session)."""
    return signer.mac("csrf", session.nonce)


def login_token(signer: Signer, pre_login: str) -> str:
    """Return the CSRF token of the login form, bound to the pre-login cookie's random value."""
    return signer.mac("login", pre_login)


def check_session_token(signer: Signer, session: Session, token: str | None) -> bool:
    """Return whether `token` is the session's CSRF token."""
    return bool(token) and signer.check("csrf", session.nonce, token or "")


def check_login_token(signer: Signer, pre_login: str | None, token: str | None) -> bool:
    """Return whether `token` matches the pre-login cookie."""
    return bool(pre_login and token) and signer.check("login", pre_login or "", token or "")


def own_origin(conn: HTTPConnection) -> str:
    """Return this node's origin as the browser sees it, e.g. `https://127.0.0.1:8443`."""
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{conn.url.netloc}"


def origin_allowed(conn: HTTPConnection) -> bool:
    """Return whether the request's `Origin` (and failing that, `Referer`) is this node, or absent.

    Browsers send `Origin` with every POST and WebSocket handshake; tools such as curl send none,
    and for them the CSRF token is the defence.
    """
    origin = conn.headers.get("origin")
    if origin is None:
        referer = conn.headers.get("referer")
        if referer is None:
            return True
        return referer == own_origin(conn) or referer.startswith(own_origin(conn) + "/")
    return origin == own_origin(conn)
