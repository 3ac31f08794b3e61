"""Form errors as plain sentences naming their field, text limits in the form, and HTML refusals for the console.

The sentences are built from what the node really answers (`notifications.validate_message`), and the
pages from a node's app in process: a form too large (413) and an address holding `%2F` (400) are the
console's HTML error page, while the same refusals under `/api/` stay JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.precedence import Precedence
from detente.errors import Invalid
from detente.node.demo import setup_demo
from detente.web.console import form_errors, forms
from detente.web.limits import MAX_BODY

ROOT = Path(__file__).resolve().parents[3]
PRENOTIFY = {"b.window.start": "2030-01-01 00:00", "b.window.end": "2030-01-02 00:00", "b.forces": "Two companies",
             "b.target_group": "Jundallah", "b.objective": "Arrest a cell"}  # fmt: skip


def refused(
    kind: str, form: dict[str, str], precedence: Precedence = Precedence.FLASH
) -> tuple[dict[str, str], list[str]]:
    """Return the node's errors on a form's message, as the compose panel words them."""
    agreement = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
    fields = forms.fields_for(notifications.CATALOG[kind].json_schema())
    body = forms.body_from_form(fields, form)
    with pytest.raises(Invalid) as caught:
        notifications.validate_message(kind, body, agreement, created=datetime.now(UTC), precedence=precedence)
    return form_errors.explain_errors(fields, caught.value.extra["fields"], forms.values_of(form))


def test_a_bad_polygon_line_is_named_by_its_line_and_quoted() -> None:
    placed, rest = refused("operation.prenotify", {**PRENOTIFY, "b.area.polygon": "27, 63\n\nbad line\n28 64\n29, 65"})
    assert placed == {"area.polygon": "Polygon, line 3: “bad line” is not a position; write the latitude and "
                                      "longitude in degrees, for example “27.5, 63.1”."}  # fmt: skip
    assert rest == []
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.area.polygon": "27, 63\n95, 1\n28, 64"})
    assert placed["area.polygon"] == "Polygon, line 2: the latitude must be less than or equal to 90."


@pytest.mark.parametrize(
    ("typed", "said"),
    [("NaN", "Latitude must be a number from -90 to 90, not “NaN”."),
     ("inf", "Latitude must be a number from -90 to 90, not “inf”."),
     ("east", "Latitude must be a number from -90 to 90, not “east”."),
     ("95", "Latitude must be a number from -90 to 90, not “95”.")],
)  # fmt: skip
def test_a_latitude_that_is_no_number_or_out_of_range_says_so(typed: str, said: str) -> None:
    form = {"b.kind": "strike", "b.time": "2024-01-16 13:05", "b.location.lat": typed, "b.location.lon": "63",
            "b.location.place": "Panjgur", "b.description": "Fire.", "b.assessment": "Unknown."}  # fmt: skip
    placed, rest = refused("incident.report", form)
    assert placed == {"location.lat": said} and rest == []


def test_a_huge_radius_is_not_infinity_and_a_whole_number_is_asked_for_as_such() -> None:
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.area.radius_km": "1e999"})
    assert placed["area.radius_km"] == "Radius must be a number from 0 to 1000, not “1e999”."
    form = {"b.escalation": "3.5", "b.casualties.killed": "-1"}
    placed, _ = refused("incident.report", form)
    assert placed["escalation"] == "Escalation level must be a whole number from 0 to 5, not “3.5”."
    # A number out of its range is said like one that is no number: the same words, the bounds written plainly.
    assert placed["casualties.killed"] == "Killed must be a whole number from 0 to 1000000, not “-1”."
    assert placed["description"] == "Description is required."


def test_a_rule_without_a_subject_gets_the_fields_name_and_members_are_named_as_the_form_names_them() -> None:
    form = {"b.kind": "strike", "b.time": "9999-12-31 23:59", "b.location.lat": "26", "b.location.lon": "63",
            "b.location.place": "Panjgur", "b.description": "Fire.", "b.assessment": "Unknown."}  # fmt: skip
    placed, rest = refused("incident.report", form, Precedence.ROUTINE)
    assert re.fullmatch(
        r"Time is \d+ h \d+ min after the message was created; it must be in the past\.", placed["time"]
    )
    assert rest == ["Precedence: incident.report may not be sent ROUTINE; allowed: FLASH, IMMEDIATE, PRIORITY."]
    said = form_errors.member_sentence("precedence", "Input should be 'FLASH', 'IMMEDIATE', 'PRIORITY' or 'ROUTINE'")
    assert said == "Precedence must be one of: FLASH, IMMEDIATE, PRIORITY or ROUTINE."
    assert form_errors.member_sentence("refs.0", "no such envelope on this node") == (
        "In reply to, item 1: no such envelope on this node."
    )
    assert form_errors.sentence("Text", "must not be blank") == "Text must not be blank."
    assert form_errors.sentence("Text", "String should have at most 10000 characters") == (
        "Text must have at most 10000 characters."
    )
    codes = {"params.radius_km": "must be a finite number from 0 to 10000000", "precedence": "bad"}
    said = form_errors.explain_code_errors(codes)
    assert said == "Radius km must be a finite number from 0 to 10000000. Precedence: bad."


def test_no_number_that_json_cannot_hold_leaves_the_form() -> None:
    for text in ("NaN", "inf", "-Infinity", "1e999"):
        assert forms.convert("number", text) == text and forms.convert("integer", text) == text
    assert forms.convert("number", "2.5") == 2.5 and forms.convert("integer", "3.0") == 3
    assert forms.convert("json", '{"size": 1e999}') == '{"size": 1e999}'
    assert forms.convert("json", "[NaN]") == "[NaN]" and forms.convert("json", '{"a": 1.5}') == {"a": 1.5}
    # A browser sends a text area's line breaks as CRLF and counts each as one character for maxlength.
    assert forms.convert("textarea", "one\r\ntwo\r\n") == "one\ntwo"


def test_text_fields_carry_the_nodes_length_limit() -> None:
    text = {f.path: f for f in forms.fields_for(notifications.CATALOG["hotline.text"].json_schema())}
    assert text["text"].max_length == 10_000
    prenotify = {f.path: f for f in forms.fields_for(notifications.CATALOG["operation.prenotify"].json_schema())}
    assert prenotify["target_group"].max_length == 200 and prenotify["objective"].max_length == 5_000
    assert prenotify["window.start"].max_length is None and prenotify["area.polygon"].max_length is None


# -- in a node's app ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    return info


def signed_in(client: TestClient) -> str:
    """Log in as pk-dgmo; return the CSRF token of the dgmo channel page."""
    client.cookies.clear()
    assert login(client, "pk-dgmo").status_code == 303
    page = client.get("/channel/dgmo")
    assert re.search(r'<textarea id="f-text" name="b.text" maxlength="10000"', page.text), page.text[:3000]
    return csrf_of(page)


def detail_of(page: httpx.Response) -> str:
    match = re.search(r'<p class="detail">([^<]*)</p>', page.text)
    assert match, page.text[:2000]
    return match.group(1)


def test_a_form_too_large_is_the_consoles_html_page_and_the_api_keeps_json(client: TestClient) -> None:
    token = signed_in(client)
    form = {"csrf": token, "type": "hotline.text", "precedence": "ROUTINE", "b.text": "x" * (MAX_BODY + 1)}
    page = client.post("/channel/dgmo/send", data=form)
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in page.headers and page.headers["cache-control"] == "no-store"
    assert "the form is larger than this node accepts (256 KiB)" in detail_of(page) and 'class="nav"' in page.text
    assert "Traceback" not in page.text and '"error"' not in page.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is met while the body streams in
        yield f"csrf={token}&type=hotline.text&precedence=ROUTINE&b.text=".encode()
        for _ in range(MAX_BODY // 10_000 + 2):
            yield b"y" * 10_000

    streamed = client.post("/channel/dgmo/send", content=chunks(),
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert streamed.status_code == 413 and "256 KiB" in detail_of(streamed)
    api = client.post("/api/v1/messages", content=b"{" + b" " * (MAX_BODY + 1) + b"}")
    assert api.status_code == 413 and api.json()["error"] == "TooLarge"
    assert "larger than 262144 bytes" in api.json()["detail"]
    thread = client.get("/channel/dgmo").text  # nothing was sent
    assert "x" * 100 not in thread and "y" * 100 not in thread


def test_an_encoded_slash_is_an_html_page_on_the_console_and_json_on_the_api(client: TestClient) -> None:
    signed_in(client)
    page = client.get("/case/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert detail_of(page) == "this address holds an encoded &#39;/&#39; (%2F): no page has one"
    assert "<script>alert" not in page.text
    client.cookies.clear()
    anonymous = client.get("/channel/x%2Fy")
    assert anonymous.status_code == 400 and anonymous.headers["content-type"].startswith("text/html")
    api = client.get("/api/v1/messages%2Fbatch")
    assert api.status_code == 400 and api.json()["error"] == "BadRequest"
    federation = client.get("/federation/v1%2Fx")
    assert federation.status_code == 400 and federation.json()["error"] == "BadRequest"


def test_an_altered_precedence_and_a_huge_codebook_number_are_sentences_on_the_page(client: TestClient) -> None:
    token = signed_in(client)
    form = {"csrf": token, "type": "hotline.text", "precedence": "URGENT", "b.text": "kept"}
    page = client.post("/channel/dgmo/send", data=form)
    assert page.status_code == 422
    assert "<li>Precedence must be one of: FLASH, IMMEDIATE, PRIORITY or ROUTINE.</li>" in page.text
    assert "validation error" not in page.text and ">kept</textarea>" in page.text
    code = {"csrf": token, "type": "code", "code": "EVACUATE-AREA", "precedence": "FLASH", "p.radius_km": "1e999",
            "p.place": "Sirkan"}  # fmt: skip
    page = client.post("/channel/dgmo/send", data=code)
    assert page.status_code == 422 and "Radius km must be a finite number from 0 to" in page.text
    assert "canonicalised" not in page.text and "JCS" not in page.text
