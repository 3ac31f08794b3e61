"""The Find screen in process: what it finds and shows, pages, the form kept, and refusals on their fields."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import login
from detente.core.precedence import format_time, now
from detente.core.search import words_of
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.store import messages as db
from detente.store.db import make_engine
from support import envelope_row

ROOT = Path(__file__).resolve().parents[3]
URDU = "پنجگور کے قریب دھماکوں کی اطلاع"
ROUTINE = 55  # ROUTINE texts "filler N": more than a page of results


def _row(n: int, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    envelope = {"type": kind, "body": body, "refs": []}
    created = format_time(now() - timedelta(hours=200 - n))
    values: dict[str, Any] = dict(
        id=f"01a20000-0000-7000-8000-98{n:010x}", type=kind, created=created, recorded_at=created,
        raw=json.dumps(envelope).encode(), words=words_of(envelope), log_index=500_000 + n, seq=500_000 + n,
        precedence="PRIORITY", needs_ack=False, deadline=None,
    )  # fmt: skip
    return envelope_row(n, **{**values, **extra})


MESSAGES = {
    "fire": _row(1, "hotline.text", {"text": "Mortar fire near Panjgur"}, precedence="FLASH", direction="in",
                 from_office="ir:dgmo", to_office="pk:dgmo", state="delivered", created="2024-01-16T13:05:00.000Z"),
    "urdu": _row(2, "hotline.text", {"text": URDU}, created="2024-01-16T20:00:00.000Z"),
    "code": _row(3, "code", {"code": "NO-HOSTILE-INTENT", "params": {"place": "Panjgur"}}, precedence="IMMEDIATE",
                 created="2024-01-17T09:00:00.000Z"),
    "liaison": _row(4, "hotline.text", {"text": "Panjgur liaison"}, channel="liaison", from_office="pk:lo-zahedan",
                    to_office="ir:lo-turbat"),
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pk holds a FLASH text from ir about Panjgur, an Urdu text, a codebook message, a liaison text, fillers."""
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    engine = make_engine(load_config(Path(info["nodes"]["pk"]["data"])).db)
    try:
        with engine.begin() as conn:
            for row in MESSAGES.values():
                db.insert_envelope(conn, **row)
            for n in range(ROUTINE):
                db.insert_envelope(conn, **_row(10 + n, "hotline.text", {"text": f"filler {n}"}, precedence="ROUTINE"))
    finally:
        engine.dispose()
    return info


def rows(page: str) -> list[str]:
    """The ids of the result rows, in the page's order."""
    return re.findall(r'<li class="row-in[^"]*">.*?<span class="msg-id" title="([^"]+)"', page)


def test_words_find_the_messages_newest_first_each_linking_to_it(client: TestClient) -> None:
    login(client, "pk-dgmo")
    empty = client.get("/find")
    assert empty.status_code == 200 and 'href="/find" aria-current="page"' in empty.text
    assert "Give words, days or another filter, then Find." in empty.text and rows(empty.text) == []
    found = client.get("/find", params={"q": "PANJGUR"})
    ids = [MESSAGES[k]["id"] for k in ("code", "fire")]  # newest first; not the liaison text: not pk-dgmo's
    assert found.status_code == 200 and rows(found.text) == ids
    fire = MESSAGES["fire"]
    assert f'href="/channel/dgmo?before={fire["log_index"] + 1}#m-{fire["id"]}"' in found.text
    assert 'value="PANJGUR"' in found.text  # the form keeps what was typed
    # The codebook message is found by its text's words (not in its envelope), and shown as its text.
    hostile = client.get("/find", params={"q": "hostile intent", "precedence": "IMMEDIATE"})
    assert rows(hostile.text) == [MESSAGES["code"]["id"]] and "not directed against your state" in hostile.text
    assert 'value="IMMEDIATE" checked' in hostile.text
    lower = client.get("/find", params={"q": "hostile intent", "precedence": "immediate"})  # an address, as the API
    assert rows(lower.text) == [MESSAGES["code"]["id"]] and 'value="IMMEDIATE" checked' in lower.text
    day = client.get("/find", params={"q": "panjgur", "from": "2024-01-16", "to": "2024-01-16", "direction": "in"})
    assert rows(day.text) == [fire["id"]] and 'value="2024-01-16"' in day.text
    # What was searched is printed above the results (the form is not): a printout says what it lists.
    asked = re.search(r'<dl class="print-only find-asked">(.*?)</dl>', day.text, re.S)
    assert asked, day.text[-3000:]
    said = " ".join(re.sub(r"<[^>]+>", " ", asked.group(1)).split())
    assert said == "Words panjgur From (UTC day) 2024-01-16 To (UTC day, included) 2024-01-16 Direction Received", said
    assert 'class="print-only find-asked"' not in empty.text
    # By state: what is still unanswered at a handover (the received FLASH is delivered, not acknowledged).
    waiting = client.get("/find", params={"q": "panjgur", "state": "delivered"})
    assert rows(waiting.text) == [fire["id"]] and '<option value="delivered" selected>' in waiting.text
    assert rows(client.get("/find", params={"q": "panjgur", "state": "acknowledged"}).text) == []
    assert rows(client.get("/find", params={"id": "…" + MESSAGES["urdu"]["id"][-8:]}).text) == [MESSAGES["urdu"]["id"]]
    assert "No message matches." in client.get("/find", params={"q": "panjgur", "peer": "ir", "to": "2024-01-15"}).text
    assert rows(client.get("/find", params={"q": "hostile", "from": "2024-01-17", "to": "9999-12-31"}).text) == [
        MESSAGES["code"]["id"]
    ]


def test_urdu_words_on_an_urdu_page_find_urdu_text(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/find", params={"q": "دھماکوں پنجگور", "lang": "ur"})
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    assert rows(page.text) == [MESSAGES["urdu"]["id"]]
    assert f'value="{html.escape("دھماکوں پنجگور")}"' in page.text
    client.get("/?lang=en")


def test_what_the_operator_may_not_read_is_not_found(client: TestClient) -> None:
    login(client, "pk-lo-zahedan")
    assert rows(client.get("/find", params={"q": "panjgur"}).text) == [MESSAGES["liaison"]["id"]]
    client.cookies.clear()
    login(client, "pk-supervisor")
    assert len(rows(client.get("/find", params={"q": "panjgur"}).text)) == 3


def test_results_page_back_and_forward(client: TestClient) -> None:
    login(client, "pk-dgmo")
    first = client.get("/find", params={"q": "filler", "precedence": "ROUTINE"})
    assert len(rows(first.text)) == 50 and "Show older messages" in first.text
    older = re.search(r'<a href="(/find\?[^"]*before=\d+)">Show older messages', first.text)
    assert older, first.text
    second = client.get(html.unescape(older.group(1)))
    assert len(rows(second.text)) == ROUTINE - 50 and "Show older messages" not in second.text
    assert set(rows(first.text)).isdisjoint(rows(second.text))
    newest = re.search(r'<a href="(/find\?[^"]*)">Show the newest messages', second.text)
    assert newest and rows(client.get(html.unescape(newest.group(1))).text) == rows(first.text)


WRONG = [
    ({"q": "x" * 201}, "q", "Write at most 200 characters."),
    ({"from": "16/01/2024"}, "from", "Write a day as 2024-01-16: year, month, day."),
    ({"to": "2024-02-30"}, "to", "Write a day as 2024-01-16: year, month, day."),
    ({"from": "2024-01-17", "to": "2024-01-16"}, "to", "The last day comes before the first."),
    # The Solar Hijri date a Persian page shows beside each time was searched as 1405 AD (QA).
    ({"from": "1405-09-07"}, "from", "Give the day in the Gregorian calendar, as 2024-01-16 (not a Solar Hijri one)."),
    ({"id": "3f2a"}, "id", "Give the last 6 characters of the id or more (0-9, a-f), or the whole id."),
    ({"precedence": "URGENT"}, "precedence", "Choose one of the list."),
    ({"channel": "fs"}, "channel", "Choose one of the list."),  # not one of pk-dgmo's channels
    ({"peer": "us"}, "peer", "Choose one of the list."),
    ({"direction": "sideways"}, "direction", "Choose one of the list."),
    ({"state": "unanswered"}, "state", "Choose one of the list."),
]


def test_a_wrong_field_is_said_on_it_the_form_kept_and_nothing_listed(client: TestClient) -> None:
    login(client, "pk-dgmo")
    for params, field, says in WRONG:
        page = client.get("/find", params={"q": "panjgur", **params})
        assert page.status_code == 422 and "Traceback" not in page.text, field
        error = re.search(rf'<p class="field-error" id="f-{field}-error">(.*?)</p>', page.text)
        assert error and html.unescape(error.group(1)) == says, field
        assert f'aria-describedby="f-{field}-error' in page.text, field
        assert "Correct what is marked, then find again." in page.text and rows(page.text) == []
        for name in ("from", "to", "id"):
            if name in params:
                assert f'name="{name}" value="{html.escape(params[name])}"' in page.text


def test_a_persian_page_takes_a_day_in_persian_digits(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/find", params={"q": "panjgur", "from": "۲۰۲۴-۰۱-۱۶", "to": "۲۰۲۴-۰۱-۱۶", "lang": "fa"})
    assert page.status_code == 200 and rows(page.text) == [MESSAGES["fire"]["id"]]
    # The date fields show the days searched, as they take them (they showed nothing: QA).
    assert 'name="from" value="2024-01-16"' in page.text and 'name="to" value="2024-01-16"' in page.text
    client.get("/?lang=en")
