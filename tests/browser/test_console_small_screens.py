"""The console on a liaison officer's phone (390 px) and tablet (768 px), and printed.

On a small screen no page scrolls sideways (a wide table scrolls within its own frame), the FLASH banner
leaves room for the page, and what is touched is at least 24 by 24 CSS px (WCAG 2.5.8). Printed, a page
shows no menu, strip, form or button, black on white in the night theme too, with a message's whole id
and a header saying what was printed, from where and when; today's times printed with their date; an Urdu
page prints right to left.

The shared pair of the console tests (`console_nodes`): the messages go to the liaison channel, which
the other tests' banners do not show, and are acknowledged at the end, before they could go overdue
and fall to an alternate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from console_support import held_still
from support import Cluster, wait_for
from workflow_support import iso, post

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
PHONE: ViewportSize = {"width": 390, "height": 844}
TABLET: ViewportSize = {"width": 768, "height": 1024}
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
# The width and height of each shown element the selector matches, with its text.
SIZES = """(selector) => [...document.querySelectorAll(selector)].filter((e) => e.checkVisibility()).map((e) => {
  const r = e.getBoundingClientRect();
  return [e.textContent.trim().slice(0, 30), r.width, r.height];
})"""
# Whether any form, button or menu link is shown (in print media: none may be).
INTERACTIVE = """() => [
  ...document.querySelectorAll('form, button, .bar, #strip, #conn, .answer-forms, .followups, #compose'),
].filter((e) => e.checkVisibility()).map((e) => e.outerHTML.slice(0, 80))"""


@pytest.fixture(scope="module")
def liaison(console_nodes: Cluster) -> Iterator[list[str]]:
    """Five FLASH from Turbat to the Zahedan liaison officer (an incident report, which opens a case, first)."""
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    place = {"lat": 29.0, "lon": 61.3, "place": "Taftan crossing, gate 3"}
    report = {"kind": "border_crossing", "time": iso(-0.2), "location": place,
              "description": "Armed men crossed near the Taftan gate at dawn; two vehicles, one with a mounted weapon.",
              "assessment": "Smugglers, not a state force."}  # fmt: skip
    message = {"channel": "liaison", "to": "pk:lo-zahedan", "precedence": "FLASH"}
    batch = [{**message, "type": "incident.report", "body": report}]
    texts = [f"Patrol {n} on the Zahedan road is ours, do not fire." for n in range(4)]
    batch += [{**message, "type": "hotline.text", "body": {"text": text}} for text in texts]
    sent = [m["id"] for m in post(ir, "ir-lo-turbat", "/api/v1/messages/batch", {"messages": batch})["messages"]]
    wait_for(lambda: all(pk.message("pk-lo-zahedan", i, missing_ok=True) for i in sent), what="the FLASH to reach pk")
    yield sent
    with pk.client("pk-lo-zahedan") as client:
        for i in sent:
            client.post(f"/api/v1/messages/{i}/ack", json={})  # 409 for one a test answered already


def test_no_page_scrolls_sideways_on_a_phone_or_a_tablet_and_the_flash_banner_leaves_room(
    console_nodes: Cluster, open_console: OpenConsole, liaison: list[str]
) -> None:
    """QA at 390 px: the cases table on Now, the tables of Record and Admin pushed the page 100-160 px
    sideways (and an Urdu page with them); five FLASH with their texts filled the whole screen."""
    pk = console_nodes["pk"]
    pages = ["/", "/channel/liaison", f"/case/{liaison[0]}", "/record", "/find?precedence=FLASH"]
    for viewport, lang in ((PHONE, "en"), (TABLET, "en"), (PHONE, "ur")):
        page = open_console(pk, "pk-lo-zahedan", viewport=viewport, lang=lang)
        expect(page.locator("#flash-banner li")).to_have_count(5)
        with held_still(page):  # a live swap of the strip mid-measure gave no box (a full run, once)
            banner = page.locator("#flash-banner").bounding_box()
        assert banner and banner["height"] <= viewport["height"] * 0.45, (viewport, lang, banner)
        for address in pages:
            page.goto(pk.url + address)
            assert page.evaluate(SIDEWAYS) <= 0, (viewport, lang, address)
        page.context.close()
    admin = open_console(pk, "pk-admin", viewport=PHONE)
    admin.goto(pk.url + "/admin")
    assert admin.evaluate(SIDEWAYS) <= 0
    # The operators' table scrolls within its own frame instead, and reaches its last column.
    frame = admin.locator(".table-scroll").first
    assert frame.evaluate("(e) => e.scrollWidth > e.clientWidth")
    admin.context.close()
    open_console(pk, "pk-lo-zahedan", lang="en").context.close()  # the operator's saved language, as it was


def test_on_a_phone_the_header_is_two_rows_and_its_tools_open_from_menu(
    console_nodes: Cluster, open_console: OpenConsole, liaison: list[str]
) -> None:
    """QA at 390 px: the header took four rows (brand, screens, languages and themes, who and log out)."""
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-lo-zahedan", viewport=PHONE, lang="ur")
    menu, tools, logout = page.locator(".menu-toggle"), page.locator("#tools"), page.locator(".bar form button")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(tools).to_be_hidden()
    bar = page.locator(".bar").bounding_box()
    brand, nav = page.locator(".brand").bounding_box(), page.locator(".nav").bounding_box()
    assert bar and brand and nav and nav["y"] > brand["y"] and bar["height"] < 3 * nav["height"], (bar, brand, nav)
    # The screens stay in one row (which scrolls within itself where they are more); the page does not.
    tops = page.locator(".nav a").evaluate_all("(links) => links.map((a) => a.getBoundingClientRect().top)")
    assert len(tops) >= 5 and len(set(tops)) == 1, tops
    assert page.evaluate(SIDEWAYS) <= 0
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(logout).to_be_visible()
    expect(page.locator(".who")).to_contain_text("pk-lo-zahedan")
    page.locator(".langs a").first.focus()
    page.keyboard.press("Escape")
    expect(tools).to_be_hidden()
    expect(menu).to_be_focused()
    expect(menu).to_have_attribute("aria-expanded", "false")
    page.context.close()
    # A tablet's header shows its tools as before, with no Menu.
    page = open_console(pk, "pk-lo-zahedan", viewport=TABLET, lang="en")
    expect(page.locator(".menu-toggle")).to_be_hidden()
    expect(page.locator(".bar form button")).to_be_visible()
    page.context.close()


def test_acknowledge_decline_and_the_codebook_are_24_px_targets_on_a_phone(
    console_nodes: Cluster, open_console: OpenConsole, liaison: list[str]
) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-lo-zahedan", viewport=PHONE, lang="en")
    page.goto(pk.url + "/channel/liaison")
    card = page.locator(f"#m-{liaison[0]}")
    expect(card.locator("button[data-action=ack]")).to_be_visible()
    page.locator("details.code > summary").first.click()
    answers = ".answer-forms button, details.decline > summary, .followups a"
    codebook = "details.code > summary, .code-form button"
    targets = page.evaluate(SIZES, f"{answers}, {codebook}")
    assert len(targets) > 20, targets
    small = [t for t in targets if t[1] < 24 or t[2] < 24]
    assert not small, small
    # The summaries of Record (the checkpoint's text) and Now (the status form) were 23 px high.
    for address in ("/record", "/"):
        page.goto(pk.url + address)
        summaries = page.evaluate(SIZES, "main summary")
        assert summaries and not [t for t in summaries if t[1] < 24 or t[2] < 24], (address, summaries)
    page.context.close()


# What a time's date adds before it (print media: its day; on screen: nothing, "none").
BEFORE = "(e) => getComputedStyle(e.querySelector('bdi'), '::before').content"


def test_a_printed_page_has_no_menu_or_forms_and_shows_the_whole_id_black_on_white(
    console_nodes: Cluster, open_console: OpenConsole, liaison: list[str]
) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-lo-zahedan", lang="en")
    page.goto(pk.url + "/channel/liaison?theme=dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.emulate_media(media="print")
    assert page.evaluate(INTERACTIVE) == []
    card = page.locator(f"#m-{liaison[1]}")
    expect(card.locator(".msg-id")).to_have_text(f"Id {liaison[1]}", use_inner_text=True)
    # Today's times carry their date on paper (a printout is read on other days), not on screen.
    sent, local = card.locator(".msg-head time"), card.locator(".msg-head .local").first
    head = page.locator(".print-head")
    expect(head).to_be_visible()
    expect(head).to_contain_text(f"{pk.url}/channel/liaison")
    expect(head).to_contain_text("Printed by pk-lo-zahedan")
    with held_still(page):  # computed styles of a card a live swap detached are "" (a full run, once)
        colours = card.evaluate("(e) => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
        day = str(sent.get_attribute("datetime"))[:10]
        assert sent.evaluate(BEFORE) == f'"{day} "'
        # The local time's own date: PK's is tomorrow's from 19:00 UTC.
        assert local.evaluate(BEFORE) == f'"{str(local.get_attribute("title"))[:10]} "'
    assert colours == ["rgb(0, 0, 0)", "rgba(0, 0, 0, 0)"], colours
    assert page.pdf(format="A4")[:5] == b"%PDF-"
    # On screen, the id is its end and the header is not shown.
    page.emulate_media(media="screen")
    expect(card.locator(".msg-id")).to_have_text(f"Id …{liaison[1][-12:]}", use_inner_text=True)
    expect(head).to_be_hidden()
    if day == datetime.now(UTC).strftime("%Y-%m-%d"):
        with held_still(page):
            assert sent.evaluate(BEFORE) == local.evaluate(BEFORE) == "none"
        expect(sent).not_to_contain_text(day, use_inner_text=True)

    # An Urdu page prints right to left, with the same header and without its forms.
    page.goto(pk.url + f"/case/{liaison[0]}?lang=ur")
    page.emulate_media(media="print")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.locator(".print-head").evaluate("(e) => getComputedStyle(e).direction") == "rtl"
    assert page.evaluate(INTERACTIVE) == []
    expect(page.locator(f"#m-{liaison[0]} .msg-id")).to_contain_text(liaison[0], use_inner_text=True)
    page.goto(pk.url + "/?lang=en")  # the operator's saved language, as it was
    page.context.close()
