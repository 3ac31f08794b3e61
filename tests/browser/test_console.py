"""The console in a real browser, against two real nodes: the FLASH round trip, languages, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from support import Cluster, wait_for

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
TABLET: ViewportSize = {"width": 768, "height": 1024}
Shot = Callable[[Page, str], Path]


def mark_page(page: Page) -> None:
    """Leave a mark in the page's JavaScript state: a reload or navigation would wipe it."""
    page.evaluate("window.__noReload = 'still here'")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__noReload === 'still here'"))


def compose_incident(page: Page, url: str, *, lat: str, place: str) -> None:
    """Open the dgmo channel with the incident report form and fill it in (FLASH)."""
    page.goto(url + "/channel/dgmo")
    page.select_option("#pick-type", "incident.report")  # the form reloads with the type's fields
    expect(page.locator("#f-kind")).to_be_visible()
    page.select_option("#f-precedence", "FLASH")
    page.select_option("#f-kind", "cross_border_fire")
    minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#f-time", minute_ago)
    page.fill("#f-location-lat", lat)
    page.fill("#f-location-lon", "62.65")
    page.fill("#f-location-place", place)
    page.fill("#f-description", "Mortar fire from across the border near Panjgur; two posts hit.")
    page.fill("#f-assessment", "Not attributed yet. We request clarification before any response.")
    page.fill("#f-escalation", "3")


def test_flash_incident_report_arrives_live_and_its_acknowledgement_comes_back_live(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    iranian = open_console(ir, "ir-dgmo")
    expect(iranian.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    mark_page(iranian)

    pakistani = open_console(pk, "pk-dgmo")
    compose_incident(pakistani, pk.url, lat="26.96", place="Panjgur")
    screenshot(pakistani, "en-channel-compose-incident")
    pakistani.click("#compose-form button.send")
    sent = pakistani.locator("article.msg.dir-out").last
    expect(sent).to_contain_text("Incident report")
    expect(pakistani.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    mark_page(pakistani)

    # The Iranian officer sees it arrive without reloading: the FLASH banner, the title, the card.
    expect(iranian.locator("#flash-banner")).to_be_visible()
    expect(iranian).to_have_title(re.compile(r"^⚠ FLASH"))
    card = iranian.locator("section.incoming article.msg.prec-flash")
    expect(card).to_contain_text("Panjgur")
    expect(card.locator(".countdown")).to_contain_text(re.compile(r"\d+:\d\d left"))
    assert not_reloaded(iranian)
    screenshot(iranian, "en-now-flash-arrived")

    # ... and acknowledges it with the keyboard: focus the message, press "a".
    card.focus()
    iranian.keyboard.press("a")
    expect(iranian.locator("section.incoming article.msg")).to_have_count(0)
    expect(iranian.locator("#flash-banner")).to_have_count(0)

    # The Pakistani screen shows the acknowledgement live.
    expect(sent.locator(".badge.b-acknowledged.done")).to_be_visible()
    expect(sent).to_contain_text("Acknowledged by ir:dgmo")
    assert not_reloaded(pakistani)
    screenshot(pakistani, "en-channel-acknowledged")

    # A codebook message, previewed in every language, declined with a reason typed after pressing "d".
    pakistani.goto(pk.url + "/channel/dgmo")
    code = pakistani.locator("#code-REQUEST-CALL")
    code.locator("summary").click()
    code.locator("input[data-param=time]").fill("2024-01-18T01:00")
    expect(code.locator(".preview[lang=ur]")).to_contain_text("2024-01-18 01:00 UTC")
    expect(code.locator(".preview[lang=fa]")).to_contain_text("درخواست گفت‌وگوی تلفنی")
    screenshot(pakistani, "en-channel-codebook")
    code.locator("button[type=submit]").click()
    expect(iranian.locator("section.incoming article.msg")).to_contain_text("telephone call between the principals")
    iranian.locator("section.incoming article.msg").first.focus()
    iranian.keyboard.press("d")
    expect(iranian.locator("section.incoming textarea[name=reason]").first).to_be_focused()
    # Spaces pass the browser's `required`: the node gives the form back, open, the error on the field
    # (QA: a full error page), and nothing is sent.
    iranian.keyboard.type("   ")
    iranian.locator("section.incoming .decline-form button").first.click()
    reason = iranian.locator("section.incoming textarea[name=reason][aria-invalid=true]")
    expect(reason).to_be_visible()
    expect(iranian.locator("section.incoming .decline-form .field-error")).to_contain_text("Say why you decline")
    expect(iranian.locator("section.incoming article.msg").first).to_contain_text(
        "telephone call between the principals"
    )
    reason.focus()
    iranian.keyboard.type("The principal is travelling; the deputy will call instead.")
    iranian.locator("section.incoming .decline-form button").first.click()
    declined = pakistani.locator("article.msg.dir-out").last
    expect(declined).to_contain_text("Declined by ir:dgmo")
    expect(declined).to_contain_text("the deputy will call instead")
    mark_page(pakistani)

    # The case the incident report opened has a timeline in both parties' local times and the date-time group.
    pakistani.locator("article.msg.dir-out", has_text="Panjgur").locator("a", has_text="Case").first.click()
    # Titled by the kind's label ("cross-border fire"), as on Urdu and Persian pages, not the workflow's id.
    expect(pakistani.locator("h1")).to_contain_text("cross-border fire at Panjgur")
    expect(pakistani.locator(".timeline")).to_contain_text("PK UTC+05:00")
    expect(pakistani.locator(".timeline")).to_contain_text("IR UTC+03:30")
    expect(pakistani.locator(".timeline .dtg").first).to_have_text(re.compile(r"^\d{6}Z[A-Z]{3}\d{2}$"))
    screenshot(pakistani, "en-case")


def test_a_bad_field_shows_the_nodes_error_on_that_field(console_nodes: Cluster, open_console: OpenConsole,
                                                          screenshot: Shot) -> None:  # fmt: skip
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    compose_incident(page, pk.url, lat="95", place="Panjgur")
    page.click("#compose-form button.send")
    field = page.locator("#f-location-lat")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-location-lat-error")).to_contain_text("Latitude must be a number from -90 to 90, not “95”")
    expect(field).to_be_focused()
    # What the officer typed is still there; the other fields are not marked.
    expect(page.locator("#f-location-place")).to_have_value("Panjgur")
    expect(page.locator("#f-location-place")).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "en-channel-field-error")
    # Evidence for a report is uploaded to the node and listed in the form by its SHA-256.
    page.goto(pk.url + "/channel/dgmo?type=action.report")
    page.set_input_files("#f-evidence-file", files=[{"name": "crater.txt", "mimeType": "text/plain",
                                                     "buffer": b"Crater 3 m wide, 200 m from post 7."}])  # fmt: skip
    expect(page.locator("#f-evidence")).to_have_value(re.compile(r'"sha256": "[0-9a-f]{64}"'))


def test_an_operator_cannot_open_another_offices_channel(console_nodes: Cluster, open_console: OpenConsole,
                                                          screenshot: Shot) -> None:  # fmt: skip
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    response = page.goto(pk.url + "/channel/fs")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".nav")).not_to_contain_text("fs")
    screenshot(page, "en-403")


def test_posts_without_the_csrf_token_are_refused(console_nodes: Cluster, open_console: OpenConsole) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    page.goto(pk.url + "/channel/dgmo")
    body: dict[str, str | float | bool] = {"type": "hotline.text", "precedence": "ROUTINE", "b.text": "forged"}
    # The browser's own cookies, the node's own origin, but no token: refused, nothing sent.
    refused = page.request.post(pk.url + "/channel/dgmo/send", form=body, headers={"Origin": pk.url})
    assert refused.status == 403
    wrong = page.request.post(pk.url + "/channel/dgmo/send", form={**body, "csrf": "x" * 43})
    assert wrong.status == 403
    api = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text", "body": {"text": "x"}}
    assert page.request.post(pk.url + "/api/v1/messages", data=api).status == 401
    # With the session's token the same API call goes through (the console's own script could use it).
    token = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    assert page.request.post(pk.url + "/api/v1/messages", data=api, headers={"X-CSRF-Token": token}).status == 201
    page.reload()
    expect(page.locator("article.msg", has_text="forged")).to_have_count(0)


def test_switching_to_urdu_makes_the_page_right_to_left(console_nodes: Cluster, open_console: OpenConsole) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-fs")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    page.click(".langs a[lang=ur]")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    expect(page.locator(".nav a[aria-current=page]")).to_have_text("ابھی")
    # The choice is the operator's: it holds on the next page without ?lang=.
    page.goto(pk.url + "/channel/fs")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    # In a right-to-left page the compose panel sits on the left, the thread on the right.
    # Both measured in one step: a live refresh may replace the thread between two separate reads.
    compose_x, thread_x = page.evaluate(
        "() => ['#compose', 'section.thread'].map((s) => document.querySelector(s).getBoundingClientRect().left)"
    )
    assert compose_x < thread_x, (compose_x, thread_x)
    page.goto(pk.url + "/?lang=en")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")


SCREENS = [("now", "/"), ("channel", "/channel/dgmo"), ("cases", "/cases"), ("record", "/record"), ("admin", "/admin")]


@pytest.mark.parametrize("lang", ["en", "ur", "fa"])
def test_screenshots_of_the_main_screens(console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot,
                                         lang: str) -> None:  # fmt: skip
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    page = open_console(pk, None, lang=lang)
    screenshot(page, f"{lang}-login")
    page.fill("#name", "pk-admin")
    page.fill("#password", "pk-admin-demo")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(pk.url + "/")
    for name, path in SCREENS:
        page.goto(pk.url + path)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        screenshot(page, f"{lang}-{name}")
    # A message of its own on ir's channel: under pytest-xdist the module's other tests may run elsewhere.
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
               "body": {"text": f"Screens in {lang}"}}  # fmt: skip
    sent = pk.created("pk-dgmo", "/api/v1/messages", request)["id"]
    wait_for(lambda: ir.message("ir-dgmo", sent, missing_ok=True), what="the message to reach ir")
    tablet = open_console(ir, "ir-dgmo", viewport=TABLET, lang=lang)
    tablet.goto(ir.url + "/channel/dgmo")
    screenshot(tablet, f"{lang}-tablet-channel-ir")
    if lang == "fa":
        expect(tablet.locator(".when .hijri").first).to_contain_text("14")  # the Solar Hijri year
