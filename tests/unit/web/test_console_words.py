"""What the console's words say and which way they run in Urdu and Persian (the QA pass of a translator
and a supervisor): escalation levels, delivery badges, a codebook message's note, short rows, case
titles and timeline notes, codebook parameters, the FLASH banner, the links' clock, logging out.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.core import agreement as agreement_mod
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.node.linkstate import contact_job
from detente.store import messages as db
from detente.store.db import make_engine
from detente.web.console import texts
from detente.web.console.i18n import Locale
from detente.web.console.labels import Labels
from detente.web.console.present import Presenter
from support import envelope_row

ROOT = Path(__file__).resolve().parents[3]
CODE_IN = "01a20000-0000-7000-8000-970000000001"  # a FLASH STAND-DOWN from ir, with a note that limits it
TEXT_OUT = "01a20000-0000-7000-8000-970000000002"  # sent: an Urdu text that starts with a Latin place name
CODE_OUT = "01a20000-0000-7000-8000-970000000003"  # sent: a codebook text longer than the old 80-character cut
NOTE = "EXCEPT the air-defence battery at Saravan, which stays on alert."
PLACE = "the Koh-e-Sabz village of Panjgur district"
URDU = "Koh-e-Sabz " + "کے قریب جاری سرگرمی " * 12 + "آپ کی ریاست کے خلاف نہیں ہے"
HTML = {"Accept": "text/html"}


def _row(n: int, message_id: str, direction: str, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    inbound = direction == "in"
    created = format_time(now() - timedelta(minutes=5))
    values: dict[str, Any] = dict(
        id=message_id, direction=direction, type=kind, from_office="ir:dgmo" if inbound else "pk:dgmo",
        to_office="pk:dgmo" if inbound else "ir:dgmo", created=created, recorded_at=created,
        raw=json.dumps({"body": body, "refs": []}).encode(), log_index=400_000 + n, seq=400_000 + n,
        deadline=format_time(now() + timedelta(minutes=30)), state="delivered" if inbound else "accepted",
    )  # fmt: skip
    return envelope_row(n, **{**values, **extra})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pk holds a FLASH codebook message from ir with a note, two sent messages, and a link to ir that
    was UP with a clock in step and is DOWN now."""
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    engine = make_engine(load_config(Path(info["nodes"]["pk"]["data"])).db)
    try:
        with engine.begin() as conn:
            body = {"code": "STAND-DOWN", "params": {"place": "Saravan"}, "note": NOTE}
            db.insert_envelope(conn, **_row(1, CODE_IN, "in", "code", body))
            db.insert_envelope(conn, **_row(2, TEXT_OUT, "out", "hotline.text", {"text": URDU}))
            body = {"code": "STRIKE-NOT-DIRECTED-AT-STATE", "params": {"place": PLACE}}
            db.insert_envelope(conn, **_row(3, CODE_OUT, "out", "code", body))
            contact_job("ir", True, test=True, rtt_ms=4.0, clock_offset_ms=20.0)(conn)
            for _ in range(3):
                contact_job("ir", False, test=True, error="connection refused")(conn)
    finally:
        engine.dispose()
    return info


@pytest.fixture(scope="module")
def presenter_ur(demo: dict[str, Any]) -> Presenter:
    agreement = agreement_mod.load((Path(demo["nodes"]["pk"]["data"]) / "agreement.toml").read_text())
    return Presenter(agreement, "pk", Locale("ur"))


def _card(page: str, message_id: str) -> str:
    found = re.search(rf'<article [^>]*id="m-{message_id}".*?</article>', page, re.S)
    assert found, page[:2000]
    return found.group(0)


def _send(client: TestClient, kind: str, fields: dict[str, str], case: str = "") -> str:
    token = csrf_of(client.get("/channel/dgmo"))
    form = {"csrf": token, "type": kind, "precedence": "FLASH", "case": case, **fields}
    sent = client.post("/channel/dgmo/send", data=form, follow_redirects=False)
    said = re.findall(r"(?:form-errors|field-error)[^>]*>(.*?)</", sent.text, re.S)
    assert sent.status_code == 303, (sent.status_code, said)
    return sent.headers["location"].rsplit("#m-", 1)[1]


@pytest.fixture(scope="module")
def case_id(app_client: TestClient) -> str:
    """A case an incident report opened (pk at level 3), then resolved with pk at level 1."""
    login(app_client, "pk-dgmo")
    opened = _send(app_client, "incident.report", {
        "b.kind": "strike", "b.time": (now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        "b.location.lat": "26.9", "b.location.lon": "63.1",
        "b.location.place": "Koh-e-Sabz village", "b.description": "Fire.", "b.assessment": "Unknown.",
        "b.escalation": "3"})  # fmt: skip
    _send(app_client, "case.update", {"b.status": "resolved", "b.escalation": "1"}, case=opened)
    app_client.get("/?lang=en")
    app_client.cookies.clear()
    return opened


@pytest.mark.parametrize(
    ("lang", "own", "other"),
    [
        ("ur", "ڈائریکٹر جنرل ملٹری آپریشنز، جی ایچ کیو راولپنڈی", "ڈائریکٹر آپریشنز، جنرل اسٹاف مسلح افواج، تہران"),
        ("fa", "مدیر کل عملیات نظامی، ستاد کل ارتش، راولپندی", "معاون عملیات ستاد کل نیروهای مسلح، تهران"),
        ("en", "Director-General of Military Operations, GHQ Rawalpindi", "Director of Operations, General Staff"),
    ],
)
def test_offices_are_titled_in_the_readers_language_as_the_agreement_gives_them(
    client: TestClient, lang: str, own: str, other: str
) -> None:
    login(client, "pk-dgmo", lang=lang)
    page = client.get("/channel/dgmo").text
    head = page[page.index('<p class="subtitle offices">') :][:600]
    assert own in head and other in head
    client.get("/?lang=en")


# -- H1, M4: escalation levels, case titles and timeline notes ----------------------------------------


def test_an_escalation_level_is_one_left_to_right_isolate_in_urdu(client: TestClient, case_id: str) -> None:
    login(client, "pk-dgmo", lang="ur")
    page = client.get(f"/case/{case_id}").text
    # Not `<bdi>1</bdi>/5`: in a right-to-left row that reads "5/1".
    assert '<bdi dir="ltr">1/5</bdi>' in page and '<bdi dir="ltr">3/5</bdi>' in page and "</bdi>/5" not in page
    assert '<bdi dir="ltr">1/5</bdi>' in client.get("/cases").text
    client.get("/?lang=en")


def test_a_case_title_the_node_made_up_and_its_timeline_are_said_in_the_readers_language(
    client: TestClient, case_id: str
) -> None:
    login(client, "pk-dgmo", lang="fa")
    page = client.get(f"/case/{case_id}").text
    # "strike at Koh-e-Sabz village" (core.workflows) said again in Persian, the place an isolate.
    title = "حمله در \u2068Koh-e-Sabz village\u2069"
    assert f'<span dir="rtl">{title}</span>' in page and "strike at" not in page
    assert f"<title>{title} ·" in page
    assert f'dir="rtl">{title}</a>' in client.get("/cases").text
    notes = re.findall(r'<p class="tl-when">.*?· <em>(.*?)</em>', page)
    assert notes == ["گشوده شد", 'وضعیت: حل‌شده؛ سطح تنش PK: <bdi dir="ltr">1/5</bdi>'], notes
    assert "status resolved" not in page and "pk escalation" not in page
    client.get("/?lang=en")
    english = client.get(f"/case/{case_id}").text
    assert '<span dir="ltr">strike at Koh-e-Sabz village</span>' in english
    assert 'status: resolved; PK escalation <bdi dir="ltr">1/5</bdi>' in english


def test_a_note_the_console_cannot_say_again_is_shown_as_written(presenter_ur: Presenter) -> None:
    p = presenter_ur
    body = {"escalation": "high"}
    said = texts.timeline_note("pk escalation 9", "case.update", "pk", False, body, p.locale, p.labels)
    assert str(said) == '<span dir="auto">pk escalation 9</span>'
    assert texts.timeline_note("", "case.update", "pk", False, {"escalation": 2}, p.locale, p.labels) == ""


# -- H2: delivery words -----------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "receipt", "log"), [("ur", "وصولی", "لاگ"), ("fa", "دریافت", "دفتر")])
def test_acknowledged_is_a_receipt_and_verified_a_proof_in_the_log(lang: str, receipt: str, log: str) -> None:
    locale = Locale(lang)
    labels = Labels(locale)
    acknowledged, verified = labels.value("acknowledged"), labels.value("verified")
    # The state is not the button's word, and says what was confirmed: the receipt.
    assert acknowledged != locale.gettext("Acknowledge") and receipt in acknowledged
    assert receipt in locale.gettext("Sent, not yet acknowledged")
    # "verified" says where it was proven: in the other side's log, not "confirmed".
    assert log in verified and "تصدیق" not in verified and receipt not in verified
    assert len({labels.value(w) for w in ("accepted", "delivered", "acknowledged", "declined", "verified")}) == 5


# -- H3: a codebook message's note -------------------------------------------------------------------


def test_the_note_sent_with_a_codebook_message_is_on_its_card(client: TestClient) -> None:
    login(client, "pk-dgmo")
    card = _card(client.get("/").text, CODE_IN)
    assert '<p class="code-text" dir="ltr">' in card and "STAND-DOWN" in card
    tag = '<span class="note-tag">Sender&#39;s note</span>'
    assert f'{tag} <span class="note-text" dir="auto">{html.escape(NOTE)}</span>' in card


def test_the_codebook_form_takes_a_note_and_keeps_it_when_refused(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/channel/dgmo").text
    assert 'id="n-STAND-DOWN" name="b.note"' in page
    form = {"csrf": csrf_of(client.get("/channel/dgmo")), "type": "code", "code": "STAND-DOWN",
            "precedence": "FLASH", "p.place": "", "b.note": "except Saravan"}  # fmt: skip
    refused = client.post("/channel/dgmo/send", data=form)
    assert refused.status_code == 422
    assert re.search(r'id="n-STAND-DOWN" name="b.note"[^>]*>except Saravan</textarea>', refused.text)


# -- H4: short rows ----------------------------------------------------------------------------------


def test_a_sent_codebook_text_is_shown_whole_in_the_readers_direction(client: TestClient) -> None:
    login(client, "pk-dgmo", lang="ur")
    page = client.get("/").text
    row = re.search(rf'<a href="/channel/dgmo#m-{CODE_OUT}">.*?</a>', page, re.S)
    assert row, page[:3000]
    assert '<bdi class="snippet" dir="rtl">' in row.group(0)
    # The end of the sentence is where Urdu says "not": it is there, uncut.
    assert "اس کی افواج یا اس کے شہریوں کے خلاف نہیں۔</bdi>" in row.group(0) and "…" not in row.group(0)
    client.get("/?lang=en")


def test_a_free_text_runs_the_way_most_of_its_letters_do_and_is_cut_at_a_word(client: TestClient) -> None:
    login(client, "pk-dgmo")
    row = re.search(rf'<a href="/channel/dgmo#m-{TEXT_OUT}">.*?</a>', client.get("/").text, re.S)
    assert row
    # An Urdu sentence starting with a Latin place name: right to left, not left to right.
    shown = re.search(r'<bdi class="snippet" dir="rtl">([^<]*)</bdi>', row.group(0))
    assert shown, row.group(0)
    text = shown.group(1)
    assert text.endswith("…") and URDU.startswith(text[:-1]) and URDU[len(text) - 1] == " "
    assert len(text) > 80


def test_text_directions_and_snippets(presenter_ur: Presenter) -> None:
    assert texts.text_dir("Koh-e-Sabz میں جاری سرگرمی") == "rtl"
    assert texts.text_dir("Strike at کوہ سبز") == "ltr"
    assert texts.text_dir("+98 21 5555 0100") == "auto"
    body = {"code": "STRIKE-NOT-DIRECTED-AT-STATE", "params": {"place": PLACE * 3}}
    assert presenter_ur.snippet("code", body) == presenter_ur.code_text(body)  # never cut
    assert presenter_ur.snippet_dir("code", "Latin first") == "rtl"


def test_each_line_of_a_body_value_is_an_isolate_and_the_nodes_words_are_english(presenter_ur: Presenter) -> None:
    """QA: in a card an English value was set left to right across its row, far from its label on the right;
    an English error read ".Start must be after the message is created" in an Urdu paragraph."""
    body = {"questions": ["Which unit fired?", "Koh-e-Sabz میں کون تھا؟"], "deadline": "2026-11-28T10:30:00.000Z"}
    questions, deadline = (str(line.html) for line in presenter_ur.lines("clarification.request", body))
    assert questions == '<bdi dir="ltr">Which unit fired?</bdi>\n<bdi dir="rtl">Koh-e-Sabz میں کون تھا؟</bdi>'
    assert deadline == '<bdi dir="ltr">2026-11-28T10:30:00.000Z</bdi>'
    assert str(texts.value_markup("26.9, 63.1")) == '<bdi dir="ltr">26.9, 63.1</bdi>'  # no letters: left to right
    said = texts.node_text("Start must be after the message is <created>.")
    assert said == '<bdi dir="ltr" lang="en">Start must be after the message is &lt;created&gt;.</bdi>'


# -- LOW 1: values in a codebook text ----------------------------------------------------------------


def test_each_value_of_a_codebook_text_is_an_isolate(presenter_ur: Presenter) -> None:
    body = {"code": "INVESTIGATING", "params": {"place": "+98 21 5555 0100", "time": "2026-11-28T10:30:00Z"}}
    shown = presenter_ur.code_html(body)
    assert '<bdi dir="ltr">2026-11-28 10:30 UTC</bdi>' in shown and '<bdi dir="ltr">+98 21 5555 0100</bdi>' in shown
    assert '<bdi dir="rtl">کوہ سبز</bdi>' in presenter_ur.code_html({**body, "params": {**body["params"],
                                                                              "place": "کوہ سبز"}})  # fmt: skip
    # A value with markup in it is escaped; a message the codebook cannot render is shown as text.
    assert "&lt;b&gt;" in presenter_ur.code_html({**body, "params": {**body["params"], "place": "<b>"}})
    assert presenter_ur.code_html({"code": "INVESTIGATING", "params": {"place": "x"}}).startswith("INVESTIGATING {")
    assert presenter_ur.code_html({"code": "NO-SUCH", "params": []}) == "NO-SUCH"


# -- M4: codebook parameters ---------------------------------------------------------------------------


def test_codebook_parameters_are_labelled_in_the_readers_language(client: TestClient) -> None:
    login(client, "pk-dgmo", lang="fa")
    page = client.get("/channel/dgmo").text
    assert '<label for="p-EVACUATE-AREA-radius_km">شعاع (کیلومتر) <small>(عدد)</small></label>' in page
    assert "<small>(زمان، UTC)</small>" in page and "<small>(متن)</small>" in page
    assert "Radius_km" not in page and "(time)" not in page and "(text)" not in page
    client.get("/?lang=en")


# -- LOW 3, 4, 5, 8 --------------------------------------------------------------------------------


def test_the_login_page_after_logout_speaks_the_operators_language(client: TestClient) -> None:
    login(client, "pk-fs", lang="fa")
    token = csrf_of(client.get("/"))
    out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert out.headers["location"] == "/login?bye=1"
    page = client.get(out.headers["location"]).text
    assert '<html lang="fa" dir="rtl" data-theme=' in page
    # The menu still offers "my saved language": the next operator's own language is not changed.
    assert '<option value="" selected>' in page


def test_the_flash_banner_names_the_code_and_the_start_of_its_text(client: TestClient) -> None:
    login(client, "pk-dgmo")
    strip = client.get("/strip").text
    assert '<bdi dir="ltr">STAND-DOWN</bdi> · <bdi>ir:dgmo</bdi></a>' in strip
    assert '<span class="banner-text" dir="ltr">Our forces at Saravan have been ordered to stand down.</span>' in strip


def test_a_link_that_is_down_shows_no_clock(client: TestClient) -> None:
    login(client, "pk-dgmo")
    row = re.search(r'<td class="clock">(.*?)</td>', client.get("/").text)
    assert row and row.group(1) == "—"


def test_acknowledging_says_so_and_comes_back_to_the_next_message(client: TestClient) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/"))
    answer = client.post(f"/messages/{CODE_IN}/ack", data={"csrf": token, "next": "/?all=1#m-next"},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == f"/?all=1&acked={CODE_IN}#m-next"
    page = client.get(answer.headers["location"].split("#")[0]).text
    assert 'id="acked-notice"' in page and f"…{CODE_IN[-12:]}" in page
    assert 'id="acked-notice"' not in client.get("/").text
