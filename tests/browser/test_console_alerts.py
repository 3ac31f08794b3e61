"""FLASH alerts whatever brought the FLASH, and a draft that outlives the session, in real Chromium.

Two nodes of this module's own (the alerts leave FLASH messages waiting, and a password is changed).
The sound is counted, not heard: an init script stands in for the browser's AudioContext and counts
the oscillators started (three per FLASH alert).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from cli_support import detente
from support import Cluster, NodeProc, running_cluster

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]

COUNT_BEEPS = """
window.__beeps = 0;
window.AudioContext = function () {
  var noop = function () {};
  return {
    currentTime: 0, destination: {},
    createOscillator: function () {
      window.__beeps += 1;
      return { frequency: {}, connect: noop, start: noop, stop: noop };
    },
    createGain: function () { return { gain: { setValueAtTime: noop }, connect: noop }; }
  };
};
localStorage.setItem("detente-sound", "on");
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("alerts")) as cluster:
        yield cluster


def send_flash(node: NodeProc, operator: str, channel: str, to: str, text: str) -> str:
    request = {"channel": channel, "to": to, "precedence": "FLASH", "type": "hotline.text", "body": {"text": text}}
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def with_beeps_counted(page: Page) -> Page:
    page.context.add_init_script(COUNT_BEEPS)
    page.reload()
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    return page


def beeps(page: Page) -> int:
    return int(page.evaluate("window.__beeps"))


def settle(seconds: float = 2.0) -> None:
    """Give a second alert the time it would need to appear (the refresh after an event takes 150 ms)."""
    time.sleep(seconds)


def test_a_flash_is_announced_once_live_and_once_when_it_escalates_to_the_alternate(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = with_beeps_counted(open_console(pk, "pk-dgmo"))
    flash = page.locator("#toasts .toast.flash")

    # Arriving live: the event announces it, and the banner that follows does not announce it again.
    first = send_flash(ir, "ir-dgmo", "dgmo", "pk:dgmo", "Live FLASH for the DGMO.")
    expect(page.locator(f"#flash-banner a[href='/#m-{first}']")).to_be_visible()
    expect(flash).to_have_count(1)
    expect(flash).to_contain_text("FLASH from ir:dgmo")
    settle()
    assert flash.count() == 1 and beeps(page) == 3

    # Another page of the same tab: the banner lists it, nothing is announced again.
    page.goto(pk.url + "/cases")
    expect(page.locator("#flash-banner")).to_be_visible()
    settle()
    assert flash.count() == 0 and beeps(page) == 0

    # A FLASH to the liaison officer at Zahedan goes overdue (2 s on the test agreement's liaison
    # channel) and escalates to pk:dgmo, the alternate: no `message` event reaches this operator.
    page.goto(pk.url + "/")
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    late = send_flash(ir, "ir-lo-turbat", "liaison", "pk:lo-zahedan", "FLASH nobody at Zahedan answers.")
    expect(page.locator(f"#flash-banner a[href='/#m-{late}']")).to_be_visible(timeout=30_000)
    expect(page).to_have_title(re.compile(r"^⚠ FLASH \(2\)"))
    expect(flash).to_have_count(1)
    expect(flash).to_contain_text("FLASH from ir:lo-turbat")
    settle()
    assert flash.count() == 1 and beeps(page) == 3


def test_a_flash_that_arrives_while_the_stream_is_down_is_announced_when_it_is_back(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = open_console(pk, "pk-supervisor")
    cut: dict[str, Any] = {"down": True, "silent": []}

    def stream(ws: WebSocketRoute) -> None:
        if cut["down"]:
            cut["silent"].append(ws)  # open to the page, but nothing reaches it: events are lost
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/api/v1/stream$"), stream)
    page = with_beeps_counted(page)
    settle(1.0)  # the refresh the page makes when its stream opens is over: it must not see the FLASH below
    before = page.locator("#strip .strip-inner").get_attribute("data-flash-count")
    sent = send_flash(ir, "ir-fs", "fs", "pk:fs", "FLASH sent while the stream is down.")
    settle()
    assert page.locator("#toasts .toast.flash").count() == 0 and beeps(page) == 0
    assert page.locator("#strip .strip-inner").get_attribute("data-flash-count") == before

    cut["down"] = False
    for ws in cut["silent"]:
        ws.close(code=1011, reason="test outage over")  # the page reconnects, now to the node
    expect(page.locator(f"#flash-banner a[href='/#m-{sent}']")).to_be_visible()
    expect(page.locator("#toasts .toast.flash")).to_have_count(1)
    expect(page.locator("#toasts .toast.flash")).to_contain_text("FLASH from ir:fs")
    settle()
    assert page.locator("#toasts .toast.flash").count() == 1 and beeps(page) == 3


def test_a_batch_of_flash_is_one_notice_three_beeps_and_a_banner_of_five(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    """QA, a FLASH storm: 40 FLASH in one delivery gave 40 notices and 40 overlapping runs of beeps,
    a banner taller than the screen, and an assertive live region that changed every second."""
    pk, ir = nodes["pk"], nodes["ir"]
    page = with_beeps_counted(open_console(pk, "pk-dgmo"))
    flash = page.locator("#toasts .toast.flash")
    settle(1.0)
    message = {"channel": "dgmo", "to": "pk:dgmo", "precedence": "FLASH", "type": "hotline.text"}
    batch = [{**message, "body": {"text": f"Storm {n}: rockets reported near post {n}."}} for n in range(8)]
    with ir.client("ir-dgmo") as client:
        assert client.post("/api/v1/messages/batch", json={"messages": batch}).status_code == 201
    expect(flash).to_have_count(1)
    expect(flash).to_contain_text("8 new FLASH messages")
    expect(page.locator("#flash-alert")).to_contain_text("8 new FLASH messages")  # said once, assertively
    settle()
    assert flash.count() == 1 and beeps(page) == 3
    banner = page.locator("#flash-banner")
    assert banner.get_attribute("role") is None and banner.get_attribute("aria-live") is None
    waiting = int(page.locator("#strip .strip-inner").get_attribute("data-flash-count") or "0")
    assert waiting >= 8
    expect(banner.locator("li")).to_have_count(5)
    expect(banner.locator(".banner-more")).to_contain_text(f"and {waiting - 5} more: all of them on Now")
    expect(
        banner.locator("li", has_text="rockets reported near post").first
    ).to_be_visible()  # its text, to tell them apart


def test_a_draft_survives_the_end_of_the_session_and_returns_after_login(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk = nodes["pk"]
    page = open_console(pk, "pk-fs")
    page.goto(pk.url + "/channel/fs")
    draft = "Our patrol saw the crossing at 0400; details follow.\nSecond line of the draft."
    page.fill("#f-text", draft)
    page.select_option("#f-precedence", "PRIORITY")
    assert page.locator("#f-text").get_attribute("maxlength") == "10000"

    # The session ends while the officer types: the password changes on the node's machine.
    changed = detente("user", "passwd", "--data", str(pk.data), "--name", "pk-fs", "--password-stdin",
                      stdin=b"pk-fs new passphrase\n")  # fmt: skip
    assert changed.code == 0, changed.stderr
    page.wait_for_url(re.compile(r"/login\?expired=1&next=%2Fchannel%2Ffs$"), timeout=20_000)
    expect(page.locator(".login .notice")).to_contain_text("Your session has ended")

    page.fill("#name", "pk-fs")
    page.fill("#password", "pk-fs new passphrase")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(pk.url + "/channel/fs")
    expect(page.locator("#f-text")).to_have_value(draft)
    expect(page.locator("#f-text")).to_be_focused()
    expect(page.locator("#f-precedence")).to_have_value("PRIORITY")
    assert page.evaluate("sessionStorage.getItem('detente-draft')") is None  # put back once, then gone
    page.click("#compose-form button.send")
    expect(page.locator("article.msg.dir-out").last).to_contain_text("Second line of the draft.")


def test_a_draft_too_large_to_send_is_kept_and_the_error_page_leads_back_to_it(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk = nodes["pk"]
    page = open_console(pk, "pk-lo-zahedan")  # pk-fs's password is changed above
    page.goto(pk.url + "/channel/liaison")
    # Pasted in past the field's limit (a script, or a browser that ignores maxlength): the form is
    # over what the node reads (256 KiB), so it answers 413 without reading it.
    page.locator("#f-text").fill("start of a long report")
    page.evaluate("document.querySelector('#f-text').value += ' ' + 'situation report line. '.repeat(14000)")
    typed = page.locator("#f-text").input_value()
    page.click("#compose-form button.send")
    expect(page.locator(".error-page .status-code")).to_have_text("413")
    back = page.locator(".error-page a.back-to-draft")
    expect(back).to_be_visible()
    assert back.get_attribute("href") == "/channel/liaison"
    back.click()
    page.wait_for_url(pk.url + "/channel/liaison")
    expect(page.locator("#f-text")).to_have_value(typed)  # put back, to be cut down and sent again
    assert page.evaluate("sessionStorage.getItem('detente-draft')") is None


def test_an_error_page_not_after_a_form_has_no_way_back_to_a_draft(nodes: Cluster, open_console: OpenConsole) -> None:
    page = open_console(nodes["pk"], "pk-lo-zahedan")
    page.goto(nodes["pk"].url + "/no/such/page")
    expect(page.locator(".error-page .status-code")).to_have_text("404")
    expect(page.locator(".error-page a.back-to-draft")).to_be_hidden()
