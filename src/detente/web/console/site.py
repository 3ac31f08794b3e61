"""The console's shared machinery: who is looking (`Viewer`), page rendering and HTML error pages.

`Console` lives on `app.state.console`. Its `session_operator` is the hook `web.deps` consults, so
that the operator API and the WebSocket stream accept a console session as well as a bearer token;
for an unsafe API request the hook also demands the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from detente import __version__
from detente.errors import Error
from detente.node.runtime import Node
from detente.store.operators import Operator
from detente.web.console import csrf, data, i18n
from detente.web.console.i18n import N_, Locale
from detente.web.console.present import Presenter
from detente.web.console.sessions import (
    Session,
    Sessions,
    Signer,
    address_limiter,
    load_key,
    name_limiter,
)

WEB = Path(__file__).resolve().parents[1]
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
# Endpoints of other features the console links to or reads, when the node serves them.
OPTIONAL = {
    "alarms": "/api/v1/alarms",
    "proof": "/api/v1/messages/{message_id}/proof",
    "log": "/api/v1/log",
}
ERROR_TITLES = {
    400: N_("The request could not be understood"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Already done"),
    422: N_("Not accepted"),
    429: N_("Too many attempts"),
    503: N_("Unavailable"),
}


class LoginRequired(Exception):
    """The page needs a session; the browser is sent to the login page and back."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True)
class Viewer:
    """The operator looking at a page, in their language, with their session's CSRF token."""

    operator: Operator
    session: Session
    locale: Locale
    presenter: Presenter
    csrf: str

    @property
    def offices(self) -> list[str] | None:
        """The offices whose traffic this operator may read (None: all of the party's)."""
        return data.visible_offices(self.operator)


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def safe_next(value: str | None) -> str:
    """Return a same-site path to go back to after login (anything else becomes `/`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value


class Console:
    """Sessions, limits, templates and rendering for one node's console."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.signer = Signer(load_key(node.ctx.config.data))
        self.sessions = Sessions(self.signer, node.ctx.party)
        self.names = name_limiter()
        self.addresses = address_limiter()
        self.pre_login_cookie = f"__Host-detente-{node.ctx.party}-login"
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        version = _static_version()
        self.env.globals["static"] = lambda name: f"/static/{name}?v={version}"
        self.env.globals["version"] = __version__
        self.env.globals["autonyms"] = i18n.AUTONYMS
        self.env.globals["quote"] = quote
        self.extras: dict[str, str] | None = None  # optional endpoints the node serves: name -> path

    def discover(self, routes: list[BaseRoute]) -> dict[str, str]:
        """Return (finding them on first use) the optional endpoints among the application's routes."""
        if self.extras is None:
            paths = {getattr(r, "path", "") for r in routes}
            self.extras = {name: path for name, path in OPTIONAL.items() if path in paths}
        return self.extras

    # -- sessions ---------------------------------------------------------------------------

    def session_operator(self, conn: HTTPConnection) -> Operator | None:
        """Return the operator of a valid console session on this request or WebSocket, if any.

        Unsafe API requests must also carry the session's CSRF token in `X-CSRF-Token`, and a
        foreign `Origin` is refused; either failure answers None (the API then says 401).
        """
        session = self.sessions.read(conn)
        if session is None or not csrf.origin_allowed(conn):
            return None
        if conn.scope["type"] == "http" and conn.scope.get("method", "GET") not in csrf.SAFE_METHODS:
            if not csrf.check_session_token(self.signer, session, conn.headers.get(csrf.HEADER)):
                return None
        return self._account(session)

    def _account(self, session: Session) -> Operator | None:
        operator = self.node.read(lambda c: data.account(c, session.operator))
        if operator is None or self.signer.password_fingerprint(operator.password_hash) != session.password:
            return None
        return operator

    def language(self, request: Request, operator: Operator | None) -> Locale:
        """Return the interface language: `?lang=`, the operator's choice, the cookie, the browser's."""
        chosen = i18n.pick(
            request.query_params.get("lang"),
            operator.lang if operator else None,
            request.cookies.get(i18n.LANG_COOKIE),
            i18n.from_accept_language(request.headers.get("accept-language")),
        )
        return Locale(chosen)

    async def viewer(self, request: Request) -> Viewer:
        """Return who is looking. Raises `LoginRequired` without a valid session."""
        session = self.sessions.read(request)
        operator = await self.node.aread(lambda c: data.account(c, session.operator)) if session else None
        if session is None or operator is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if self.signer.password_fingerprint(operator.password_hash) != session.password:
            raise LoginRequired(request.url.path)
        refreshed = self.sessions.touch(session)
        if refreshed is not None:
            request.state.refreshed_session = refreshed
        locale = self.language(request, operator)
        presenter = Presenter(self.node.ctx.agreement, self.node.ctx.party, locale)
        return Viewer(operator, session, locale, presenter, csrf.session_token(self.signer, session))

    def set_session_cookie(self, response: Response, session: Session) -> None:
        """Put a session cookie on a response (Secure, HttpOnly, SameSite=Strict, host-only)."""
        response.set_cookie(
            self.sessions.cookie, self.sessions.encode(session), max_age=None, path="/", secure=True,
            httponly=True, samesite="strict",
        )  # fmt: skip

    # -- rendering --------------------------------------------------------------------------

    def render(self, template: str, locale: Locale, context: dict[str, Any], block: str | None = None) -> str:
        """Render a template (or one of its blocks, for live fragments) in `locale`."""
        tmpl = self.env.get_template(template)
        full = {
            "_": locale.gettext, "ngettext": locale.ngettext, "locale": locale, "party": self.node.ctx.party,
            "party_name": self.node.ctx.agreement.parties[self.node.ctx.party].name, "extras": self.extras or {},
            **context,
        }  # fmt: skip
        if block is None:
            return tmpl.render(full)
        return "".join(tmpl.blocks[block](tmpl.new_context(full)))

    def page(
        self, request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a full page, or only its `live` block when the live updates ask (`?fragment=1`)."""
        locale = viewer.locale if viewer else self.language(request, None)
        base: dict[str, Any] = {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "request_path": request.url.path}
        if viewer is not None:
            base["p"] = viewer.presenter
            base["labels"] = viewer.presenter.labels
            base["nav_channels"] = data.channels_for(self.node.ctx.agreement, self.node.ctx.party, viewer.operator)
        base.update(context)
        fragment = request.query_params.get("fragment") == "1"
        html = self.render(template, locale, base, block="live" if fragment else None)
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        """Render an error as an HTML page in the viewer's language."""
        session = self.sessions.read(request)
        operator = self._account(session) if session else None
        locale = self.language(request, operator)
        title = locale.gettext(ERROR_TITLES.get(status, N_("Something went wrong")))
        html = self.render(
            "error.html", locale, {"viewer": None, "csrf": "", "status": status, "title": title, "detail": detail,
                                   "signed_in": operator is not None, "request_path": request.url.path},
        )  # fmt: skip
        return HTMLResponse(html, status_code=status)


def console_of(request: HTTPConnection) -> Console:
    """Return the console installed on the application."""
    console: Console = request.app.state.console
    return console


class ConsoleRoute(APIRoute):
    """A route whose failures are HTML pages (or a redirect to the login page), never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            console = console_of(request)
            console.discover(request.app.routes)
            try:
                if request.method == "GET" and request.query_params.get("lang") in i18n.LANGUAGES:
                    operator = console.session_operator(request)
                    if operator is not None:
                        return await remember_language(console, request, operator.id)
                response = await original(request)
            except LoginRequired as exc:
                return RedirectResponse(f"/login?next={quote(safe_next(exc.next_url))}", status_code=303)
            except Error as exc:
                return console.error_page(request, exc.status_code, exc.detail)
            except RequestValidationError:
                return console.error_page(request, 400, "the request is missing a field or has a malformed one")
            refreshed = getattr(request.state, "refreshed_session", None)
            if refreshed is not None and console.sessions.cookie not in response.headers.get("set-cookie", ""):
                console.set_session_cookie(response, refreshed)
            return response

        return handler


async def remember_language(console: Console, request: Request, operator_id: str) -> Response:
    """Store a signed-in operator's `?lang=` choice and reload the page without the parameter."""
    from detente.store import operators as operators_db

    lang = request.query_params["lang"]
    await console.node.run(lambda c: operators_db.set_lang(c, operator_id, lang))
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
    return RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
