"""Live pages in real Chromium against two real nodes of this module's own: countdowns in the node's time,
refreshes that keep the operator's place and open forms, forms kept across the end of a session,
FLASH notices that say why they came, j/k through short rows, and a link that goes DOWN.

The tests run in this order and share the nodes: passwords change (pk-fs, pk-supervisor) and the
last test stops ir for a while.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from cli_support import detente
from support import Cluster, NodeProc, running_cluster, wait_for

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
SHIFT_MS = -240_000  # this browser's clock, 4 minutes behind the nodes'
SHIFTED_CLOCK = f"""
(() => {{
  const Real = Date, shift = {SHIFT_MS};
  class Shifted extends Real {{
    constructor(...args) {{ if (args.length) {{ super(...args); }} else {{ super(Real.now() + shift); }} }}
    static now() {{ return Real.now() + shift; }}
  }}
  window.Date = Shifted;
}})();
"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("live")) as cluster:
        yield cluster


def send(node: NodeProc, operator: str, channel: str, to: str, text: str, precedence: str = "ROUTINE") -> str:
    request = {"channel": channel, "to": to, "precedence": precedence, "type": "hotline.text", "body": {"text": text}}
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def live(page: Page) -> Page:
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    page.wait_for_timeout(1000)  # the refresh the page makes when its stream opens is over
    return page


def silence_stream(page: Page) -> list[WebSocketRoute]:
    """Keep the page's stream open but silent from now on: no event reaches the page."""
    silent: list[WebSocketRoute] = []

    def hold(ws: WebSocketRoute) -> None:
        silent.append(ws)  # open to the page, never connected to the node

    page.route_web_socket(re.compile(r"/api/v1/stream$"), hold)
    return silent


def new_password(node: NodeProc, name: str, password: str) -> None:
    changed = detente("user", "passwd", "--data", str(node.data), "--name", name, "--password-stdin",
                      stdin=password.encode() + b"\n")  # fmt: skip
    assert changed.code == 0, changed.stderr


def active(page: Page, script: str) -> Any:
    """Evaluate `script` with `el` bound to the focused element."""
    return page.evaluate(f"(() => {{ const el = document.activeElement; return {script}; }})()")


def test_countdowns_and_the_clock_follow_the_nodes_time_not_the_browsers(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = open_console(pk, "pk-dgmo")
    page.context.add_init_script(SHIFTED_CLOCK)
    page.reload()
    live(page)
    behind = page.evaluate("Date.now()") - time.time() * 1000
    assert abs(behind - SHIFT_MS) < 5_000  # the browser's clock is 4 minutes behind: the test can fail

    fresh = send(ir, "ir-dgmo", "dgmo", "pk:dgmo", "A FLASH with ten minutes to answer.", "FLASH")
    countdown = page.locator(f"section.incoming #m-{fresh} .countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+:\d\d left$"))
    minutes, seconds = map(int, countdown.inner_text().removesuffix(" left").split(":"))
    assert 9 * 60 <= minutes * 60 + seconds <= 10 * 60  # not 14 minutes, as the browser's clock would say
    shown = page.locator("[data-clock-utc]").get_attribute("datetime") or ""
    assert abs(datetime.fromisoformat(shown.replace("Z", "+00:00")).timestamp() - time.time()) < 30

    # Overdue on the node (2 s on the liaison channel), it escalates to pk:dgmo: late at once, and the
    # notice says it falls to this operator as the alternate.
    late = send(ir, "ir-lo-turbat", "liaison", "pk:lo-zahedan", "A FLASH nobody at Zahedan answers.", "FLASH")
    overdue = page.locator(f"section.incoming #m-{late} .countdown")
    expect(overdue).to_have_text(re.compile(r"^overdue by \d+:\d\d$"), timeout=30_000)
    expect(overdue).to_have_class(re.compile(r"\blate\b"))
    expect(page.locator("#flash-banner a[data-alternate]")).to_have_attribute("href", f"/#m-{late}")
    notice = page.locator("#toasts .toast.flash", has_text="ir:lo-turbat")
    expect(notice).to_have_text(
        "FLASH from ir:lo-turbat to pk:lo-zahedan is overdue and falls to you as the alternate: Hotline message"
    )


def test_a_live_refresh_keeps_the_focus_and_waits_for_an_open_form(nodes: Cluster, open_console: OpenConsole) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = live(open_console(pk, "pk-dgmo"))
    first = send(ir, "ir-dgmo", "dgmo", "pk:dgmo", "Refresh one.")
    card = page.locator(f"section.incoming #m-{first}")
    expect(card).to_be_visible()

    # A refresh while the focus is on a button, then on "Decline…": the focus stays where it was.
    controls = (("button[data-action=ack]", "Refresh two."), ("summary[data-action=decline]", "Refresh three."))
    for control, then in controls:
        card.locator(control).focus()
        page.evaluate("document.querySelector('#live .now-grid').dataset.before = 'yes'")
        send(ir, "ir-dgmo", "dgmo", "pk:dgmo", then)
        expect(page.locator("section.incoming article.msg", has_text=then)).to_be_visible()
        assert page.evaluate("document.querySelector('#live .now-grid').dataset.before") is None  # it was replaced
        assert active(page, f"el.closest('article')?.id === 'm-{first}' && el.matches('{control}')")

    # The status form, open with a note typed and the focus on its button: the refresh waits for it.
    page.locator("#status-box summary").click()
    page.select_option("#st-code", "BUSY")
    page.fill("#st-note", "typed status note")
    page.keyboard.press("Tab")
    assert active(page, "el.matches('#status-box button[type=submit]')")
    toasts = page.locator("#toasts .toast").count()
    send(ir, "ir-dgmo", "dgmo", "pk:dgmo", "Refresh four.")
    wait_for(lambda: page.locator("#toasts .toast").count() > toasts, 20, 0.2, "the message's notice")
    page.wait_for_timeout(1500)  # what a refresh would have done by now
    expect(page.locator("#status-box")).to_have_attribute("open", "")
    expect(page.locator("#st-note")).to_have_value("typed status note")
    expect(page.locator("#st-code")).to_have_value("BUSY")
    assert active(page, "el.matches('#status-box button[type=submit]')")
    expect(page.locator("section.incoming article.msg", has_text="Refresh four.")).to_have_count(0)
    page.locator("#status-box summary").click()  # closed: what waited comes now
    expect(page.locator("section.incoming article.msg", has_text="Refresh four.")).to_be_visible()


def test_j_and_k_move_through_the_short_rows_too_and_each_row_names_its_message(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    message = {"channel": "liaison", "to": "pk:lo-zahedan", "precedence": "ROUTINE", "type": "hotline.text"}
    batch = [{**message, "body": {"text": f"Row {n}: the patrol reports nothing new at post {n}."}} for n in range(55)]
    with ir.client("ir-lo-turbat") as client:
        assert client.post("/api/v1/messages/batch", json={"messages": batch}).status_code == 201
    page = open_console(pk, "pk-lo-zahedan")
    incoming = page.locator("section.incoming")  # live: the rows come as the messages arrive
    wait_for(lambda: incoming.locator("li.row-in").count() >= 5, 60, 0.5, "the short rows")
    links = incoming.locator("li.row-in a.row-link")
    names = links.all_inner_texts()
    assert len(set(names)) == len(names) and all(re.match(r"^Hotline message: Row \d+: the patrol", n) for n in names)
    incoming.locator("article.msg").last.focus()
    page.keyboard.press("j")
    expect(links.first).to_be_focused()
    page.keyboard.press("j")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(incoming.locator("article.msg").last).to_be_focused()


def test_two_flash_messages_sent_while_the_stream_was_down_are_announced_as_two_new(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = open_console(pk, "pk-fs")
    cut: dict[str, Any] = {"down": True, "silent": []}

    def stream(ws: WebSocketRoute) -> None:
        if cut["down"]:
            cut["silent"].append(ws)
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/api/v1/stream$"), stream)
    page.reload()
    page.wait_for_timeout(1000)  # the refresh the page makes when its stream opens is over
    before = int(page.locator("#strip .strip-inner").get_attribute("data-flash-count") or "0")
    for n in (1, 2):
        send(ir, "ir-fs", "fs", "pk:fs", f"FLASH {n} during the outage.", "FLASH")
    page.wait_for_timeout(1000)
    assert page.locator("#toasts .toast.flash").count() == 0
    cut["down"] = False
    for ws in cut["silent"]:
        ws.close(code=1011, reason="outage over")
    expect(page.locator("#strip .strip-inner")).to_have_attribute("data-flash-count", str(before + 2))
    notice = page.locator("#toasts .toast.flash")
    expect(notice).to_have_text(f"2 new FLASH messages; {before + 2} wait for your acknowledgement.")
    page.wait_for_timeout(2000)
    assert notice.count() == 1


def test_a_form_sent_after_the_session_ended_comes_back_after_a_mistyped_password(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk = nodes["pk"]
    page = open_console(pk, "pk-fs")
    silence_stream(page)  # the page does not learn that the session ended before the form is sent
    page.goto(pk.url + "/channel/fs")
    draft = "Sent after the session ended.\nIt must not be lost."
    page.fill("#f-text", draft)
    page.select_option("#f-precedence", "PRIORITY")
    new_password(pk, "pk-fs", "pk-fs second passphrase")
    page.click("#compose-form button.send")
    page.wait_for_url(re.compile(r"/login\?expired=1&next=/channel/fs$"))  # the form's page, not its POST
    kept = json.loads(page.evaluate("sessionStorage.getItem('detente-draft')") or "null")
    assert kept and kept["path"] == "/channel/fs" and kept["sent"] is False
    assert ["b.text", draft] in kept["forms"][0]["values"]

    page.fill("#name", "pk-fs")
    page.fill("#password", "not the password")
    page.click(".login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong name or password.")
    expect(page.locator(".login .notice")).to_have_text("Your session has ended. Log in again.")
    expect(page.locator(".login-form input[name=next]")).to_have_value("/channel/fs")
    page.fill("#password", "pk-fs second passphrase")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(pk.url + "/channel/fs")
    expect(page.locator("#f-text")).to_have_value(draft)
    expect(page.locator("#f-precedence")).to_have_value("PRIORITY")
    expect(page.locator("#f-text")).to_be_focused()
    expect(page.locator("section.thread")).not_to_contain_text("It must not be lost.")  # nothing was sent
    assert page.evaluate("sessionStorage.getItem('detente-draft')") is None
    page.click("#compose-form button.send")
    expect(page.locator("article.msg.dir-out").last).to_contain_text("It must not be lost.")
    assert page.evaluate("sessionStorage.getItem('detente-draft')") is None  # it reached the node: gone


def test_the_status_note_is_kept_when_the_session_ends(nodes: Cluster, open_console: OpenConsole) -> None:
    pk = nodes["pk"]
    page = live(open_console(pk, "pk-supervisor"))
    page.locator("#status-box summary").click()
    page.select_option("#st-code", "TECH")
    page.fill("#st-note", "STATUS NOTE DRAFT")
    new_password(pk, "pk-supervisor", "pk-supervisor second passphrase")
    page.wait_for_url(re.compile(r"/login\?expired=1&next=%2F$"), timeout=20_000)
    page.fill("#name", "pk-supervisor")
    page.fill("#password", "pk-supervisor second passphrase")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(pk.url + "/")
    expect(page.locator("#status-box")).to_have_attribute("open", "")
    expect(page.locator("#st-note")).to_have_value("STATUS NOTE DRAFT")
    expect(page.locator("#st-code")).to_have_value("TECH")
    live(page)  # the refresh after the stream opens leaves the form as it is
    expect(page.locator("#st-note")).to_have_value("STATUS NOTE DRAFT")


def test_a_link_that_goes_down_is_shown_in_the_pages_language_and_without_events(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    urdu = live(open_console(pk, "pk-admin", lang="ur"))
    officer = live(open_console(pk, "pk-dgmo"))
    quiet = open_console(pk, "pk-lo-zahedan")
    silence_stream(quiet)
    quiet.clock.install()  # its timers run in real time until the test moves them on
    quiet.reload()
    expect(quiet.locator("#strip .pill.link-up")).to_be_visible()
    quiet.evaluate("window.__noReload = 'still here'")
    ir.stop()
    try:
        # The notices name the state as the strip does, in Urdu; never the raw DOWN.
        expect(urdu.locator("#toasts")).to_contain_text("منقطع", timeout=30_000)
        said = urdu.locator("#toasts").inner_text()
        assert "DOWN" not in said and "DEGRADED" not in said

        expect(officer.locator("#strip .pill.link-down")).to_be_visible()
        row = officer.locator("section.links-panel tbody tr")
        expect(row.locator("td.rtt")).to_have_text("—")
        expect(row.locator("td.last-error")).not_to_have_text("—")
        officer.locator("#status-box summary").click()
        officer.select_option("#st-code", "TECH")
        officer.locator("#status-box button[type=submit]").click()
        expect(officer.locator("p.notice")).to_have_text(
            "Status sent to IR. The link to IR is DOWN: it is queued and goes when IR answers."
        )

        # No event reaches this page: it reads the strip again on its own every 20 s, which the
        # page's clock is moved on by rather than waited for.
        quiet.clock.fast_forward(20_000)
        expect(quiet.locator("#strip .pill.link-down")).to_be_visible()
        assert quiet.evaluate("window.__noReload === 'still here'")
    finally:
        ir.start()
