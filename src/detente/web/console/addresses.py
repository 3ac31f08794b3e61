"""Where a console page is, and where to go back to: after login, after a form, from a live fragment.

A session that ends while an officer is on a page, or while a form is being sent, must bring them
back to that page after login, never to an address that is not a page (a form's POST, a live
fragment) and never to another site (`safe_next`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse

from detente.errors import Invalid


def safe_next(value: str | None) -> str:
    """Return a same-site path to go back to after login (anything else becomes `/`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value


# Query parameters of a page that are not the page: notices of what its last form did, and a live fragment.
ONE_TIME = frozenset(
    {
        "sent",
        "status_sent",
        "acked",
        "declined",
        "translated",
        "certified",
        "disputed",
        "blank_text",
        "blank_note",
        "blank_reason",
        "fragment",
    }
)


def with_notice(address: str, name: str, value: str) -> str:
    """Return a same-site `address` with the one-time notice `name=value` in its query (its `#fragment` kept)."""
    place, hash_, fragment = safe_next(address).partition("#")
    path, _, query = place.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != name]
    return f"{path}?{urlencode([*kept, (name, value)])}{hash_}{fragment}"


def form_page(path: str) -> str:
    """Return the page a form-posting address belongs to: `/channel/x/send` -> `/channel/x`, other POSTs -> Now.

    A page answered to a POST (a form sent back with its errors) stands at the POST's address.
    """
    if path.startswith("/channel/") and path.endswith("/send"):
        return path.removesuffix("/send")
    if path in ("/status", "/login", "/logout") or path.startswith("/messages/"):
        return "/"
    return path


async def posted_from(request: Request) -> str:
    """Return the page a posted form was on, to go back to after login (never the POST's own address).

    The `Referer` when it is a page of this origin (browsers send it: the pages' referrer policy is
    `same-origin`); else the form's `next` field (the answer forms carry it); else the page the
    POST's address belongs to.
    """
    referer = urlsplit(request.headers.get("referer", ""))
    if (referer.scheme, referer.netloc) == (request.url.scheme, request.url.netloc) and referer.path.startswith("/"):
        page = form_page(referer.path)
        # Not the notices of what the page's last form did (`?sent=`, `?status_sent=`): they are said once.
        query = referer.query if page == referer.path else ""
        kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in ONE_TIME]
        return safe_next(page + (f"?{'&'.join(kept)}" if kept else ""))
    try:
        posted = (await request.form()).get("next")
    except Exception:  # a body that cannot be read as a form: the POST's own page will do
        posted = None
    if isinstance(posted, str) and safe_next(posted) != "/":
        return safe_next(posted)
    return form_page(request.url.path)


def page_address(next_url: str) -> str:
    """Return the page to go back to after login for a request's address: a live fragment's page, not the fragment."""
    path, _, query = next_url.partition("?")
    if path == "/strip":  # the status strip is on every page: the Now screen will do
        return "/"
    kept = [(k, v) for k, v in parse_qsl(query) if k != "fragment"]
    return path + (f"?{urlencode(kept)}" if kept else "")


def back_to(next_url: str, notice: str, value: str, anchor: str) -> RedirectResponse:
    """Return to a form's page at `#anchor`, with the one-time `notice=value`.

    The anchor is what the form made (a translation) or the field left blank: a browser puts the
    focus on the field it goes to, and the page's live refreshes wait while it is there.
    """
    page = safe_next(next_url).partition("#")[0]
    return RedirectResponse(with_notice(f"{page}#{quote(anchor, safe='-')}", notice, value), status_code=303)


def before_index(request: Request) -> int | None:
    """Return the `?before=<log index>` of a page of older messages (a channel's, Find's).

    Raises `Invalid` if it is not a whole number.
    """
    value = request.query_params.get("before")
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise Invalid("before: expected the log index of a message (a whole number)")
    return int(value)
