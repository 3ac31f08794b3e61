"""Logging in and out of the console, and choosing its language.

`POST /login` checks the form's CSRF token (bound to a pre-login cookie), then the rate limits
(per operator name and per client address), then the argon2 password (off the event loop); a
wrong name and a wrong password get the same answer in the same time. Success sets the session
cookie and, if a language was chosen on the login page, stores it as the operator's; the menu's
default ("my saved language") keeps the one the operator has.
`GET <any page>?lang=ur` stores the choice for a signed-in operator and reloads the page without
the parameter; before login it is kept in a cookie.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from detente.node.auth import PASSWORD_MAX, check_password
from detente.store import operators as operators_db
from detente.web.console import csrf, i18n, themes
from detente.web.console.addresses import safe_next
from detente.web.console.i18n import N_, Locale
from detente.web.console.site import Console, ConsoleRoute, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
BAD_LOGIN = N_("Wrong name or password.")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(
    console: Console,
    request: Request,
    locale: Locale,
    *,
    error: str = "",
    name: str = "",
    status: int = 200,
    chosen: str | None = None,
    next_url: str | None = None,
    expired: bool | None = None,
) -> HTMLResponse:
    """Render the login form; its language menu shows `chosen` (default: this address's `?lang=`, else none).

    `next_url` and `expired` (default: this address's `?next=` and `?expired=1`) are what a failed
    attempt posted: the page to go back to and the "session ended" notice outlive a mistyped password.
    """
    pre = request.cookies.get(console.pre_login_cookie) or secrets.token_urlsafe(24)
    if chosen is None:
        chosen = request.query_params.get("lang", "")
    chosen = chosen if chosen in i18n.LANGUAGES else ""
    context = {
        "viewer": None, "csrf": csrf.login_token(console.signer, pre), "error": error, "name": name,
        "next": safe_next(next_url or request.query_params.get("next") or request.query_params.get("next_url")),
        "languages": i18n.LANGUAGES,
        "expired": request.query_params.get("expired") == "1" if expired is None else expired,
        "bye": request.query_params.get("bye") == "1", "request_path": request.url.path,
        "request_query": request.url.query, "page": "login", "title": locale.gettext("Log in"),
        "chosen_lang": chosen, "theme": themes.current(request),
    }  # fmt: skip
    response = HTMLResponse(console.render("login.html", locale, context), status_code=status)
    response.set_cookie(console.pre_login_cookie, pre, path="/", secure=True, httponly=True, samesite="strict")
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, locale.code, path="/", secure=True, httponly=True, samesite="strict",
                            max_age=365 * 86400)  # fmt: skip
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    """Show the login form (or go home if already signed in)."""
    console = console_of(request)
    session = console.sessions.read(request)
    if session is not None and await console.session_operator(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(console, request, console.language(request, None))


@router.post("/login")
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=PASSWORD_MAX)] = "",  # what `user add` and `user passwd` may set
    token: Annotated[str, Form(alias=csrf.FIELD, max_length=128)] = "",
    lang: Annotated[str, Form(max_length=3)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=512)] = "/",
    expired: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Check the password and start a session."""
    console = console_of(request)
    locale = Locale(i18n.pick(lang, request.cookies.get(i18n.LANG_COOKIE)))

    def again(error: str, status: int) -> HTMLResponse:
        """The form again, saying `error`; the page to go back to and the "session ended" notice are kept."""
        return _login_page(console, request, locale, error=error, name=name, status=status, chosen=lang,
                           next_url=next_url, expired=expired == "1")  # fmt: skip

    if not csrf.origin_allowed(request) or not csrf.check_login_token(
        console.signer, request.cookies.get(console.pre_login_cookie), token
    ):
        message = locale.gettext(N_("The login form had expired. Please try again."))
        return again(message, 403)
    name = name.strip()
    client = _client(request)
    wait = max(console.names.blocked("name:" + name.lower()), console.addresses.blocked("ip:" + client))
    if wait:
        minutes = max(1, round(wait / 60))
        message = locale.ngettext(
            "Too many failed attempts. Try again in %(n)d minute.",
            "Too many failed attempts. Try again in %(n)d minutes.",
            minutes,
        ) % {"n": minutes}
        response = again(message, 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    operator = await console.node.aread(lambda c: operators_db.by_name(c, name)) if name else None
    stored = operator.password_hash if operator else None
    ok = await asyncio.to_thread(check_password, stored, password)
    if not ok or operator is None:
        console.names.fail("name:" + name.lower())
        console.addresses.fail("ip:" + client)
        return again(locale.gettext(BAD_LOGIN), 401)
    console.names.reset("name:" + name.lower())
    # An empty `lang` is the menu's default, "my saved language": the operator's own stays.
    if lang in i18n.LANGUAGES and i18n.replaces(operator.lang, lang):
        chosen, operator_id = lang, operator.id
        await console.node.run(lambda c: operators_db.set_lang(c, operator_id, chosen))
    session = console.sessions.issue(operator.id, operator.password_hash)
    redirect = RedirectResponse(safe_next(next_url), status_code=303)
    console.set_session_cookie(redirect, session)
    redirect.delete_cookie(console.pre_login_cookie, path="/", secure=True, httponly=True, samesite="strict")
    return redirect


@router.post("/logout")
async def logout(request: Request, token: Annotated[str, Form(alias=csrf.FIELD, max_length=128)] = "") -> Response:
    """End the session (on this node, at once) and go back to the login page."""
    console = console_of(request)
    session = console.sessions.read(request)
    operator = None
    if session is not None and csrf.check_session_token(console.signer, session, token):
        operator_id = session.operator
        operator = await console.node.aread(lambda c: operators_db.by_id(c, operator_id))
        console.sessions.revoke(session)
    elif session is not None:
        return await console.error_page(request, 403, "the logout form had no valid CSRF token")
    response = RedirectResponse("/login?bye=1", status_code=303)
    response.delete_cookie(console.sessions.cookie, path="/", secure=True, httponly=True, samesite="strict")
    if operator is not None:
        # The login page that follows speaks the operator's language. A cookie, not `?lang=`: that
        # would preselect the language in the login menu, and save it for whoever logs in next.
        response.set_cookie(i18n.LANG_COOKIE, operator.lang, path="/", secure=True, httponly=True,
                            samesite="strict", max_age=365 * 86400)  # fmt: skip
    return response
