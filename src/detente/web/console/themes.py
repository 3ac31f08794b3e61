"""The console's colour theme: Light, Dark (for a darkened crisis room) or System (the screen's setting).

`GET <any page>?theme=dark` stores the choice in a cookie and reloads the page without the parameter,
as `?lang=` does for the language; a value the console has no theme of is refused (400) and changes
nothing. The choice is a cookie of the browser, not a column of the operator (that would need a
database migration): it outlives logging out and in, and the login page already wears it. Every page
carries it as `<html data-theme="...">`; console.css writes each colour as `light-dark(light, night)` and
sets the root's `color-scheme` by it (`light dark` for `system`: the screen's `prefers-color-scheme`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from detente.web.console.i18n import N_

THEMES = ("light", "dark", "system")
DEFAULT = "system"  # until an operator chooses, the screen's own setting (prefers-color-scheme)
COOKIE = "detente-theme"
PARAM = "theme"
# The detail of the 400 page: one of the console's fixed details, translated (`site.FIXED_DETAILS`).
UNKNOWN = N_("the console has no theme of that name: choose Light, Dark or System")


def current(request: Request) -> str:
    """Return the theme to show: a valid `?theme=`, else this browser's choice (its cookie), else `DEFAULT`.

    A `?theme=` still in the address is on a page no route stored it from (a 404's): shown, not kept.
    """
    for chosen in (request.query_params.get(PARAM), request.cookies.get(COOKIE)):
        if chosen is not None and chosen in THEMES:
            return chosen
    return DEFAULT


def asked(request: Request) -> str | None:
    """Return the `?theme=` of a GET request (None: it asks for none); it may name no theme."""
    if request.method != "GET" or PARAM not in request.query_params:
        return None
    return request.query_params[PARAM]


def remember(request: Request, theme: str) -> Response:
    """Store `theme` (one of `THEMES`) in the cookie and reload the page without `?theme=`."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != PARAM])
    response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
    response.set_cookie(COOKIE, theme, path="/", secure=True, httponly=True, samesite="strict",
                        max_age=365 * 86400)  # fmt: skip
    return response
