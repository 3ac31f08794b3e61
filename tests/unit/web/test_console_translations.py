"""Certified translations on the console (one real node in process): show, translate, certify, dispute."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.node.demo import setup_demo
from detente.node.setup import add_user

ROOT = Path(__file__).resolve().parents[3]
FA = "پهپادی بر فراز بخش کچ دیده شد"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    data = Path(info["nodes"]["pk"]["data"])
    for name in ("pk-tr1", "pk-tr2", "pk-tr3"):
        add_user(data, name, ["pk:dgmo"], ["translator"], f"{name}-demo")
    return info


def _token(demo: dict[str, Any], name: str) -> str:
    return str(next(o["token"] for o in demo["nodes"]["pk"]["operators"] if o["name"] == name))


def _sent(client: TestClient, demo: dict[str, Any], text: str) -> str:
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
               "body": {"text": text}, "lang": "en"}  # fmt: skip
    response = client.post(
        "/api/v1/messages", json=request, headers={"Authorization": f"Bearer {_token(demo, 'pk-dgmo')}"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _card(page: str, message_id: str) -> str:
    """The HTML of one message card on a page."""
    start = page.index(f'id="m-{message_id}"')
    return page[start : page.index("</article>", start)]


def _translations_of(client: TestClient, message_id: str) -> list[dict[str, Any]]:
    """The message's translations, with their reviews, as the operator API lists them."""
    found: list[dict[str, Any]] = client.get(f"/api/v1/messages/{message_id}").json()["translations"]
    return found


def _as(client: TestClient, name: str) -> str:
    client.cookies.clear()
    assert login(client, name).status_code == 303
    return csrf_of(client.get("/channel/dgmo"))


def test_a_translator_translates_and_another_certifies_on_the_console(client: TestClient, demo: dict[str, Any]) -> None:
    message = _sent(client, demo, "Drone sighted over Kech district")
    token = _as(client, "pk-tr1")
    card = _card(client.get("/channel/dgmo").text, message)
    form = card[card.index('class="translate-form"') :]
    # The languages of the agreement other than the message's own (English).
    assert re.findall(r'<option value="(\w+)"', form) == ["ur", "fa"]
    posted = client.post(f"/messages/{message}/translate", data={"csrf": token, "next": f"/channel/dgmo#m-{message}",
                         "lang": "fa", "text": FA}, follow_redirects=False)  # fmt: skip
    # Back at the new translation, with a notice naming it.
    made = re.fullmatch(r"/channel/dgmo\?translated=([0-9a-f-]+)#t-\1", posted.headers["location"])
    assert posted.status_code == 303 and made, posted.headers
    page = client.get(posted.headers["location"]).text
    assert 'id="translated-notice">Translated: the signed translation goes to the other side' in page
    card = _card(page, message)
    assert f'<blockquote class="translation-text" lang="fa" dir="auto">{FA}</blockquote>' in card
    assert "فارسی" in card and "by pk-tr1" in card and "Not yet certified" in card
    assert f'id="t-{made[1]}"' in card
    # When it was made, as every time on the console: UTC (the full time in its title) and pk's own.
    when = re.search(r'class="translation-when"><span class="when"><time datetime="([^"]+)" title="([^"]+)">', card)
    assert when and when[1] == _translations_of(client, message)[0]["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ · \d{6}Z[A-Z]{3}\d\d", when[2]), when[2]
    assert "PK UTC+05:00" in card[card.index('class="translation-when"') :]
    assert "certify-form" not in card  # the author may not certify it

    token = _as(client, "pk-tr2")
    card = _card(client.get("/channel/dgmo").text, message)
    translation = re.search(r'data-translation="([0-9a-f-]+)"', card)
    assert translation and "certify-form" in card
    certified = client.post(f"/translations/{translation[1]}/review", data={"csrf": token, "next": "/channel/dgmo",
                            "verdict": "certified"}, follow_redirects=False)  # fmt: skip
    assert certified.status_code == 303, certified.text
    card = _card(client.get("/channel/dgmo").text, message)
    assert "Certified by pk-tr2" in card and "certify-form" not in card  # reviewed once

    assert certified.headers["location"] == f"/channel/dgmo?certified={translation[1]}#t-{translation[1]}"
    assert 'id="certified-notice"' in client.get(certified.headers["location"]).text

    token = _as(client, "pk-tr3")
    before = _translations_of(client, message)
    for note in ("  ", "\u200b\n"):  # nothing, or nothing visible
        blank = client.post(f"/translations/{translation[1]}/review", data={"csrf": token, "next": "/channel/dgmo",
                            "verdict": "disputed", "note": note}, follow_redirects=False)  # fmt: skip
        # The form again, open at the translation, the error on its note; nothing written.
        assert blank.headers["location"] == f"/channel/dgmo?blank_note={translation[1]}#dn-{translation[1]}"
        card = _card(client.get(blank.headers["location"]).text, message)
        form = card[card.index(f'<details class="dispute" id="dd-{translation[1]}" open>') :]
        assert 'class="dispute-form invalid"' in form and 'aria-invalid="true"' in form
        error = f'<p class="field-error" id="dn-{translation[1]}-error">Say what is wrong with the translation'
        assert error in form and 'id="disputed-notice"' not in card
        assert _translations_of(client, message) == before
    disputed = client.post(f"/translations/{translation[1]}/review", data={"csrf": token, "next": "/channel/dgmo",
                           "verdict": "disputed", "note": "«بخش» is a district"}, follow_redirects=False)  # fmt: skip
    assert disputed.status_code == 303, disputed.text
    page = client.get(disputed.headers["location"]).text
    assert 'id="disputed-notice"' in page and "field-error" not in _card(page, message)

    # The operator reads the translation and both verdicts, and is offered no translator's form.
    _as(client, "pk-dgmo")
    card = _card(client.get("/channel/dgmo").text, message)
    assert (
        FA in card and "Certified by pk-tr2" in card and "Disputed by pk-tr3" in card and "«بخش» is a district" in card
    )
    assert "translate-form" not in card and "certify-form" not in card and "dispute-form" not in card


def test_the_translation_forms_refuse_what_the_node_refuses(client: TestClient, demo: dict[str, Any]) -> None:
    message = _sent(client, demo, "Artillery fire heard near Mand")
    token = _as(client, "pk-dgmo")
    operator = client.post(f"/messages/{message}/translate", data={"csrf": token, "lang": "fa", "text": FA})
    assert operator.status_code == 403 and "only a translator or supervisor" in operator.text
    token = _as(client, "pk-tr1")
    forged = client.post(f"/messages/{message}/translate", data={"lang": "fa", "text": FA})
    assert forged.status_code == 403 and "CSRF" in forged.text
    same = client.post(f"/messages/{message}/translate", data={"csrf": token, "lang": "en", "text": "Artillery"})
    assert same.status_code == 422 and "already in en" in same.text
    empty = client.post(f"/messages/{message}/translate", data={"csrf": token, "next": "/channel/dgmo", "lang": "fa",
                        "text": " "}, follow_redirects=False)  # fmt: skip
    assert empty.headers["location"] == f"/channel/dgmo?blank_text={message}#tt-{message}"
    card = _card(client.get(empty.headers["location"]).text, message)
    assert f'<details class="translate" id="td-{message}" open>' in card and 'aria-describedby="tt-' in card
    assert "Write the translation: an empty one says nothing." in card
    assert "translation-list" not in card  # nothing was written
