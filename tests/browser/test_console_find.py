"""The Find screen in a real browser, on an Urdu page: Urdu words find an Urdu message, a wrong window is
said on its field with the form kept, and a result opens the message on its channel."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from support import Cluster, wait_for
from workflow_support import get, post

pytestmark = pytest.mark.browser
URDU = "تربت کے قریب سرحدی چوکی پر فائرنگ"


def test_urdu_words_typed_on_an_urdu_page_find_the_urdu_message(
    console_nodes: Cluster, open_console: Callable[..., Page], screenshot: Callable[[Page, str], Path]
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    tag = f"zq{uuid.uuid4().hex[:8]}"
    # ROUTINE, between the Foreign offices: nothing another console test waits for or counts.
    texts = {"urdu": f"{URDU} {tag}", "english": f"Firing at a border post near Turbat {tag}"}
    ids = {
        name: post(ir, "ir-fs", "/api/v1/messages", {
            "channel": "fs", "to": "pk:fs", "precedence": "ROUTINE", "type": "hotline.text",
            "lang": "ur" if name == "urdu" else "en", "body": {"text": text}})["id"]
        for name, text in texts.items()
    }  # fmt: skip
    wait_for(lambda: len(get(pk, "pk-supervisor", "/api/v1/messages", q=tag)["messages"]) == 2, what="pk to hold both")

    page = open_console(pk, "pk-translator1")  # reads the console in Urdu
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.click(".nav a[href='/find']")
    expect(page.locator(".nav a[href='/find']")).to_have_attribute("aria-current", "page")
    page.fill("#f-q", f"فائرنگ  تربت {tag}")
    page.select_option("#f-direction", "in")
    page.press("#f-q", "Enter")
    rows = page.locator("ol.find-results li")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".snippet")).to_contain_text(URDU)
    expect(page.locator("#f-q")).to_have_value(f"فائرنگ  تربت {tag}")
    expect(page.locator("#f-direction")).to_have_value("in")
    screenshot(page, "ur-find")

    # The last day before the first: said on its field, the form as it was, nothing listed.
    page.fill("#f-from", "2024-01-17")
    page.fill("#f-to", "2024-01-16")
    page.click(".find-form button[type=submit]")
    expect(page.locator("#f-to")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-to-error")).to_be_visible()
    expect(page.locator("#f-from")).to_have_value("2024-01-17")
    expect(page.locator("#f-q")).to_have_value(f"فائرنگ  تربت {tag}")
    expect(page.locator("ol.find-results")).to_have_count(0)

    # Without the window, the result opens the message on its channel.
    page.fill("#f-from", "")
    page.fill("#f-to", "")
    page.click(".find-form button[type=submit]")
    page.locator("ol.find-results a.row-link").first.click()
    expect(page.locator(f"#m-{ids['urdu']}")).to_contain_text(URDU)
    assert "/channel/fs?before=" in page.url
