"""The console in a real browser with a backlog and with roles that do not send, against two real nodes of its own.

A FLASH arriving behind hundreds of waiting messages, compact rows and paging, the clock, statuses,
workflow buttons per role, the saved language at login, an ended session, an unknown address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import cast

import pytest
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from detente.store.tables import envelopes
from support import Cluster, NodeProc, running_cluster, wait_for

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
BACKLOG = 230  # more than the Now screen reads besides FLASH (screens.NOW_LIMIT) and a channel page holds


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two real nodes of this module's own: the backlog must not reach the other console tests."""
    with running_cluster(tmp_path_factory.mktemp("backlog")) as cluster:
        yield cluster


def received(node: NodeProc, channel: str) -> int:
    engine = node.engine()
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(envelopes.c.direction == "in", envelopes.c.channel == channel)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def send(node: NodeProc, operator: str, messages: list[dict[str, object]]) -> list[str]:
    """Send messages through the operator API, 100 a batch; return their ids."""
    ids: list[str] = []
    with node.client(operator) as client:
        for i in range(0, len(messages), 100):
            response = client.post("/api/v1/messages/batch", json={"messages": messages[i : i + 100]})
            assert response.status_code == 201, response.text
            ids += [m["id"] for m in response.json()["messages"]]
    return ids


def text_message(text: str, precedence: str = "ROUTINE") -> dict[str, object]:
    return {"channel": "fs", "to": "pk:fs", "precedence": precedence, "type": "hotline.text", "body": {"text": text}}


def test_a_flash_behind_a_backlog_arrives_live_in_full_and_the_rest_is_short_and_paged(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    send(ir, "ir-fs", [text_message(f"bulk {n}") for n in range(BACKLOG)])
    wait_for(lambda: received(pk, "fs") >= BACKLOG, 60, 0.2, "the backlog to reach pk")
    page = open_console(pk, "pk-fs")
    incoming = page.locator("section.incoming")
    expect(incoming.locator("h2 .count")).to_have_text(str(BACKLOG))
    expect(incoming.locator("article.msg")).to_have_count(50)
    expect(incoming.locator("li.row-in")).to_have_count(50)
    expect(incoming.locator("p.more")).to_contain_text(f"{BACKLOG - 100} more messages wait and are not listed here.")
    page.evaluate("window.__noReload = 'still here'")

    (flash_id,) = send(ir, "ir-fs", [text_message("THE NEWEST FLASH", "FLASH")])
    card = incoming.locator(f"#m-{flash_id}")
    expect(card).to_contain_text("THE NEWEST FLASH")
    expect(card.locator(".ack-form")).to_have_count(1)
    expect(page).to_have_title(re.compile(r"^⚠ FLASH \(1\)"))
    expect(page.locator("#flash-banner")).to_contain_text("1 message waits")
    assert page.evaluate("window.__noReload === 'still here'")

    # A short row leads to its message on its channel; the channel pages back to the oldest.
    row = incoming.locator("li.row-in a").last
    target = (row.get_attribute("href") or "").split("#m-")[1]
    row.click()
    expect(page.locator(f"#m-{target}")).to_be_focused()
    page.goto(pk.url + "/channel/fs")
    expect(page.locator("section.thread article.msg")).to_have_count(200)
    page.get_by_role("link", name="Show older messages").click()
    expect(page.locator("section.thread article.msg").first).to_contain_text("bulk 0")
    expect(page.get_by_role("link", name="Show older messages")).to_have_count(0)
    page.get_by_role("link", name="Show the newest messages").click()
    expect(page.locator("section.thread article.msg").last).to_contain_text("THE NEWEST FLASH")


def test_the_now_clock_keeps_time(nodes: Cluster, open_console: OpenConsole) -> None:
    page = open_console(nodes["pk"], "pk-lo-zahedan")
    utc = page.locator("[data-clock-utc] bdi")
    first = utc.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", first)
    expect(utc).not_to_have_text(first, timeout=5_000)
    expect(page.locator("[data-clock-dtg]")).to_have_text(re.compile(r"^\d{6}Z[A-Z]{3}\d{2}$"))


def test_a_status_sent_is_confirmed_and_shown_as_ours(nodes: Cluster, open_console: OpenConsole) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    page = open_console(pk, "pk-dgmo")
    # The first refresh after the stream connects replaces the live block (an open form with it): let it pass.
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    page.wait_for_timeout(1000)
    page.locator("details.status-form summary").click()
    page.select_option("#st-code", "AWAITING_AUTHORITY")
    page.fill("#st-note", "The minister decides within the hour.")
    page.locator("details.status-form button[type=submit]").click()
    expect(page.locator("p.notice")).to_have_text("Status sent to IR.")
    ours = page.locator("td.our-status")
    expect(ours).to_contain_text("awaiting authority")
    expect(ours).to_contain_text("The minister decides within the hour.")
    other = open_console(ir, "ir-dgmo")
    expect(other.locator("#strip")).to_contain_text("awaiting authority")


def test_workflow_buttons_are_offered_only_to_those_who_may_send(nodes: Cluster, open_console: OpenConsole) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    body = {"questions": ["Who fired on post 7?"]}
    request: dict[str, object] = {"channel": "dgmo", "to": "pk:dgmo", "precedence": "PRIORITY",
                                  "type": "clarification.request", "body": body}  # fmt: skip
    (asked,) = send(ir, "ir-dgmo", [request])
    wait_for(lambda: received(pk, "dgmo") >= 1, 30, 0.2, "the clarification request to reach pk")
    officer = open_console(pk, "pk-dgmo")
    expect(officer.locator("section.waiting .followups a")).not_to_have_count(0)
    officer.goto(pk.url + "/channel/dgmo")
    expect(officer.locator(f"#m-{asked} .followups a")).not_to_have_count(0)
    admin = open_console(pk, "pk-admin")  # every pk office, but an admin and an auditor
    expect(admin.locator("section.waiting li")).not_to_have_count(0)
    expect(admin.locator("section.waiting .followups a")).to_have_count(0)
    admin.goto(pk.url + "/channel/dgmo")
    expect(admin.locator(f"#m-{asked}")).to_be_visible()
    expect(admin.locator(f"#m-{asked} .followups a")).to_have_count(0)


def test_logging_in_keeps_the_saved_language(nodes: Cluster, open_console: OpenConsole) -> None:
    pk = nodes["pk"]
    first = open_console(pk, "pk-lo-zahedan", lang="ur")
    expect(first.locator("html")).to_have_attribute("lang", "ur")
    fresh = open_console(pk, None)  # a new workstation: English browser, the menu untouched
    expect(fresh.locator("#lang")).to_have_value("")
    fresh.fill("#name", "pk-lo-zahedan")
    fresh.fill("#password", "pk-lo-zahedan-demo")
    fresh.click(".login-form button[type=submit]")
    fresh.wait_for_url(pk.url + "/")
    expect(fresh.locator("html")).to_have_attribute("dir", "rtl")
    expect(fresh.locator("html")).to_have_attribute("lang", "ur")
    fresh.goto(pk.url + "/?lang=en")


def test_an_ended_session_and_an_unknown_address(nodes: Cluster, open_console: OpenConsole) -> None:
    pk = nodes["pk"]
    page = open_console(pk, "pk-supervisor")
    cookies = page.context.cookies()
    response = page.goto(pk.url + "/nonexistent")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator(".nav")).to_be_visible()
    page.locator("form[action='/logout'] button").click()
    page.wait_for_url(re.compile(r"/login\?bye=1$"))
    again = open_console(pk, None)
    again.context.add_cookies(cast(list[SetCookieParam], cookies))  # the cookie of the session that ended
    again.goto(pk.url + "/channel/dgmo")
    expect(again).to_have_url(re.compile(r"/login\?expired=1&next=/channel/dgmo$"))
    expect(again.locator("p.notice")).to_have_text("Your session has ended. Log in again.")
