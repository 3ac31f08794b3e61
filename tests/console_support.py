"""Logging in to the console through a TestClient or httpx client, as a browser's form would."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx

BASE = "https://testserver"  # the origin of the console under Starlette's TestClient


def csrf_of(response: httpx.Response) -> str:
    """The CSRF token of the first form on a console page."""
    match = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert match, response.text[:500]
    return match.group(1)


def login(client: Any, name: str, password: str | None = None, **extra: str) -> httpx.Response:
    """Post the login form as `name` (a demo operator's password by default); return the answer."""
    token = csrf_of(client.get("/login"))
    form = {"name": name, "password": password or f"{name}-demo", "csrf": token, **extra}
    response: httpx.Response = client.post("/login", data=form, follow_redirects=False)
    return response


# The requests by which a console page refreshes its live block and its strip (console.js `refresh`).
REFRESHES = re.compile(r"[?&]fragment=1(&|$)|/strip(\?|$)")


@contextlib.contextmanager
def held_still(page: Any) -> Iterator[None]:
    """Hold a console page as it is while a check reads all of it (axe, computed styles).

    An event or the 20-second timer makes the script swap the live block, and what the check was
    reading is then detached from the page (axe: "Unable to determine previous heading"; a computed
    colour of ""). Meanwhile its refresh requests fail, as on a lost connection, and the script keeps
    the page; one already on its way is waited for first.
    """
    page.route(REFRESHES, lambda route: route.abort())
    try:
        page.wait_for_load_state("networkidle")
        yield
    finally:
        page.unroute(REFRESHES)
