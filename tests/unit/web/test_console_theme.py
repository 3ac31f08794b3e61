"""The console's colour theme (`web/console/themes.py`): Light, Dark or System, chosen with `?theme=` on any
page and kept in a cookie; every page's root carries it, and console.css colours the page by it.

The stylesheet is checked here too, without a browser: the night theme says the same under its two
conditions (`[data-theme="dark"]`, and `prefers-color-scheme: dark` when the choice is System), gives
every colour of the light theme a night value, and keeps WCAG AA contrast in both themes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.node.demo import setup_demo
from detente.web.console import themes

ROOT = Path(__file__).resolve().parents[3]
CSS = (ROOT / "src" / "detente" / "web" / "static" / "console.css").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    return info


def root_theme(html: str) -> str:
    """The `data-theme` of a page's `<html>` element."""
    found = re.search(r'<html lang="\w+" dir="\w+" data-theme="([^"]*)">', html)
    assert found, html[:300]
    return found.group(1)


def theme_cookies(response: Any) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{themes.COOKIE}=")]


def current_link(html: str) -> str:
    """The theme link marked as the current choice in the header."""
    found = re.search(r'<ul class="langs themes"[^>]*>(.*?)</ul>', html, re.S)
    assert found, html[:300]
    chosen = re.findall(r'[?;]theme=(\w+)" aria-current="true"', found.group(1))
    assert len(chosen) == 1, found.group(1)
    return chosen[0]


def test_the_screens_setting_rules_until_a_theme_is_chosen_and_the_choice_is_kept_in_a_strict_cookie(
    client: TestClient,
) -> None:
    page = client.get("/login")
    assert root_theme(page.text) == "system" and current_link(page.text) == "system"
    chosen = client.get("/login?next=/cases&theme=dark", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/login?next=%2Fcases"  # the rest kept
    (cookie,) = theme_cookies(chosen)
    assert cookie.startswith("detente-theme=dark;")
    assert all(flag in cookie.lower() for flag in ("httponly", "secure", "samesite=strict", "path=/", "max-age="))
    page = client.get("/login?next=/cases")
    assert root_theme(page.text) == "dark" and current_link(page.text) == "dark"
    assert "<style" not in page.text and " style=" not in page.text  # the policy allows no inline style


def test_the_choice_outlives_logging_out_and_in_and_is_the_same_in_urdu(client: TestClient) -> None:
    login(client, "pk-dgmo")
    assert client.get("/cases?theme=light", follow_redirects=False).headers["location"] == "/cases"
    assert root_theme(client.get("/cases").text) == "light"
    out = client.post("/logout", data={"csrf": csrf_of(client.get("/"))}, follow_redirects=False)
    assert out.headers["location"] == "/login?bye=1" and not theme_cookies(out)  # logging out keeps it
    assert root_theme(client.get("/login?bye=1").text) == "light"
    login(client, "pk-dgmo", lang="ur")
    page = client.get("/")
    assert '<html lang="ur" dir="rtl" data-theme="light">' in page.text and current_link(page.text) == "light"
    client.get("/?theme=system")
    assert root_theme(client.get("/").text) == "system"
    missing = client.get("/no-such-page", headers={"accept": "text/html"})
    assert missing.status_code == 404 and root_theme(missing.text) == "system"  # the console's error pages too
    shown = client.get("/no-such-page?theme=dark", headers={"accept": "text/html"})  # no route: shown, not kept
    assert root_theme(shown.text) == "dark" and not theme_cookies(shown)
    client.get("/?lang=en")


@pytest.mark.parametrize("value", ["purple", "", "DARK", "dark "])
def test_a_theme_the_console_has_not_is_refused_and_changes_nothing(client: TestClient, value: str) -> None:
    client.get("/login?theme=dark")
    login(client, "pk-dgmo")
    refused = client.get("/cases", params={"theme": value}, follow_redirects=False)
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html")
    assert "the console has no theme of that name: choose Light, Dark or System" in refused.text
    assert not theme_cookies(refused) and root_theme(refused.text) == "dark"
    linked = re.findall(r'href="[^"]*[?;]theme=([^"&]*)', refused.text)  # the language links do not keep it
    assert sorted(linked) == sorted(themes.THEMES)
    assert root_theme(client.get("/cases").text) == "dark"


def test_a_refusal_is_said_in_the_pages_language(client: TestClient) -> None:
    login(client, "pk-dgmo", lang="ur")
    refused = client.get("/?theme=purple", follow_redirects=False)
    assert refused.status_code == 400 and '<html lang="ur" dir="rtl" data-theme="system">' in refused.text
    client.get("/?lang=en")


# -- the stylesheet ---------------------------------------------------------------------------------


def properties(block: str) -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*([^;]+);", block))


def block_of(selector: str, css: str = CSS) -> str:
    found = re.search(re.escape(selector) + r"\s*\{([^{}]*)\}", css)
    assert found, selector
    return found.group(1)


def theme(index: int) -> dict[str, str]:
    """Each colour of :root in one theme: `light-dark(light, night)` gives one per theme, else the same."""
    out = {}
    for name, value in properties(block_of(":root")).items():
        pair = re.fullmatch(r"light-dark\(\s*([^,]+?)\s*,\s*([^)]+?)\s*\)", value)
        out[name] = pair.group(index + 1) if pair else value
    return out


LIGHT, DARK = theme(0), theme(1)


def test_the_night_theme_is_chosen_or_followed_through_the_roots_colour_scheme() -> None:
    """Each colour is written once for both themes (`light-dark`), and the choice sets which applies:
    the night one when chosen, the screen's when System, so chosen and followed cannot drift apart."""
    assert "color-scheme: light;" in block_of(":root")
    assert block_of(':root[data-theme="dark"]').split() == ["color-scheme:", "dark;"]
    assert block_of(':root[data-theme="system"]').split() == ["color-scheme:", "light", "dark;"]
    differ = {name for name in LIGHT if LIGHT[name] != DARK[name]}
    assert {"--ink", "--paper", "--wash", "--flash", "--flash-fill"} <= differ  # a night theme indeed
    colours = {name for name, value in LIGHT.items() if value.startswith("#") or value == "transparent"}
    assert all(DARK[name].startswith("#") or DARK[name] == "transparent" for name in colours)


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


GROUNDS = ("paper", "wash")
TEXTS = ("ink", "muted", "accent", "flash", "immediate", "priority", "routine", "ok", "warn")
TEXT_PAIRS = [  # text on what it is written on: 4.5:1
    *[(text, ground) for text in TEXTS for ground in GROUNDS],
    ("on-fill", "flash-fill"), ("on-fill", "immediate-fill"), ("on-fill", "priority-fill"),
    ("on-fill", "routine-fill"), ("accent-ink", "accent"), ("paper", "ink"), ("flash-deep", "flash-wash"),
    ("flash", "flash-wash"), ("muted", "flash-wash"), ("immediate", "immediate-wash"), ("muted", "immediate-wash"),
    ("ok", "ok-wash"), ("warn", "warn-wash"), ("ink", "priority-wash"), ("muted", "out-wash"),
]  # fmt: skip
# A field's border (3:1); the focus ring, amber outside and the text's colour inside (console.css): the
# better of the two stands out 3:1 from what surrounds it.
BORDER_GROUNDS = GROUNDS
RING_GROUNDS = ("paper", "wash", "flash-fill", "flash-wash", "out-wash")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_text_keeps_aa_contrast_and_the_precedences_stay_apart(theme: str) -> None:
    colours = {name[2:]: value for name, value in ({**LIGHT, **DARK} if theme == "dark" else LIGHT).items()}

    def ratio(a: str, b: str) -> float:
        return contrast(colours[a], colours[b])

    faint = [f"{a} on {b}: {ratio(a, b):.2f}" for a, b in TEXT_PAIRS if ratio(a, b) < 4.5]
    faint += [f"field-line on {b}: {ratio('field-line', b):.2f}" for b in BORDER_GROUNDS if ratio("field-line", b) < 3]
    faint += [f"the focus ring on {b}" for b in RING_GROUNDS if max(ratio("focus", b), ratio("ink", b)) < 3]
    assert not faint, faint
    fills = {colours[f"{p}-fill"] for p in ("flash", "immediate", "priority", "routine")}
    assert len(fills) == 4 and len({colours[p] for p in ("flash", "immediate", "priority")}) == 3
    red, green, blue = (int(colours["flash-fill"][i : i + 2], 16) for i in (1, 3, 5))
    assert red > 3 * max(green, blue)  # FLASH is red in both themes
