"""An operator whose language the agreement has texts in but the console has no pages in (Pashto).

QA: with `languages = ["en", "ur", "fa", "ps"]`, `detente inbox` showed a `ps` operator the codebook
message in Pashto, but the console showed it in English, as the rest of its English page. The page
stays English; the codebook texts are in Pashto, marked `lang="ps"` and running right to left.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import login
from detente.core import agreement
from detente.core.precedence import format_time, now
from detente.node import setup
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.store import operators as operators_db
from detente.store.db import make_engine
from pashto_support import PASHTO_MARK, STAND_DOWN, pashto_agreement
from support import envelope_row, store_rows

CODE_IN = "01a20000-0000-7000-8000-980000000001"  # a FLASH STAND-DOWN from ir, waiting for pk:dgmo
CODE_OUT = "01a20000-0000-7000-8000-980000000002"  # sent: a codebook message not yet acknowledged
IN_PASHTO = STAND_DOWN.replace("{place}", '<bdi dir="ltr">Saravan</bdi>')
IN_ENGLISH = "Our forces at Saravan have been ordered to stand down."


def _row(n: int, message_id: str, direction: str, body: dict[str, Any]) -> dict[str, Any]:
    inbound = direction == "in"
    created = format_time(now() - timedelta(minutes=5))
    return envelope_row(
        n, id=message_id, direction=direction, type="code", from_office="ir:dgmo" if inbound else "pk:dgmo",
        to_office="pk:dgmo" if inbound else "ir:dgmo", created=created, recorded_at=created,
        raw=json.dumps({"body": body, "refs": []}).encode(), log_index=410_000 + n, seq=410_000 + n,
        deadline=format_time(now() + timedelta(minutes=30)), state="delivered" if inbound else "accepted",
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pk, under an agreement in English, Urdu, Persian and Pashto, holds a codebook message from ir and
    one it sent; `pk-ps` is a DGMO operator whose language is Pashto."""
    agreement = pashto_agreement(tmp_path_factory.mktemp("agreement"))
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), agreement)
    data = Path(info["nodes"]["pk"]["data"])
    setup.add_user(data, "pk-ps", ["pk:dgmo"], ["operator"], "pk-ps-demo", "ps")
    stand_down = {"code": "STAND-DOWN", "params": {"place": "Saravan"}}
    received = {"code": "MESSAGE-RECEIVED", "params": {}}
    store_rows(data, [_row(1, CODE_IN, "in", stand_down), _row(2, CODE_OUT, "out", received)])
    return info


def _card(page: str, message_id: str) -> str:
    found = re.search(rf'<article [^>]*id="m-{message_id}".*?</article>', page, re.S)
    assert found, page[:2000]
    return found.group(0)


def test_a_codebook_text_is_in_the_operators_language_on_an_english_page(client: TestClient) -> None:
    login(client, "pk-ps")
    page = client.get("/").text
    assert '<html lang="en" dir="ltr" data-theme=' in page  # the console has no Pashto pages
    card = _card(page, CODE_IN)
    tag = '<span class="code-tag" lang="en" dir="ltr">Codebook <bdi dir="ltr">STAND-DOWN</bdi></span>'
    assert f'<p class="code-text" dir="rtl" lang="ps">{tag} {IN_PASHTO}</p>' in card, card
    assert IN_ENGLISH not in card
    # The short row of what pk sent, and the FLASH banner, say the codebook text in Pashto too.
    row = re.search(rf'<a href="/channel/dgmo#m-{CODE_OUT}">.*?</a>', page, re.S)
    assert row and f'<bdi class="snippet" dir="rtl" lang="ps">{PASHTO_MARK}' in row.group(0), page[:3000]
    strip = client.get("/strip").text
    assert '<span class="banner-text" dir="rtl" lang="ps">په Saravan کې' in strip, strip


def test_the_codebook_previews_and_the_text_language_start_with_the_operators(client: TestClient) -> None:
    login(client, "pk-ps")
    page = client.get("/channel/dgmo").text
    assert '<html lang="en" dir="ltr" data-theme=' in page
    # The previews of a code, yours first: Pashto, right to left.
    entry = page[page.index('<details class="code" id="code-STAND-DOWN"') :]
    first = re.search(r'<p class="preview" ([^>]*)><span class="lang-tag">([^<]*)</span> <span class="text" '
                      r'data-template="([^"]*)"', entry)  # fmt: skip
    assert first and first.groups() == ('lang="ps" dir="rtl"', "ps", STAND_DOWN), first and first.group(0)
    assert '<option value="ps" lang="ps" selected>' in page


def test_a_reader_of_a_console_language_is_shown_the_pages_language(client: TestClient) -> None:
    login(client, "pk-dgmo")
    card = _card(client.get("/").text, CODE_IN)
    tag = '<span class="code-tag">Codebook <bdi dir="ltr">STAND-DOWN</bdi></span>'
    english = IN_ENGLISH.replace("Saravan", '<bdi dir="ltr">Saravan</bdi>')
    assert f'<p class="code-text" dir="ltr">{tag} {english}</p>' in card
    assert 'lang="ps"' not in card


def test_office_titles_are_in_the_operators_language_on_an_english_page(
    client: TestClient, demo: dict[str, Any]
) -> None:
    """The agreement titles each office in Pashto too: a Pashto reader was shown them in English."""
    login(client, "pk-ps")
    page = client.get("/channel/dgmo").text
    head = page[page.index('<p class="subtitle offices">') :][:800]
    persian = agreement.load(Path(demo["agreement"]).read_text(encoding="utf-8")).offices["pk:dgmo"].titles["fa"]
    assert f'<span dir="auto" lang="ps">{PASHTO_MARK}{persian}</span>' in head, head
    assert "Director-General of Military Operations" not in head
    client.cookies.clear()
    login(client, "pk-dgmo")
    english = client.get("/channel/dgmo").text
    head = english[english.index('<p class="subtitle offices">') :][:800]
    assert '<span dir="auto">Director-General of Military Operations, GHQ Rawalpindi</span>' in head, head


def test_choosing_english_keeps_the_operators_own_language_and_urdu_replaces_it(
    client: TestClient, demo: dict[str, Any]
) -> None:
    """English is the page a Pashto reader already has: choosing it must not lose their Pashto texts."""
    data = Path(demo["nodes"]["pk"]["data"])

    def saved() -> str:
        engine = make_engine(load_config(data).db)
        try:
            with engine.connect() as conn:
                found = operators_db.by_name(conn, "pk-ps")
                assert found is not None
                return found.lang
        finally:
            engine.dispose()

    login(client, "pk-ps", lang="en")  # the login page's language menu
    assert saved() == "ps"
    client.get("/?lang=en")  # the header's language links
    assert saved() == "ps"
    page = client.get("/", headers={"Accept-Language": "ur"}).text  # the browser's preference does not count
    assert '<html lang="en" dir="ltr" data-theme=' in page and 'dir="rtl" lang="ps"' in page
    client.get("/?lang=ur")
    assert saved() == "ur"
    client.get("/?lang=en")  # from Urdu, English is a choice like any other
    assert saved() == "en"
