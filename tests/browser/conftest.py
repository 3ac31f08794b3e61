"""Fixtures of the console tests: two real nodes, Debian's Chromium, a signed-in page per operator.

Chromium is driven by pytest-playwright with `executable_path=/usr/bin/chromium` (no browser
download: see shared/reference/ci-recipes.md), offline: every host name but loopback fails to
resolve. Screenshots go to `artifacts/screenshots/` at the repository root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from support import ROOT, Cluster, NodeProc, running_cluster

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Two nodes and a browser share two cores with the rest of the suite: give live updates time to arrive
# (15 s was not always enough on a loaded host: a click waited past it while the page scrolled, once).
BROWSER_WAIT_MS = 30_000
expect.set_options(timeout=BROWSER_WAIT_MS)


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Launch Debian's Chromium with a throwaway home and no network but loopback."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: run `make system` (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} missing: apt-get install --no-install-recommends chromium")
    home = str(tmp_path_factory.mktemp("chromium-home"))
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "env": {**os.environ, "HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home},
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        ],
    }  # fmt: skip


@pytest.fixture(scope="session")
def console_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two real nodes (pk, ir) of the console tests' own."""
    with running_cluster(tmp_path_factory.mktemp("console")) as cluster:
        yield cluster


def password(node: NodeProc, name: str) -> str:
    """Return a demo operator's password."""
    return str(next(o["password"] for o in node.info["operators"] if o["name"] == name))


def login(page: Page, node: NodeProc, name: str, lang: str | None = None) -> None:
    """Log in on the node's console and wait for the Now screen."""
    page.goto(node.url + "/login" + (f"?lang={lang}" if lang else ""))
    page.fill("#name", name)
    page.fill("#password", password(node, name))
    if lang:
        page.select_option("#lang", lang)
    page.click(".login-form button[type=submit]")
    page.wait_for_url(node.url + "/")


@pytest.fixture
def open_console(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Return a function that opens a new browser context, signed in as an operator (None: not) on a node."""
    contexts: list[BrowserContext] = []

    def open_page(
        node: NodeProc, name: str | None, viewport: ViewportSize | None = None, lang: str | None = None
    ) -> Page:
        context = browser.new_context(ignore_https_errors=True, viewport=viewport or DESKTOP, locale="en-GB")
        context.set_default_timeout(BROWSER_WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        if name is None:
            page.goto(node.url + "/login" + (f"?lang={lang}" if lang else ""))
        else:
            login(page, node, name, lang)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    """Return a function that saves a screenshot of a page under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return save
