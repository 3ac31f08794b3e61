"""Form errors as plain sentences naming their field, text limits in the form, and HTML refusals for the console.

The sentences are built from what the node really answers (`notifications.validate_message`), and the
pages from a node's app in process: a form too large (413) and an address holding `%2F` (400) are the
console's HTML error page, while the same refusals under `/api/` stay JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
    assert placed == {"area.polygon": "Area · Polygon, line 3: “bad line” is not a position; write the latitude "
                                      "and longitude in degrees, for example “27.5, 63.1”."}  # fmt: skip
    assert rest == []
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.area.polygon": "27, 63\n95, 1\n28, 64"})
    assert placed["area.polygon"] == "Area · Polygon, line 2: the latitude must be less than or equal to 90."


@pytest.mark.parametrize(
    ("typed", "said"),
    [("NaN", "Location · Latitude must be a number from -90 to 90, not “NaN”."),
     ("inf", "Location · Latitude must be a number from -90 to 90, not “inf”."),
     ("east", "Location · Latitude must be a number from -90 to 90, not “east”."),
     ("95", "Location · Latitude must be a number from -90 to 90, not “95”.")],
)  # fmt: skip
def test_a_latitude_that_is_no_number_or_out_of_range_says_so(typed: str, said: str) -> None:
    form = {"b.kind": "strike", "b.time": "2024-01-16 13:05", "b.location.lat": typed, "b.location.lon": "63",
            "b.location.place": "Panjgur", "b.description": "Fire.", "b.assessment": "Unknown."}  # fmt: skip
    placed, rest = refused("incident.report", form)
    assert placed == {"location.lat": said} and rest == []


def test_a_huge_radius_is_not_infinity_and_a_whole_number_is_asked_for_as_such() -> None:
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.area.radius_km": "1e999"})
    assert placed["area.radius_km"] == "Area · Radius must be a number from 0 to 1000, not “1e999”."
    form = {"b.escalation": "3.5", "b.casualties.killed": "-1"}
    placed, _ = refused("incident.report", form)
    assert placed["escalation"] == "Escalation level must be a whole number from 0 to 5, not “3.5”."
    # A number out of its range is said like one that is no number: the same words, the bounds written plainly.
    assert placed["casualties.killed"] == "Casualties · Killed must be a whole number from 0 to 1000000, not “-1”."
    assert placed["description"] == "Description is required."


def test_a_rule_without_a_subject_gets_the_fields_name_and_members_are_named_as_the_form_names_them() -> None:
    form = {"b.kind": "strike", "b.time": "9999-12-31 23:59", "b.location.lat": "26", "b.location.lon": "63",
            "b.location.place": "Panjgur", "b.description": "Fire.", "b.assessment": "Unknown."}  # fmt: skip
    placed, rest = refused("incident.report", form, Precedence.ROUTINE)
    # No "0 min" when the minutes are whole: in the minute before an hour the time is "N h" (a flake, 1 in 60).
    assert re.fullmatch(
        r"Time is \d+ h( \d+ min)? after the message was created; it must be in the past\.", placed["time"]
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


def test_a_time_the_node_cannot_read_is_said_in_the_forms_format_under_the_label_shown() -> None:
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.window.start": "tomorrow"})
    assert placed["window.start"] == "Window · Start must be a UTC time written like 2024-01-16 13:05, not “tomorrow”."
    placed, _ = refused("operation.prenotify", {**PRENOTIFY, "b.window.start": "2030-02-30 10:00"})
    assert placed["window.start"] == "Window · Start: “2030-02-30 10:00” is not a real date and time."


MINUTES_FORM = {"b.text": "Agreed.", "b.items.0.title": "", "b.items.0.owner": "", "b.items.0.due": "",
                "b.items.1.title": "Post a liaison officer at Turbat", "b.items.1.owner": "ir:fs",
                "b.items.1.due": "2030-12-01 06:00", "b.items.2.title": "Share patrol schedules",
                "b.items.2.owner": "pk:dgmo", "b.items.2.due": "next week"}  # fmt: skip


def test_action_items_are_rows_of_inputs_numbered_in_order_and_errors_land_on_their_cell() -> None:
    fields = forms.fields_for(notifications.CATALOG["consultation.minutes"].json_schema())
    items = next(f for f in fields if f.path == "items")
    assert items.kind == "rows" and [c.path for c in items.typed_columns] == ["title", "owner", "due"]
    form = forms.compact_rows(fields, MINUTES_FORM)  # the blank first row is left out: the node counts from 0 too
    body = forms.body_from_form(fields, form)
    assert body["items"] == [
        {"id": "A1", "title": "Post a liaison officer at Turbat", "owner": "ir:fs", "due": "2030-12-01T06:00:00Z"},
        {"id": "A2", "title": "Share patrol schedules", "owner": "pk:dgmo", "due": "next week"},
    ]
    assert items.rows(forms.values_of(form)) == range(2) and items.rows({}) == range(1)
    placed, rest = refused("consultation.minutes", form, Precedence.ROUTINE)
    said = "Items, A2 · Due must be a UTC time written like 2024-01-16 13:05, not “next week”."
    assert placed == {"items.1.due": said} and [r.split(":")[0] for r in rest] == ["In reply to"]  # no refs here
    # Evidence stays a JSON list (the upload fills it); a digest typed in capitals is sent as the record writes it.
    report = {f.path: f for f in forms.fields_for(notifications.CATALOG["action.report"].json_schema())}
    assert report["evidence"].kind == "json"
    cosign = forms.fields_for(notifications.CATALOG["consultation.cosign"].json_schema())
    assert forms.body_from_form(cosign, {"b.sha256": " " + "AB" * 32 + "\n"}) == {"sha256": "ab" * 32}


def test_a_row_number_altered_by_hand_is_not_read() -> None:
    fields = forms.fields_for(notifications.CATALOG["consultation.minutes"].json_schema())
    form = {"b.text": "x", "b.items.99999.title": "far", "b.items." + "9" * 5000 + ".title": "farther"}
    assert forms.body_from_form(fields, forms.compact_rows(fields, form)) == {"text": "x"}


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
    said = "Precedence must be one of: FLASH, IMMEDIATE, PRIORITY or ROUTINE."
    assert f'<li><bdi dir="ltr" lang="en">{said}</bdi></li>' in page.text
    assert "validation error" not in page.text and ">kept</textarea>" in page.text
    code = {"csrf": token, "type": "code", "code": "EVACUATE-AREA", "precedence": "FLASH", "p.radius_km": "1e999",
            "p.place": "Sirkan"}  # fmt: skip
    page = client.post("/channel/dgmo/send", data=code)
    assert page.status_code == 422 and "Radius km must be a finite number from 0 to" in page.text
    assert "canonicalised" not in page.text and "JCS" not in page.text


def sent_id(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:3000]
    found = re.search(r"sent=([0-9a-f-]{36})", response.headers["location"])
    assert found
    return found.group(1)


def test_an_execution_without_consent_is_not_sent_until_the_officer_confirms_what_the_record_will_say(
    client: TestClient,
) -> None:
    token = signed_in(client)
    soon, later = datetime.now(UTC) + timedelta(hours=30), datetime.now(UTC) + timedelta(hours=32)
    prenotify = {**PRENOTIFY, "b.window.start": f"{soon:%Y-%m-%d %H:%M}", "b.window.end": f"{later:%Y-%m-%d %H:%M}",
                 "b.area.center.lat": "27.3", "b.area.center.lon": "62.3", "b.area.radius_km": "10"}  # fmt: skip
    opener = {"csrf": token, "type": "operation.prenotify", "precedence": "IMMEDIATE", **prenotify}
    action = sent_id(client.post("/channel/dgmo/send", data=opener, follow_redirects=False))
    notified = client.get(f"/api/v1/actions/{action}").json()["action"]["created"]
    page = client.get(f"/channel/dgmo?type=action.execute&refs={action}")
    assert "There is no consent to this operation: it is proposed." in page.text
    # The start is prefilled to the second, never before the notice.
    started = re.search(r'name="b.started" value="([^"]+)"', page.text)
    assert started and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", started.group(1))
    assert started.group(1).replace(" ", "T") + "Z" >= notified[:19] + "Z"
    form = {"csrf": token, "type": "action.execute", "precedence": "IMMEDIATE", "refs": action,
            "b.started": started.group(1)}  # fmt: skip
    # Sent without confirming: nothing is sent, and the page says what the record would say.
    page = client.post("/channel/dgmo/send", data=form)
    assert page.status_code == 422 and 'id="confirm-unilateral"' in page.text
    assert '<q dir="ltr" lang="en">executed without consent</q>' in page.text
    assert client.get(f"/api/v1/actions/{action}").json()["action"]["status"] == "proposed"
    # A confirmation of other reasons does not do: a start before the notice adds one.
    early = {**form, "b.started": "2020-01-01 00:00", "unilateral": "executed without consent"}
    page = client.post("/channel/dgmo/send", data=early)
    assert page.status_code == 422 and "executed without consent; executed before it was notified" in page.text
    assert client.get(f"/api/v1/actions/{action}").json()["action"]["status"] == "proposed"
    confirmed = {**form, "unilateral": "executed without consent"}
    response = client.post("/channel/dgmo/send", data=confirmed, follow_redirects=False)
    sent_id(response)
    state = client.get(f"/api/v1/actions/{action}").json()["action"]
    assert (state["status"], state["unilateral_reason"]) == ("executed", "executed without consent")
    # The notice of the page it returns to says it again, as the signed record now does.
    notice = re.search(r'<p class="notice[^"]*" role="status">(.*?)</p>', client.get(response.headers["location"]).text)
    assert notice and notice.group(1).startswith("Sent.")
    assert "The record says this operation was executed unilaterally: executed without consent." in notice.group(1)


def test_adding_a_row_of_action_items_sends_nothing_and_keeps_what_was_typed(client: TestClient) -> None:
    token = signed_in(client)
    page = client.get("/channel/dgmo?type=consultation.minutes")
    assert 'name="b.items.0.title"' in page.text and 'name="b.items.1.title"' not in page.text
    assert '<option value="ir:lo-turbat" >ir:lo-turbat — Iranian liaison officer, Turbat</option>' in page.text
    form = {"csrf": token, "type": "consultation.minutes", "precedence": "ROUTINE", "b.text": "Agreed.",
            "b.items.0.title": "Share patrol schedules", "b.items.0.owner": "pk:dgmo", "add_row": "items"}  # fmt: skip
    before = client.get("/channel/dgmo").text.count('class="msg ')
    page = client.post("/channel/dgmo/send", data=form)
    assert page.status_code == 200 and re.search(r'name="b.items.1.title"[^>]* value=""', page.text)
    assert re.search(r'name="b.items.0.title"[^>]* value="Share patrol schedules"', page.text)
    assert '<option value="pk:dgmo" selected>' in page.text and "did not accept" not in page.text
    assert client.get("/channel/dgmo").text.count('class="msg ') == before
