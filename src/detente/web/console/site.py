"""The console's shared machinery: who is looking (`Viewer`), page rendering and HTML error pages.

`Console` lives on `app.state.console`. Its `session_operator` is the hook `web.deps` consults, so
that the operator API and the WebSocket stream accept a console session as well as a bearer token;
for an unsafe API request the hook also demands the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from detente import __version__
from detente.core import notifications
from detente.core.precedence import format_time, now
from detente.errors import Error, Forbidden, Unauthorized
from detente.node import auth
from detente.node.linkstate import link_views
from detente.node.runtime import Node
from detente.store.operators import Operator
from detente.web.console import csrf, data, i18n, themes
from detente.web.console.addresses import ONE_TIME, page_address, posted_from, safe_next
from detente.web.console.form_errors import plain_number
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
from detente.web.console.texts import node_text

log = logging.getLogger("detente.console")
WEB = Path(__file__).resolve().parents[1]
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
# Endpoints of other features the console links to or reads, when the node serves them.
OPTIONAL = {
    "alarms": "/api/v1/alarms",
    "proof": "/api/v1/messages/{message_id}/proof",
    "log": "/api/v1/log",
    "evidence": "/api/v1/evidence/{sha256}",
    "upload": "/api/v1/evidence",
}
UNEXPECTED = N_("Something went wrong")
# The fixed details of the console's own error pages, as the code says them (in English): an error
# page translates these. Other details are the node's own messages, English like the API's.
NO_FIELD = N_("the request is missing a field or has a malformed one")
PAGE_FAILED = N_("the node could not show this page; the error is in its log")
FIXED_DETAILS = frozenset({
    NO_FIELD, PAGE_FAILED,
    N_("there is no page at this address"),
    themes.UNKNOWN,
    N_("this address does not answer this kind of request"),
    N_("this address holds an encoded '/' (%2F): no page has one"),
    N_("the form is larger than this node accepts (256 KiB), so it was not read and nothing was sent: "
       "go back, shorten what you typed and send it again"),
})  # fmt: skip
ERROR_TITLES = {
    400: N_("The request could not be understood"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not available here"),
    409: N_("Already done"),
    422: N_("Not accepted"),
    429: N_("Too many attempts"),
    413: N_("Too large to send"),
    503: N_("Unavailable"),
}


class LoginRequired(Exception):
    """The page needs a session; the browser is sent to the login page and back."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


BANNER_LIMIT = 5  # FLASH messages the banner lists on every page; Now lists them all


@dataclass(frozen=True)
class Viewer:
    """The operator looking at a page, in their language, with their session's CSRF token."""

    operator: Operator
    session: Session
    locale: Locale
    presenter: Presenter
    csrf: str

    def among(self, parties: Collection[str]) -> Viewer:
        """Return the viewer of a workflow between `parties` (`Presenter.among`)."""
        return replace(self, presenter=self.presenter.among(parties))

    @property
    def offices(self) -> list[str] | None:
        """The offices whose traffic this operator may read (None: all of the party's)."""
        return auth.visible_offices(self.operator)


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class Console:
    """Sessions, limits, templates and rendering for one node's console."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.signer = Signer(load_key(node.ctx.config.data))
        self.sessions = Sessions(self.signer, node.ctx.party)
        self.names = name_limiter()
        self.addresses = address_limiter()
        self.pre_login_cookie = f"__Host-detente-{node.ctx.party}-login"
        # Templates are read once: a running node must not mix templates changed on disk with its old code.
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        version = _static_version()
        self.env.globals["static"] = lambda name: f"/static/{name}?v={version}"
        self.env.globals["version"] = __version__
        self.env.globals["autonyms"] = i18n.AUTONYMS
        self.env.globals["rtl_languages"] = i18n.RTL_LANGUAGES  # a codebook preview's direction
        self.env.globals["banner_limit"] = BANNER_LIMIT
        self.env.globals["quote"] = quote
        self.env.filters["utc_from_epoch"] = utc_from_epoch
        self.env.filters["offset"] = offset_text
        self.env.filters["plain"] = plain_number
        self.env.filters["node_text"] = node_text  # the node's own words (its errors): an English isolate
        self.extras: dict[str, str] | None = None  # optional endpoints the node serves: name -> path

    def discover(self, app: Any) -> dict[str, str]:
        """Return (finding them on first use) the optional endpoints this node serves, from its OpenAPI paths."""
        if self.extras is None:
            paths = {getattr(r, "path", "") for r in app.routes}
            try:
                paths |= set(app.openapi().get("paths", {}))
            except Exception:  # a broken schema elsewhere must not take the console down
                log.exception("the OpenAPI document could not be built")
            self.extras = {name: path for name, path in OPTIONAL.items() if path in paths}
        return self.extras

    # -- sessions ---------------------------------------------------------------------------

    async def session_operator(self, conn: HTTPConnection) -> Operator | None:
        """Return the operator of a valid console session on this request or WebSocket, if any.

        A foreign `Origin` answers None (the API then says 401). Unsafe API requests must also
        carry the session's CSRF token in `X-CSRF-Token`: a valid session without it raises
        `Unauthorized` saying so, since the header is what a script of the console forgot.
        """
        session = self.sessions.read(conn)
        if session is None or not csrf.origin_allowed(conn):
            return None
        operator = await self._account(session)
        if operator is None:
            return None
        if conn.scope["type"] == "http" and conn.scope.get("method", "GET") not in csrf.SAFE_METHODS:
            token = conn.headers.get(csrf.HEADER)
            if not csrf.check_session_token(self.signer, session, token):
                raise Unauthorized(
                    f"a write with the console session needs its CSRF token in '{csrf.HEADER_NAME}'"
                    if not token
                    else f"'{csrf.HEADER_NAME}' is not this console session's CSRF token"
                )
        return operator

    async def _account(self, session: Session) -> Operator | None:
        operator = await self.node.read_quick(lambda c: data.account(c, session.operator))
        if operator is None or self.signer.password_fingerprint(operator.password_hash) != session.password:
            return None
        return operator

    def language(self, request: Request, operator: Operator | None) -> Locale:
        """Return the interface language: `?lang=`, the operator's choice, the cookie, the browser's."""
        # An operator's language the console has no pages in (Pashto) reads English pages
        # (`i18n.text_language`), whatever the browser prefers.
        own = None if operator is None else operator.lang if operator.lang in i18n.LANGUAGES else "en"
        chosen = i18n.pick(
            request.query_params.get("lang"),
            own,
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
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        refreshed = self.sessions.touch(session)
        if refreshed is not None:
            request.state.refreshed_session = refreshed
        locale = self.language(request, operator)
        presenter = Presenter(
            self.node.ctx.agreement, self.node.ctx.party, locale, self.node.ctx.clock_offsets, operator.lang
        )
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
            "arrow": "←" if locale.dir == "rtl" else "→", "theme": themes.DEFAULT,
            "lang_url": _url_with(context.get("request_query", ""), "lang"),
            "theme_url": _url_with(context.get("request_query", ""), themes.PARAM),
            "party_name": self.node.ctx.agreement.parties[self.node.ctx.party].name, "extras": self.extras or {},
            # The node's time (Unix ms) as the page is made: the script counts deadlines in it, not in the browser's.
            "now_ms": int(now().timestamp() * 1000),
            **context,
        }  # fmt: skip
        # The macros see the same context (translations, labels, CSRF token) as the page using them.
        full["m"] = self.env.get_template("macros.html").make_module(full)
        if block is None:
            return tmpl.render(full)
        return "".join(tmpl.blocks[block](tmpl.new_context(full)))

    def chrome(self, viewer: Viewer) -> dict[str, Any]:
        """Return what every signed-in page shows around its content (menu, presenter, labels)."""
        return {
            "viewer": viewer, "csrf": viewer.csrf, "p": viewer.presenter, "labels": viewer.presenter.labels,
            "nav_channels": data.channels_for(self.node.ctx.agreement, self.node.ctx.party, viewer.operator),
            "type_labels": {name: viewer.presenter.labels.type(name) for name in notifications.CATALOG},
        }  # fmt: skip

    async def strip(self, viewer: Viewer) -> dict[str, Any]:
        """Return the status strip: every link's state and every FLASH message waiting for this operator."""
        peers = self.node.ctx.peers

        def read(conn: Any) -> dict[str, Any]:
            escalated = data.escalated_to(self.node.ctx.agreement, viewer.operator)
            rows = data.pending_flash(conn, viewer.offices, escalated)
            cards = [viewer.presenter.card(r, viewer.operator, escalated, brief=True) for r in rows]
            return {"links": link_views(conn, peers), "flash": [c for c in cards if c.answerable]}

        return await self.node.aread(read)

    async def page(
        self, request: Request, template: str, viewer: Viewer, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a full page, or only its `live` block when the live updates ask (`?fragment=1`)."""
        # `once`: the one-time notices of what the page's last form did (`addresses.ONE_TIME`), each an id.
        once = {k: v[:64] for k, v in request.query_params.items() if k in ONE_TIME}
        base: dict[str, Any] = {**self.chrome(viewer), "request_path": request.url.path,
                                "request_query": request.url.query, "acked": once.get("acked", ""),
                                "once": once, "theme": themes.current(request)}  # fmt: skip
        fragment = request.query_params.get("fragment") == "1"
        if not fragment:
            base["strip"] = await self.strip(viewer)
        base.update(context)
        html = self.render(template, viewer.locale, base, block="live" if fragment else None)
        return HTMLResponse(html, status_code=status)

    async def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        """Render an error as an HTML page in the viewer's language (with the menu, if signed in).

        Never raises: when the full page cannot be built (the failure that led here may be in the
        menu or the status strip it shares with every page), a page without them, and if even that
        fails, a bare page written here.
        """
        locale, operator = Locale("en"), None
        context: dict[str, Any] = {}
        try:
            session = self.sessions.read(request)
            operator = await self._account(session) if session else None
            locale = self.language(request, operator)
            if session is not None and operator is not None:
                presenter = Presenter(
                    self.node.ctx.agreement, self.node.ctx.party, locale, self.node.ctx.clock_offsets, operator.lang
                )
                viewer = Viewer(operator, session, locale, presenter, csrf.session_token(self.signer, session))
                context = {**self.chrome(viewer), "strip": await self.strip(viewer)}
        except Exception:  # the page below still says what happened, without the parts that failed
            log.exception("the error page of %s could not read the session or the strip", request.url.path)
            context = {}
        title = locale.gettext(ERROR_TITLES.get(status, UNEXPECTED))
        node_said = detail not in FIXED_DETAILS  # the node's own words, in English (`texts.node_text`)
        detail = detail if node_said else locale.gettext(detail)
        common = {"status": status, "title": title, "detail": detail, "node_said": node_said,
                  "signed_in": operator is not None, "request_path": request.url.path,
                  "request_query": request.url.query, "page": "error", "theme": themes.current(request)}  # fmt: skip
        attempts: list[dict[str, Any]] = [context, {}] if context else [{}]  # with the menu and strip, then without
        for extra in attempts:
            try:
                page = self.render("error.html", locale, {"viewer": None, "csrf": "", **extra, **common})
                return HTMLResponse(page, status_code=status)
            except Exception:
                log.exception("the error page of %s could not be rendered", request.url.path)
        return HTMLResponse(bare_error_page(locale, status, title, detail, node_said), status_code=status)


def bare_error_page(locale: Locale, status: int, title: str, detail: str, node_said: bool = False) -> str:
    """Return an error page written without templates, for when the templates themselves fail."""
    again = locale.gettext(N_("Back to Now"))
    said = node_text(detail) if node_said else html.escape(detail)
    return (
        f'<!doctype html><html lang="{locale.code}" dir="{locale.dir}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main><p>{status}</p><h1>{html.escape(title)}</h1>"
        f'<p>{said}</p><p><a href="/">{html.escape(again)}</a></p></main></body></html>'
    )


def _url_with(query: str, key: str) -> Any:
    """Return a template function: the current page's address with `key` (`lang`, `theme`) set, the rest kept.

    Neither choice is kept in the other's links: a refused `?theme=` (its 400 page) would be refused again.
    """
    kept = [(k, v) for k, v in parse_qsl(query) if k not in ("lang", themes.PARAM, "fragment")]

    def url_with(path: str, value: str) -> str:
        return f"{path}?{urlencode([*kept, (key, value)])}"

    return url_with


def utc_from_epoch(seconds: int) -> str:
    """Return an RFC 3339 UTC time for a Unix time (cosignature timestamps)."""
    return format_time(datetime.fromtimestamp(int(seconds), UTC))


def offset_text(delta: timedelta) -> str:
    """Return a UTC offset as `UTC+05:00`."""
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def console_of(request: HTTPConnection) -> Console:
    """Return the console installed on the application."""
    console: Console = request.app.state.console
    return console


async def form_viewer(request: Request, token: str) -> Viewer:
    """Return the viewer of a POST whose CSRF token and origin are right. Raises `Forbidden`."""
    console = console_of(request)
    viewer = await console.viewer(request)
    if not csrf.origin_allowed(request) or not csrf.check_session_token(console.signer, viewer.session, token):
        raise Forbidden("this form has no valid CSRF token; reload the page and try again")
    return viewer


class ConsoleRoute(APIRoute):
    """A route whose failures are HTML pages (or a redirect to the login page), never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            console = console_of(request)
            console.discover(request.app)
            try:
                theme = themes.asked(request)
                if theme is not None:  # anyone's, signed in or not (the login page is dark at night too)
                    if theme not in themes.THEMES:
                        return await console.error_page(request, 400, themes.UNKNOWN)
                    return themes.remember(request, theme)
                if request.method == "GET" and request.query_params.get("lang") in i18n.LANGUAGES:
                    operator = await console.session_operator(request)
                    if operator is not None:
                        return await remember_language(console, request, operator)
                response = await original(request)
            except LoginRequired as exc:
                # A cookie that no longer opens a session: say on the login page that the session ended.
                expired = "expired=1&" if console.sessions.cookie in request.cookies else ""
                # A form posted after the session ended goes back to its page (the draft is put back there).
                back = await posted_from(request) if request.method == "POST" else page_address(exc.next_url)
                next_url = quote(safe_next(back))
                return RedirectResponse(f"/login?{expired}next={next_url}", status_code=303)
            except Error as exc:
                return await console.error_page(request, exc.status_code, exc.detail)
            except RequestValidationError:
                return await console.error_page(request, 400, NO_FIELD)
            except Exception:  # never a bare disconnect or a traceback: log it and say so, in the page's language
                log.exception("console page %s failed", request.url.path)
                return await console.error_page(request, 500, PAGE_FAILED)
            refreshed = getattr(request.state, "refreshed_session", None)
            if refreshed is not None and console.sessions.cookie not in response.headers.get("set-cookie", ""):
                console.set_session_cookie(response, refreshed)
            return response

        return handler


async def remember_language(console: Console, request: Request, operator: Operator) -> Response:
    """Store a signed-in operator's `?lang=` choice (`i18n.replaces`) and reload the page without the parameter."""
    from detente.store import operators as operators_db

    lang, operator_id = request.query_params["lang"], operator.id
    if i18n.replaces(operator.lang, lang):
        await console.node.run(lambda c: operators_db.set_lang(c, operator_id, lang))
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
    return RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
