"""Certified translations in Chromium: an Iranian translator translates pk's FLASH, another certifies it, and
the Pakistani officer sees both on their own screen without reloading."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

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


def translate_into_persian(card: Locator) -> None:
    """Open a message card's Translate form, write `FA` into Persian, and send it."""
    card.locator("details.translate summary").click()
    card.locator("select[name=lang]").select_option("fa")
    card.locator("textarea[name=text]").fill(FA)
    card.locator(".translate-form button[type=submit]").click()


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
    translate_into_persian(card)
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


def test_a_case_page_shows_translations_with_their_times_and_each_form_says_what_it_did(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    for name in ("ir-ctr1", "ir-ctr2", "ir-ctr3"):
        add_user(ir.data, name, ["ir:dgmo"], ["translator"], f"{name}-password")
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "PRIORITY", "type": "case.open",
               "body": {"title": "Drone sightings over Kech"}, "lang": "en"}  # fmt: skip
    case = pk.created("pk-dgmo", "/api/v1/messages", request)["id"]
    wait_for(lambda: ir.message("ir-dgmo", case, missing_ok=True), what="the case to reach ir")

    # Translated from the case page, which shows it under the message and says it was done.
    translator = open_console(ir, None)
    sign_in(translator, ir, "ir-ctr1")
    translator.goto(f"{ir.url}/case/{case}")
    card = translator.locator(f"#m-{case}")
    translate_into_persian(card)
    expect(translator).to_have_url(re.compile(rf"/case/{case}\?translated=[0-9a-f-]+#t-[0-9a-f-]+$"))
    expect(translator.locator("#translated-notice")).to_contain_text("Translated: the signed translation goes")
    [made] = ir.message("ir-dgmo", case)["translations"]
    shown = translator.locator(f"#t-{made['id']}")
    expect(shown.locator(".translation-text")).to_have_text(FA)
    # Its time as the console writes every time: UTC, with the full time and date-time group in its title, and IR's.
    when = shown.locator(".translation-when time")
    expect(when).to_have_attribute("datetime", made["created"])
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ · \d{6}Z[A-Z]{3}\d\d$"))
    expect(shown.locator(".translation-when .local")).to_contain_text("IR UTC+03:30")

    # A dispute without a note: the form again, open in place, the error on its field, and nothing written.
    reviewer = open_console(ir, None)
    sign_in(reviewer, ir, "ir-ctr2")
    reviewer.goto(f"{ir.url}/case/{case}")
    shown = reviewer.locator(f"#t-{made['id']}")
    shown.locator("details.dispute summary").click()
    shown.locator("textarea[name=note]").fill("   ")  # `required` takes spaces: the node's rule is the one that counts
    shown.locator(".dispute-form button[type=submit]").click()
    expect(reviewer).to_have_url(re.compile(rf"/case/{case}\?blank_note={made['id']}#dn-{made['id']}$"))
    shown = reviewer.locator(f"#t-{made['id']}")
    note = shown.locator("textarea[name=note]")
    expect(shown.locator("details.dispute")).to_have_attribute("open", "")
    expect(note).to_be_focused()
    expect(note).to_have_attribute("aria-invalid", "true")
    expect(shown.locator(".dispute-form .field-error")).to_have_text(
        "Say what is wrong with the translation: the note travels with the dispute."
    )
    expect(reviewer.locator("#disputed-notice")).to_have_count(0)
    assert ir.message("ir-dgmo", case)["translations"][0]["reviews"] == []
    screenshot(reviewer, "en-case-dispute-without-a-note")
    note.fill("«کچ» is the district's name, not a place in it")
    shown.locator(".dispute-form button[type=submit]").click()
    expect(reviewer.locator("#disputed-notice")).to_be_visible()
    expect(reviewer.locator(f"#t-{made['id']} .translation-state.disputed")).to_contain_text("Disputed by ir-ctr2")
    expect(reviewer.locator(f"#t-{made['id']} .field-error")).to_have_count(0)

    certifier = open_console(ir, None)
    sign_in(certifier, ir, "ir-ctr3")
    certifier.goto(f"{ir.url}/case/{case}")
    certifier.locator(f"#t-{made['id']} .certify-form button").click()
    expect(certifier.locator("#certified-notice")).to_be_visible()
    certification = certifier.locator(f"#t-{made['id']} .translation-state.certified")
    expect(certification).to_contain_text("Certified by ir-ctr3")
    [certified] = [r for r in ir.message("ir-dgmo", case)["translations"][0]["reviews"] if r["verdict"] == "certified"]
    expect(certification.locator("time")).to_have_attribute("datetime", certified["created"])

    # The sender's case page shows how its message was read, with both verdicts, in its own time.
    wait_for(lambda: len(pk.message("pk-dgmo", case)["translations"][0]["reviews"]) == 2, what="both reviews at pk")
    pakistani = open_console(pk, "pk-dgmo")
    pakistani.goto(f"{pk.url}/case/{case}")
    theirs = pakistani.locator(f"#m-{case} .translation")
    expect(theirs.locator(".translation-text")).to_have_text(FA)
    expect(theirs).to_contain_text("Certified by ir:dgmo")
    expect(theirs).to_contain_text("Disputed by ir:dgmo")
    expect(theirs.locator(".translation-when .local")).to_contain_text("PK UTC+05:00")
    expect(pakistani.locator(f"#m-{case} .translate-form")).to_have_count(0)  # an operator does not translate
    screenshot(pakistani, "en-case-translation")
    with ir.client("ir-dgmo") as client:  # leave nothing waiting on these shared nodes
        assert client.post(f"/api/v1/messages/{case}/ack").status_code == 201
