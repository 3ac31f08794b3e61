"""The console with a backlog (one real node, rows written straight into its tables): FLASH never cut,
compact rows, channel paging; and login language, ended sessions, unknown addresses, statuses, error pages.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from console_support import csrf_of, login
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.store import messages as db
from detente.store.db import make_engine
from detente.store.tables import operators
from detente.web.console import data, screens
from detente.web.console.site import Console
from support import envelope_row

ROOT = Path(__file__).resolve().parents[3]
ROUTINE_IN, IMMEDIATE_IN, ROUTINE_OUT = 600, 30, 250
FLASH_ID = "01a20000-0000-7000-8000-999999999999"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _row(n: int, direction: str, precedence: str, deadline: str, **extra: Any) -> dict[str, Any]:
    inbound = direction == "in"
    created = format_time(now() - timedelta(hours=2))
    values: dict[str, Any] = dict(
        direction=direction, from_office="ir:dgmo" if inbound else "pk:dgmo",
        to_office="pk:dgmo" if inbound else "ir:dgmo", precedence=precedence, author="someone", created=created,
        raw=json.dumps({"body": {"text": f"backlog {n}"}, "refs": []}).encode(), log_index=100_000 + n,
        deadline=deadline, state="delivered" if inbound else "accepted", recorded_at=created,
    )  # fmt: skip
    return envelope_row(n, **{**values, **extra})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo whose pk node holds 600 overdue ROUTINE, 30 IMMEDIATE and one FLASH message waiting, and 250 sent."""
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    engine = make_engine(load_config(Path(info["nodes"]["pk"]["data"])).db)
    long_ago = "2024-01-01T00:00:00.000Z"  # the earliest deadlines: the old query kept these and lost the FLASH
    soon = format_time(now() + timedelta(minutes=10))
    later = format_time(now() + timedelta(minutes=30))
    try:
        with engine.begin() as conn:
            for n in range(1, ROUTINE_IN + 1):
                db.insert_envelope(conn, **_row(n, "in", "ROUTINE", long_ago, overdue_at=long_ago, state="overdue"))
            for n in range(ROUTINE_IN + 1, ROUTINE_IN + IMMEDIATE_IN + 1):
                db.insert_envelope(conn, **_row(n, "in", "IMMEDIATE", later))
            flash = _row(ROUTINE_IN + IMMEDIATE_IN + 1, "in", "FLASH", soon, id=FLASH_ID)
            db.insert_envelope(conn, **flash)
            for n in range(1, ROUTINE_OUT + 1):
                db.insert_envelope(conn, **_row(10_000 + n, "out", "ROUTINE", later))
    finally:
        engine.dispose()
    return info


def signed_in(client: TestClient, name: str, **extra: str) -> httpx.Response:
    response = login(client, name, **extra)
    assert response.status_code == 303, response.text[:1000]
    return response


def saved_lang(client: TestClient, name: str) -> str:
    console: Console = client.app.state.console  # type: ignore[attr-defined]
    found = console.node.read(lambda c: c.execute(select(operators.c.lang).where(operators.c.name == name)).scalar())
    return str(found)


def test_every_waiting_flash_is_listed_and_counted_however_many_others_wait(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    page = client.get("/")
    assert page.status_code == 200
    text = page.text
    total = ROUTINE_IN + IMMEDIATE_IN + 1
    assert f'id="m-{FLASH_ID}"' in text and 'data-flash-count="1"' in text
    assert "1 message waits for your acknowledgement" in text
    assert re.search(rf'id="h-in">[^<]*<span class="count">{total}</span>', text)
    # Full cards for FLASH, IMMEDIATE and the first FULL_CARDS; one-line rows for the rest of what was read.
    cards = len(re.findall(r'<article class="msg', text))
    assert cards == screens.FULL_CARDS and text.count('class="ack-form"') == cards
    read = 1 + screens.NOW_LIMIT
    assert text.count('<li class="row-in') == read - cards
    assert f"{total - read} more messages wait and are not listed here." in text and 'href="/?all=1"' in text
    # 822 KB before; about 6 KB more since each card's heading names it for a screen reader (precedence, sender).
    assert len(page.content) < 300_000 and len(client.get("/?fragment=1").content) < 270_000
    # The banner on every page lists it too.
    assert f'href="/#m-{FLASH_ID}"' in client.get("/strip").text
    assert f'href="/#m-{FLASH_ID}"' in client.get("/cases").text


def test_the_flash_outranks_older_deadlines_in_the_query_itself(client: TestClient) -> None:
    console: Console = client.app.state.console  # type: ignore[attr-defined]
    pending = console.node.read(lambda c: data.pending_in(c, ["pk:dgmo"], [], limit=5))
    precedences = [r["precedence"] for r in pending.rows]
    assert precedences == ["FLASH"] + ["IMMEDIATE"] * 5 and pending.more == ROUTINE_IN + IMMEDIATE_IN - 5
    flash = console.node.read(lambda c: data.pending_flash(c, ["pk:dgmo"], []))
    assert [r["id"] for r in flash] == [FLASH_ID]
    assert console.node.read(lambda c: data.pending_flash(c, ["pk:fs"], [])) == []


def test_show_all_lists_every_waiting_message_in_short(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    text = client.get("/?all=1").text
    assert text.count('<li class="row-in') == ROUTINE_IN + IMMEDIATE_IN + 1 - screens.FULL_CARDS
    assert "not listed here" not in text and 'data-live-url="/?all=1&amp;fragment=1"' in text


def test_sent_messages_are_cut_with_a_count(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    text = client.get("/").text
    assert re.search(rf'id="h-out">[^<]*<span class="count">{ROUTINE_OUT}</span>', text)
    assert text.count('class="row-out') == screens.NOW_LIMIT
    assert f"{ROUTINE_OUT - screens.NOW_LIMIT} more sent messages wait and are not listed here." in text


def test_a_compact_row_leads_to_its_message_on_an_older_page_of_its_channel(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    rows = re.findall(
        r'<li class="row-in[^"]*">.*?<a class="row-link" href="([^"]+)">([^<]*)<bdi class="snippet" dir="ltr">'
        r"([^<]*)</bdi></a>",
        client.get("/").text,
    )
    assert rows
    # Each row's link names its message by the start of its text, not only by its type.
    assert all(name == "Hotline message: " and text.startswith("backlog ") for _, name, text in rows)
    assert len({text for _, _, text in rows}) == len(rows)
    links = [href for href, _, _ in rows]
    path, anchor = links[-1].replace("&amp;", "&").split("#")
    page = client.get(path)
    assert page.status_code == 200 and f'id="{anchor}"' in page.text
    assert "Show the newest messages" in page.text


def test_the_channel_pages_back_to_its_oldest_message(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    seen: list[str] = []
    path = "/channel/dgmo"
    for _ in range(10):
        page = client.get(path)
        assert page.status_code == 200
        ids = re.findall(r'<article class="msg[^"]*" id="m-([^"]+)"', page.text)
        assert 0 < len(ids) <= data.THREAD_LIMIT and not set(ids) & set(seen)
        seen = ids + seen
        older = re.search(r'<a href="(/channel/dgmo\?before=\d+)">Show older messages</a>', page.text)
        if older is None:
            break
        assert "Older messages are not shown." in page.text
        path = older.group(1)
    assert len(seen) == ROUTINE_IN + IMMEDIATE_IN + 1 + ROUTINE_OUT
    assert "Show the newest messages" in page.text and "Older messages are not shown." not in page.text
    # The live refresh of an older page stays on it.
    assert f'data-live-url="{path}&amp;fragment=1"' in page.text
    bad = client.get("/channel/dgmo?before=x1")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert "before: expected the log index" in bad.text


def test_logging_in_keeps_the_saved_language_unless_another_is_chosen(client: TestClient) -> None:
    signed_in(client, "pk-fs", lang="ur")
    assert saved_lang(client, "pk-fs") == "ur"
    client.cookies.clear()
    form = client.get("/login")  # the browser's language is English; the menu defaults to the saved one
    assert re.search(r'<option value="" selected>My saved language</option>', form.text)
    signed_in(client, "pk-fs", lang="")
    assert '<html lang="ur" dir="rtl" data-theme=' in client.get("/").text and saved_lang(client, "pk-fs") == "ur"
    client.cookies.clear()
    chosen = client.get("/login?lang=fa")  # a language link on the login page is a choice
    assert re.search(r'<option value="fa" lang="fa" selected>', chosen.text)
    signed_in(client, "pk-fs", lang="fa")
    assert saved_lang(client, "pk-fs") == "fa"
    client.get("/?lang=en")
    assert saved_lang(client, "pk-fs") == "en"


def test_a_session_that_ended_leads_to_the_login_page_saying_so(client: TestClient) -> None:
    signed_in(client, "pk-fs")
    copied = client.cookies.get("__Host-detente-pk") or ""
    token = csrf_of(client.get("/"))
    client.post("/logout", data={"csrf": token}, follow_redirects=False)
    client.cookies.set("__Host-detente-pk", copied)
    response = client.get("/channel/fs", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?expired=1&next=/channel/fs"
    assert "Your session has ended. Log in again." in client.get(response.headers["location"]).text
    # A live refresh that finds the session ended leads back to its page, not to the fragment it asked for.
    for fragment, page in (("/channel/fs?fragment=1", "/channel/fs"), ("/?all=1&fragment=1", "/%3Fall%3D1"),
                           ("/strip", "/")):  # fmt: skip
        location = client.get(fragment, follow_redirects=False).headers["location"]
        assert location == f"/login?expired=1&next={page}", fragment
    client.cookies.set("__Host-detente-pk", "not.a-session")
    assert "expired=1" in client.get("/", follow_redirects=False).headers["location"]


@pytest.mark.parametrize("path", ["/nonexistent", "/channel/", "/case/a/b"])
def test_an_unknown_address_is_the_consoles_404_page(client: TestClient, path: str) -> None:
    signed_in(client, "pk-dgmo")
    page = client.get(path, headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<h1 id="h-error">Not found</h1>' in page.text and 'class="nav"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    client.cookies.clear()
    signed_out = client.get(path, headers=HTML)
    assert signed_out.status_code == 404 and 'href="/login"' in signed_out.text


def test_unknown_api_addresses_and_programs_still_get_json(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    for path, headers in (("/api/v1/nonexistent", HTML), ("/federation/v1/nonexistent", HTML),
                          ("/nonexistent", {"Accept": "application/json"}), ("/static/none.css", HTML)):  # fmt: skip
        response = client.get(path, headers=headers)
        assert response.status_code == 404 and response.headers["content-type"] == "application/json", path
        assert response.json()["error"] == "NotFound"
    wrong_method = client.get("/logout", headers=HTML)
    assert wrong_method.status_code == 405 and "Not available here" in wrong_method.text


def test_a_status_sent_is_confirmed_and_shown_as_ours(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    token = csrf_of(client.get("/"))
    form = {"csrf": token, "peer": "ir", "office": "pk:dgmo", "code": "AWAITING_AUTHORITY", "note": "<b>minister</b>"}
    sent = client.post("/status", data=form, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/?status_sent=ir"
    page = client.get(sent.headers["location"]).text
    # No peer runs here: the link is DOWN, and the confirmation says that the status waits for it.
    assert (
        '<p class="notice link-waits" role="status">Status sent to IR. The link to IR is DOWN: it is queued and '
        "goes when IR answers.</p>"
    ) in page
    ours = re.search(r'<td class="our-status">(.*?)</td>', page, re.S)
    assert ours and "awaiting authority" in ours.group(1) and "&lt;b&gt;minister&lt;/b&gt;" in ours.group(1)
    assert "pk:dgmo" in ours.group(1)
    assert "Status sent" not in client.get("/?status_sent=%3Cscript%3E").text  # only a peer's name is echoed
    assert "Status sent to IR." in client.get("/?status_sent=ir,%3Cscript%3E").text  # and only theirs
    assert 'value="*"' not in page  # "every peer" only where there are several (a group of states)


def test_workflow_buttons_are_only_for_those_who_may_send(client: TestClient) -> None:
    signed_in(client, "pk-fs")
    token = csrf_of(client.get("/channel/fs?type=case.open"))
    form = {"csrf": token, "type": "case.open", "precedence": "PRIORITY", "b.title": "Buttons test"}
    sent = client.post("/channel/fs/send", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:3000]
    case_id = sent.headers["location"].rsplit("#m-", 1)[1]
    card = re.compile(rf'id="m-{case_id}".*?</article>', re.S)
    own = card.search(client.get("/channel/fs").text)
    assert own and 'class="followups"' in own.group(0)
    client.cookies.clear()
    signed_in(client, "pk-admin")  # bound to every pk office, but an admin and auditor: no sending role
    other = card.search(client.get("/channel/fs").text)
    assert other and 'class="followups"' not in other.group(0)


def test_the_now_heading_carries_a_clock_the_script_keeps_current(client: TestClient) -> None:
    signed_in(client, "pk-dgmo")
    text = client.get("/").text
    assert re.search(r'<small class="when now-clock" data-clock data-offset="300">', text)
    assert re.search(r"data-clock-utc><bdi>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ</bdi>", text)


def test_templates_are_read_once(client: TestClient) -> None:
    console: Console = client.app.state.console  # type: ignore[attr-defined]
    assert console.env.auto_reload is False


def test_an_error_page_that_cannot_show_the_strip_is_shown_without_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(client, "pk-dgmo")

    async def broken(self: Console, viewer: Any) -> dict[str, Any]:
        raise RuntimeError("the strip's template needs what this code lacks")

    monkeypatch.setattr(Console, "strip", broken)
    page = client.get("/cases")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in page.text and 'id="strip"' not in page.text
    assert "the node could not show this page" in page.text and "Traceback" not in page.text


def test_an_error_page_whose_templates_fail_is_a_bare_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    signed_in(client, "pk-dgmo", lang="ur")

    def broken(self: Console, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("every template fails")

    monkeypatch.setattr(Console, "render", broken)
    page = client.get("/cases")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="ur" dir="rtl">' in page.text and '<a href="/">' in page.text
    # The bare page is in the operator's language too: "the node could not show this page; ...".
    assert "نوڈ یہ صفحہ نہیں دکھا سکا" in page.text and "RuntimeError" not in page.text
    monkeypatch.undo()
    client.get("/?lang=en")
