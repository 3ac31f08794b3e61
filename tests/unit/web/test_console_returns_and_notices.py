"""The console in process: where a form posted after its session ended leads, what a failed login keeps,
what the confirmations say of a link that is not UP, the links' last error, the node's time on every
page, headings for readers, translated error details, plain limits and field names, and paging newer.
"""

from __future__ import annotations

import gettext
import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.core import notifications
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.node.linkstate import contact_job
from detente.store import messages as db
from detente.store.db import make_engine
from detente.web import limits
from detente.web.console import form_errors, forms, i18n, present, site
from detente.web.console.i18n import Locale
from support import envelope_row

ROOT = Path(__file__).resolve().parents[3]
HTML = {"Accept": "text/html,application/xhtml+xml"}
COOKIE = "__Host-detente-pk"
LIAISON = 450  # more than two pages of a thread (data.THREAD_LIMIT)
OVERDUE_FLASH = "01a20000-0000-7000-8000-900000000001"  # to pk:dgmo, overdue
ESCALATED_FLASH = "01a20000-0000-7000-8000-900000000002"  # to pk:lo-zahedan, overdue: pk:dgmo is its alternate


def _row(n: int, channel: str, to: str, precedence: str, text: str, **extra: Any) -> dict[str, Any]:
    created = format_time(now() - timedelta(hours=1))
    frm = {"pk:dgmo": "ir:dgmo", "pk:lo-zahedan": "ir:lo-turbat"}[to]
    values: dict[str, Any] = dict(
        direction="in", channel=channel, from_office=frm, to_office=to, precedence=precedence, author="someone",
        created=created, raw=json.dumps({"body": {"text": text}, "refs": []}).encode(), log_index=200_000 + n,
        needs_ack=False, deadline=None, state="delivered", recorded_at=created,
    )  # fmt: skip
    return envelope_row(n, **{**values, **extra})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo whose pk node holds 450 liaison messages and two overdue FLASH messages, one for an alternate."""
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    engine = make_engine(load_config(Path(info["nodes"]["pk"]["data"])).db)
    past = format_time(now() - timedelta(minutes=5))
    try:
        with engine.begin() as conn:
            for n in range(1, LIAISON + 1):
                db.insert_envelope(conn, **_row(n, "liaison", "pk:lo-zahedan", "ROUTINE", f"liaison {n}"))
            for n, (to, channel, message_id) in enumerate(
                (("pk:dgmo", "dgmo", OVERDUE_FLASH), ("pk:lo-zahedan", "liaison", ESCALATED_FLASH)), LIAISON + 1
            ):
                flash = _row(n, channel, to, "FLASH", "Overdue FLASH", id=message_id, needs_ack=True, deadline=past,
                             overdue_at=past, state="overdue")  # fmt: skip
                db.insert_envelope(conn, **flash)
    finally:
        engine.dispose()
    return info


def contact(demo: dict[str, Any], ok: bool, **values: Any) -> None:
    """Record one contact attempt with ir in the node's tables, as a delivery or a link test would."""
    engine = make_engine(load_config(Path(demo["nodes"]["pk"]["data"])).db)
    try:
        with engine.begin() as conn:
            contact_job("ir", ok, test=True, **values)(conn)
    finally:
        engine.dispose()


def ended_session(client: TestClient, name: str = "pk-dgmo") -> str:
    """Log in, log out, and put the ended session's cookie back; return the CSRF token of that session."""
    assert login(client, name).status_code == 303
    copied = client.cookies.get(COOKIE) or ""
    token = csrf_of(client.get("/"))
    client.post("/logout", data={"csrf": token}, follow_redirects=False)
    client.cookies.set(COOKIE, copied)
    return token


def next_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:500]
    location = response.headers["location"]
    assert location.startswith("/login?expired=1&next="), location
    return location.removeprefix("/login?expired=1&next=")


# -- a form posted after its session ended ------------------------------------------------------------


def test_a_form_posted_after_the_session_ended_leads_back_to_its_page_not_to_the_post(client: TestClient) -> None:
    token = ended_session(client)
    form = {"csrf": token, "type": "hotline.text", "precedence": "ROUTINE", "b.text": "typed before the end"}
    referer = {"Referer": "https://testserver/channel/dgmo?before=200100&sent=x1"}
    assert next_of(client.post("/channel/dgmo/send", data=form, headers=referer, follow_redirects=False)) == (
        "/channel/dgmo%3Fbefore%3D200100"  # the page, without the notice of what was sent before
    )
    # A compose form sent back with its errors stands at the POST's address: its page is the channel.
    again = {"Referer": "https://testserver/channel/dgmo/send"}
    assert next_of(client.post("/channel/dgmo/send", data=form, headers=again, follow_redirects=False)) == (
        "/channel/dgmo"
    )
    # Without a Referer (or with another site's): the form's `next`, else the page its address belongs to.
    foreign = {"Referer": "https://evil.example/channel/dgmo"}
    assert next_of(client.post("/channel/dgmo/send", data=form, headers=foreign, follow_redirects=False)) == (
        "/channel/dgmo"
    )
    answer = {"csrf": token, "next": f"/channel/dgmo#m-{OVERDUE_FLASH}"}
    ack = client.post(f"/messages/{OVERDUE_FLASH}/ack", data=answer, follow_redirects=False)
    assert next_of(ack) == f"/channel/dgmo%23m-{OVERDUE_FLASH}"
    status = {"csrf": token, "peer": "ir", "code": "BUSY", "note": "typed"}
    assert next_of(client.post("/status", data=status, follow_redirects=False)) == "/"
    from_now = {"Referer": "https://testserver/?all=1&status_sent=ir"}
    assert next_of(client.post("/status", data=status, headers=from_now, follow_redirects=False)) == "/%3Fall%3D1"
    # Nothing was sent, and logging in leads to the page, never to an address that only takes a POST.
    back = login(client, "pk-dgmo", next="/channel/dgmo")
    assert back.headers["location"] == "/channel/dgmo" and client.get("/channel/dgmo").status_code == 200
    assert "typed before the end" not in client.get("/channel/dgmo").text


def test_a_mistyped_password_keeps_the_page_to_go_back_to_and_the_session_ended_notice(client: TestClient) -> None:
    page = client.get("/login?expired=1&next=/channel/dgmo")
    assert '<input type="hidden" name="expired" value="1">' in page.text
    token = csrf_of(page)
    form = {"csrf": token, "name": "pk-dgmo", "next": "/channel/dgmo", "expired": "1"}
    wrong = client.post("/login", data={**form, "password": "not it"}, follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    assert '<input type="hidden" name="next" value="/channel/dgmo">' in wrong.text
    assert "Your session has ended. Log in again." in wrong.text and 'name="expired" value="1"' in wrong.text
    forged = client.post("/login", data={**form, "csrf": "stale", "password": "x"}, follow_redirects=False)
    assert forged.status_code == 403 and 'name="next" value="/channel/dgmo"' in forged.text
    plain = client.post("/login", data={**form, "expired": "", "password": "not it"}, follow_redirects=False)
    assert "Your session has ended" not in plain.text  # said only when it had ended
    right = client.post("/login", data={**form, "password": "pk-dgmo-demo"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/channel/dgmo"


# -- links: confirmations, round trip, last error ---------------------------------------------------------


def test_confirmations_say_when_the_link_is_not_up_and_the_links_show_the_last_error(
    client: TestClient, demo: dict[str, Any]
) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/channel/dgmo"))
    form = {"csrf": token, "type": "hotline.text", "precedence": "ROUTINE", "b.text": "over a link that is down"}
    sent = client.post("/channel/dgmo/send", data=form, follow_redirects=False)
    assert sent.status_code == 303
    waits = "The link to IR is DOWN: it is queued and goes when IR answers."
    notice = re.search(r'<p class="notice[^"]*" role="status">([^<]*)</p>', client.get(sent.headers["location"]).text)
    assert notice and notice.group(1) == f"Sent. The message is in our log and queued for delivery. {waits}"

    contact(demo, True, rtt_ms=5.0, clock_offset_ms=0.0)
    page = client.get(sent.headers["location"]).text
    assert "Sent. The message is in our log and queued for delivery.</p>" in page and waits not in page
    now_page = client.get("/?status_sent=ir").text
    assert '<td class="rtt"><bdi>5 ms</bdi></td>' in now_page and '<td class="last-error">—</td>' in now_page
    assert "Status sent to IR.</p>" in now_page

    for _ in range(3):  # DOWN after three failures in a row
        contact(demo, False, error="cannot reach ir: <connection refused>")
    now_page = client.get("/?status_sent=ir").text
    assert '<td class="rtt">—</td>' in now_page  # no round trip while it is down, not the last one's
    said = '<bdi dir="ltr" lang="en">cannot reach ir: &lt;connection refused&gt;</bdi>'  # the node's English, inert
    assert f'<td class="last-error">{said}</td>' in now_page
    assert f"Status sent to IR. {waits}</p>" in now_page
    assert '<th scope="col">Last error</th>' in now_page


# -- the node's time, overdue countdowns, the FLASH banner ------------------------------------------------


def test_pages_and_the_strip_carry_the_nodes_time_and_overdue_countdowns_stay_late(client: TestClient) -> None:
    login(client, "pk-dgmo")
    before = now().timestamp() * 1000
    page = client.get("/").text
    after = now().timestamp() * 1000
    stamp = re.search(r'<body [^>]*data-now="(\d+)"', page)
    assert stamp and before - 1 <= int(stamp.group(1)) <= after + 1
    strip = client.get("/strip").text
    assert re.search(r'<div class="strip-inner" data-flash-count="2" data-now="\d+">', strip)
    countdown = re.search(rf'id="m-{OVERDUE_FLASH}".*?<span (class="countdown[^"]*"[^>]*)>', page, re.S)
    assert countdown and 'class="countdown late"' in countdown.group(1) and "data-overdue" in countdown.group(1)
    # In the banner, the FLASH that waits for this operator only as the alternate says so (the notice words it).
    own = re.search(rf'<a href="/#m-{OVERDUE_FLASH}"([^>]*)>', strip)
    escalated = re.search(rf'<a href="/#m-{ESCALATED_FLASH}"([^>]*)>', strip)
    assert own and own.group(1) == ' data-to="pk:dgmo"'
    assert escalated and escalated.group(1) == ' data-to="pk:lo-zahedan" data-alternate'


def test_readers_are_not_told_that_messages_wait_for_their_acknowledgement(client: TestClient) -> None:
    login(client, "pk-admin")  # admin and auditor: reads everything, acknowledges nothing
    page = client.get("/").text
    assert re.search(r'<h2 id="h-in">Waiting for an acknowledgement <span class="count">2</span>', page)
    assert "Waiting for your acknowledgement" not in page
    client.cookies.clear()
    login(client, "pk-dgmo")
    page = client.get("/").text
    assert re.search(r'<h2 id="h-in">Waiting for your acknowledgement <span class="count">2</span>', page)


# -- languages: link states, error details ------------------------------------------------------------


def test_the_link_states_of_live_notices_come_in_the_pages_language(client: TestClient) -> None:
    login(client, "pk-fs", lang="ur")
    found = re.search(r"data-states='([^']*)'", client.get("/").text)
    assert found
    states = json.loads(html.unescape(found.group(1)))
    assert states == {k: Locale("ur").gettext(k) for k in ("UP", "DEGRADED", "DOWN")} and states["DOWN"] == "منقطع"
    client.get("/?lang=en")


class Marked(gettext.NullTranslations):
    """A catalog that marks every message it translates."""

    def gettext(self, message: str) -> str:
        return f"«{message}»"


def test_the_fixed_details_of_the_consoles_error_pages_are_translated(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert limits.FORM_TOO_LARGE in site.FIXED_DETAILS  # the words limits.py says are the ones translated
    monkeypatch.setattr(i18n, "catalog", lambda lang: Marked() if lang == "ur" else gettext.NullTranslations())

    def detail(response: httpx.Response) -> str:
        found = re.search(r'<p class="detail">(?:<bdi dir="ltr" lang="en">)?([^<]*)(?:</bdi>)?</p>', response.text)
        assert found, response.text[:1000]
        return html.unescape(found.group(1))

    missing = client.get("/nonexistent?lang=ur", headers=HTML)
    assert missing.status_code == 404 and detail(missing) == "«there is no page at this address»"
    wrong_method = client.get("/logout?lang=ur", headers=HTML)
    assert wrong_method.status_code == 405
    assert detail(wrong_method) == "«this address does not answer this kind of request»"
    slash = client.get("/case/a%2Fb?lang=ur")
    assert slash.status_code == 400 and detail(slash) == "«this address holds an encoded '/' (%2F): no page has one»"
    big = client.post("/channel/dgmo/send?lang=ur", data={"b.text": "x" * (limits.MAX_BODY + 1)})
    assert big.status_code == 413 and detail(big) == f"«{limits.FORM_TOO_LARGE}»"
    login(client, "pk-dgmo", lang="ur")
    node_said = client.get("/channel/nope")  # the node's own message: English, as documented
    assert node_said.status_code == 404 and detail(node_said) == "no channel 'nope' in the agreement"
    # English in an Urdu page: a left-to-right isolate (its full stop, if any, stays at its end); a fixed one is not.
    english = '<bdi dir="ltr" lang="en">no channel &#39;nope&#39; in the agreement</bdi>'
    assert f'<p class="detail">{english}</p>' in node_said.text
    assert '<p class="detail">«there is no page at this address»</p>' in missing.text
    bare = site.bare_error_page(Locale("ur"), 404, "t", "no channel 'nope'", node_said=True)  # the templates failed
    assert '<p><bdi dir="ltr" lang="en">no channel &#39;nope&#39;</bdi></p>' in bare
    monkeypatch.undo()
    client.get("/?lang=en")


# -- forms: limits and field names ----------------------------------------------------------------------


def test_number_limits_are_written_plainly_and_fields_are_named_as_the_form_names_them(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/channel/dgmo?type=incident.report").text
    assert '<small class="range"><bdi>0 … 1000000</bdi></small>' in page and "e+" not in page
    numbers = [form_errors.plain_number(x) for x in (1e6, 0.0, -90.0, 0.5, 1e-3)]
    assert numbers == ["1000000", "0", "-90", "0.5", "0.001"]
    fields = forms.fields_for(notifications.CATALOG["operation.prenotify"].json_schema())
    placed, _ = form_errors.explain_errors(fields, {"respond_by": "must not be after window.start"}, {})
    assert placed == {"respond_by": "Respond by must not be after Window · Start."}
    placed, _ = form_errors.explain_errors(fields, {"body.window": "window.end is before window.start"}, {})
    assert placed == {"window": "Window: Window · End is before Window · Start."}
    placed, _ = form_errors.explain_errors(fields, {"objective": "see window.nowhere and e.g. this"}, {})
    assert placed == {"objective": "Objective: see window.nowhere and e.g. this."}  # only the form's paths


def test_a_short_row_says_the_start_of_its_text() -> None:
    assert present.snippet("  one\n two  ") == "one two"
    long = "word " * 80
    cut = present.snippet(long)
    assert cut.endswith("…") and len(cut) <= present.SNIPPET + 1 and not cut[:-1].endswith(" ")
    assert present.snippet("x" * 300) == "x" * present.SNIPPET + "…"


# -- channel paging -------------------------------------------------------------------------------------


def ids_on(page: httpx.Response) -> list[str]:
    return re.findall(r'<article class="msg[^"]*" id="m-([^"]+)"', page.text)


def test_an_older_page_of_a_channel_offers_the_next_newer_page(client: TestClient) -> None:
    login(client, "pk-lo-zahedan")
    newest = client.get("/channel/liaison")
    older = re.compile(r'<a href="(/channel/liaison\?before=\d+)">Show older messages</a>')
    newer = re.compile(r'<a href="(/channel/liaison\?before=\d+)">Show newer messages</a>')
    assert newer.search(newest.text) is None
    middle_link = older.search(newest.text)
    assert middle_link
    middle = client.get(middle_link.group(1))
    oldest_link = older.search(middle.text)
    assert oldest_link
    oldest = client.get(oldest_link.group(1))
    assert older.search(oldest.text) is None and "liaison 1</bdi></dd>" in oldest.text
    # From the oldest page one step newer is the middle page, exactly; from the middle page, the newest.
    step = newer.search(oldest.text)
    assert step and ids_on(client.get(step.group(1))) == ids_on(middle)
    newest_link = '<a href="/channel/liaison">Show the newest messages</a>'
    assert newer.search(middle.text) is None and newest_link in middle.text and newest_link in oldest.text
