"""Logging in to the console through a TestClient or httpx client, as a browser's form would."""

from __future__ import annotations

import re
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
