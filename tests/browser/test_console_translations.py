"""Certified translations in Chromium: an Iranian translator translates pk's FLASH, another certifies it, and
the Pakistani officer sees both on their own screen without reloading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from detente.node.setup import add_user
from support import Cluster, NodeProc, wait_for

OpenConsole = Callable[..., Page]
Shot = Callable[[Page, str], Path]
FA = "پهپادی بر فراز بخش کچ دیده شد"


def sign_in(page: Page, node: NodeProc, name: str) -> None:
    page.goto(node.url + "/login")
    page.fill("#name", name)
    page.fill("#password", f"{name}-password")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(node.url + "/")


def test_a_translation_made_and_certified_on_the_console_is_seen_by_the_sender(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    for name in ("ir-btr1", "ir-btr2"):
        add_user(ir.data, name, ["ir:dgmo"], ["translator"], f"{name}-password")
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
               "body": {"text": "Drone sighted over Kech district"}, "lang": "en"}  # fmt: skip
    message = pk.created("pk-dgmo", "/api/v1/messages", request)["id"]
    wait_for(lambda: ir.message("ir-dgmo", message, missing_ok=True), what="the FLASH to reach ir")
    pakistani = open_console(pk, "pk-dgmo")
    pakistani.goto(f"{pk.url}/channel/dgmo")
    sent = pakistani.locator(f"#m-{message}")
    expect(sent).to_be_visible()

    translator = open_console(ir, None)
    sign_in(translator, ir, "ir-btr1")
    translator.goto(f"{ir.url}/channel/dgmo")
    card = translator.locator(f"#m-{message}")
    card.locator("details.translate summary").click()
    card.locator("select[name=lang]").select_option("fa")
    card.locator("textarea[name=text]").fill(FA)
    card.locator(".translate-form button[type=submit]").click()
    card = translator.locator(f"#m-{message}")
    expect(card.locator(".translation-text")).to_have_text(FA)
    expect(card.locator(".translation-text")).to_have_attribute("dir", "auto")
    expect(card).to_contain_text("Not yet certified")
    expect(card.locator(".certify-form")).to_have_count(0)

    # The sender's screen shows how its message was read, live.
    expect(sent.locator(".translation-text")).to_have_text(FA)

    reviewer = open_console(ir, None)
    sign_in(reviewer, ir, "ir-btr2")
    reviewer.goto(f"{ir.url}/channel/dgmo")
    reviewer.locator(f"#m-{message} .certify-form button").click()
    expect(reviewer.locator(f"#m-{message}")).to_contain_text("Certified by ir-btr2")
    screenshot(reviewer, "en-channel-translation-certified")
    expect(sent).to_contain_text("Certified by ir:dgmo")
    # The reviewer's Persian page: the translation right to left, its state in the reader's words.
    reviewer.goto(f"{ir.url}/channel/dgmo?lang=fa")
    persian = reviewer.locator(f"#m-{message}")
    expect(persian.locator(".translation-state.certified")).to_contain_text("گواهی‌شده توسط ir-btr2")
    text = persian.locator(".translation-text")
    assert text.evaluate("e => getComputedStyle(e).direction") == "rtl"
    screenshot(reviewer, "fa-channel-translation-certified")
    # Leave no FLASH waiting: the other tests of these shared nodes count the ones waiting on ir.
    with ir.client("ir-dgmo") as client:
        assert client.post(f"/api/v1/messages/{message}/ack").status_code == 201
