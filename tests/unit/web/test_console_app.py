"""The console in process (one real node, no peer running): login, sessions, CSRF, headers, forms, languages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from console_support import BASE, csrf_of, login
from detente.errors import Unavailable
from detente.node.demo import setup_demo
from detente.web import federation

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    return info


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/channel/dgmo", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/channel/dgmo"


def test_login_sets_a_strict_host_only_cookie_and_the_pages_carry_a_strict_policy(client: TestClient) -> None:
    page = client.get("/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text and " onclick=" not in page.text
    response = login(client, "pk-dgmo", next="/channel/dgmo")
    assert response.status_code == 303 and response.headers["location"] == "/channel/dgmo"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-detente-pk="))
    assert all(flag in cookie.lower() for flag in ("httponly", "secure", "samesite=strict", "path=/"))
    assert "domain=" not in cookie.lower() and "max-age" not in cookie.lower()
    assert client.get("/").status_code == 200


def test_login_refuses_a_missing_csrf_token_a_wrong_password_and_an_open_redirect(client: TestClient) -> None:
    client.get("/login")
    forged = client.post("/login", data={"name": "pk-dgmo", "password": "pk-dgmo-demo"}, follow_redirects=False)
    assert forged.status_code == 403 and "__Host-detente-pk=" not in forged.headers.get("set-cookie", "")
    wrong = login(client, "pk-fs", "not-it")
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    assert login(client, "nobody", "x").text.count("Wrong name or password.") == 1
    away = login(client, "pk-fs", next="//evil.example/")
    assert away.headers["location"] == "/"


def test_wrong_passwords_are_rate_limited_per_name(client: TestClient) -> None:
    for _ in range(5):
        assert login(client, "pk-lo-zahedan", "wrong").status_code == 401
    blocked = login(client, "pk-lo-zahedan")  # even the right password waits now
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert login(client, "pk-fs").status_code == 303  # other names are not blocked


def test_logout_ends_the_session_even_for_a_copied_cookie(client: TestClient) -> None:
    login(client, "pk-fs")
    copied = client.cookies.get("__Host-detente-pk")
    token = csrf_of(client.get("/"))
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).headers["location"] == "/login?bye=1"
    client.cookies.set("__Host-detente-pk", copied or "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_works_on_the_api_only_with_the_csrf_header_for_writes(client: TestClient) -> None:
    login(client, "pk-dgmo")
    assert client.get("/api/v1/me").json()["name"] == "pk-dgmo"
    token = csrf_of(client.get("/"))
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
               "body": {"text": "session"}}  # fmt: skip
    # QA: the 401 said "send 'Authorization: Bearer <token>'"; it names what the session's write lacks.
    missing = client.post("/api/v1/messages", json=request)
    assert missing.status_code == 401 and missing.json() == {
        "error": "Unauthorized",
        "detail": "a write with the console session needs its CSRF token in 'X-CSRF-Token'",
    }
    wrong = client.post("/api/v1/messages", json=request, headers={"X-CSRF-Token": token[::-1]})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "'X-CSRF-Token' is not this console session's CSRF token"
    assert client.post("/api/v1/messages", json=request, headers={"X-CSRF-Token": token}).status_code == 201
    foreign = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
    assert client.post("/api/v1/messages", json=request, headers=foreign).status_code == 401


def test_the_stream_takes_the_session_cookie_but_not_from_a_foreign_origin(client: TestClient) -> None:
    login(client, "pk-dgmo")
    with client.websocket_connect("wss://testserver/api/v1/stream", headers={"Origin": BASE}) as ws:
        assert ws.receive_json()["event"] == "hello"
    with client.websocket_connect("wss://testserver/api/v1/stream", headers={"Origin": "https://evil.example"}) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def test_another_offices_channel_is_a_403_page(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/channel/fs")
    assert page.status_code == 403 and "Not allowed" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert client.get("/channel/nope").status_code == 404
    assert client.get("/admin").status_code == 403


def test_a_form_with_a_bad_field_comes_back_with_the_error_on_it(client: TestClient) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/channel/dgmo?type=clarification.request"))
    form = {"csrf": token, "type": "clarification.request", "precedence": "IMMEDIATE", "b.questions": "",
            "b.deadline": "not a time"}  # fmt: skip
    page = client.post("/channel/dgmo/send", data=form)
    assert page.status_code == 422
    assert re.search(r'id="f-questions"[^>]*aria-invalid="true"', page.text)
    # The form's own format and label, not the node's "RFC 3339"; English, a left-to-right isolate on any page.
    said = "Deadline must be a UTC time written like 2024-01-16 13:05, not “not a time”."
    error = f'<p class="field-error" id="f-deadline-error"><bdi dir="ltr" lang="en">{said}</bdi></p>'
    assert error in page.text and "RFC 3339" not in page.text
    no_token = client.post("/channel/dgmo/send", data={**form, "csrf": ""})
    assert no_token.status_code == 403


def test_a_status_form_with_a_code_altered_by_hand_says_what_is_wrong(client: TestClient) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/"))
    page = client.post("/status", data={"csrf": token, "peer": "ir", "code": "PANIC", "note": ""})
    assert page.status_code == 422
    assert "code: Input should be" in page.text and "AWAITING_AUTHORITY" in page.text
    assert "validation error for" not in page.text


def test_sending_a_codebook_message_and_reading_it_in_each_language(client: TestClient) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/channel/dgmo"))
    form = {"csrf": token, "type": "code", "code": "NO-HOSTILE-INTENT", "precedence": "FLASH", "p.place": "Panjgur"}
    sent = client.post("/channel/dgmo/send", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:2000]
    # Each value filled into a codebook text is an isolate of its own.
    said = 'The activity at <bdi dir="ltr">Panjgur</bdi> is not directed against your state.'
    assert said in client.get("/channel/dgmo").text
    client.get("/?lang=ur")  # stored for the operator
    urdu = '<bdi dir="ltr">Panjgur</bdi> میں جاری سرگرمی آپ کی ریاست کے خلاف نہیں ہے'
    assert urdu in client.get("/channel/dgmo").text
    missing = client.post("/channel/dgmo/send", data={**form, "p.place": ""})
    assert missing.status_code == 422 and "needs parameter place" in missing.text
    client.get("/?lang=en")


def test_the_language_is_the_operators_and_persian_shows_the_solar_hijri_date(client: TestClient) -> None:
    login(client, "pk-fs", lang="fa")
    page = client.get("/")
    assert '<html lang="fa" dir="rtl" data-theme=' in page.text and 'class="hijri"' in page.text
    switched = client.get("/cases?lang=ur", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/cases"
    assert '<html lang="ur" dir="rtl" data-theme=' in client.get("/cases").text
    assert client.get("/api/v1/me").json()["lang"] == "ur"
    client.get("/?lang=en")


def test_the_admin_screen_shows_operators_and_the_ratified_agreement(client: TestClient, demo: dict[str, Any]) -> None:
    login(client, "pk-admin")
    page = client.get("/admin")
    assert page.status_code == 200
    assert demo["agreement_hash"] in page.text and "signature verifies" in page.text
    assert "pk-lo-zahedan" in page.text


@pytest.mark.parametrize("path", ["/", "/channel/dgmo", "/cases", "/record", "/strip", "/?fragment=1"])
def test_every_screen_renders_for_a_supervisor(client: TestClient, path: str) -> None:
    login(client, "pk-supervisor")
    response = client.get(path)
    assert response.status_code == 200, response.text[:2000]


def test_a_peer_is_not_told_what_is_down_here(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # A federation answer 503 keeps this state's database address to itself (its own log has it).
    detail = "the database postgresql+psycopg://detente@db.pk.internal/hotline is unavailable: refused"

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise Unavailable(detail)

    monkeypatch.setattr(federation.wire, "verify_request", down)
    refused = client.get("/federation/v1/health")
    assert refused.status_code == 503
    assert refused.json() == {"error": "Unavailable", "detail": "this node cannot answer now; try again later"}


def test_the_compose_form_signs_the_language_the_text_is_written_in(client: TestClient) -> None:
    """Translator QA: the console tagged every text with the page's language, an Urdu one read in English too."""
    login(client, "pk-dgmo")
    page = client.get("/channel/dgmo")
    assert '<option value="en" lang="en" selected>English</option>' in page.text  # the page's language first
    form = {
        "csrf": csrf_of(page),
        "type": "hotline.text",
        "precedence": "ROUTINE",
        "b.text": "پنجگور کے قریب",
        "lang": "ur",
    }
    sent = client.post("/channel/dgmo/send", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:2000]
    message = re.search(r"sent=([0-9a-f-]{36})", sent.headers["location"])
    assert message is not None
    assert client.get(f"/api/v1/messages/{message.group(1)}").json()["envelope"]["lang"] == "ur"
    refused = client.post("/channel/dgmo/send", data={**form, "lang": "de"})
    assert refused.status_code == 422 and "language &#39;de&#39; is not one of the agreement" in refused.text


def test_a_clarification_has_its_own_page_for_the_offices_that_see_it(client: TestClient) -> None:
    login(client, "pk-dgmo")
    form = {"csrf": csrf_of(client.get("/channel/dgmo")), "type": "clarification.request", "precedence": "IMMEDIATE",
            "b.questions": "Whose drone was it?\nWhere did it take off?"}  # fmt: skip
    sent = client.post("/channel/dgmo/send", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:2000]
    found = re.search(r"sent=([0-9a-f-]{36})", sent.headers["location"])
    assert found is not None
    request = found.group(1)
    page = client.get(f"/clarification/{request}")
    assert page.status_code == 200 and '<span class="state s-open">' in page.text
    assert "<bdi>pk:dgmo</bdi> → <bdi>ir:dgmo</bdi>" in page.text and '<dd><bdi dir="ltr">2</bdi></dd>' in page.text
    assert page.text.count('<article class="msg') == 1 and "Whose drone was it?" in page.text  # its card
    assert 'class="button small"' not in page.text  # the asking side waits: nothing for it to send
    assert f'<a href="/clarification/{request}" class="workflow-link">' in page.text  # the card links to the page
    live = client.get(f"/clarification/{request}?fragment=1")
    assert live.status_code == 200 and "<html" not in live.text and "s-open" in live.text
    # The ministry never touched it: a 404 page, as the API answers; so are an unknown id and an overlong one.
    client.cookies.clear()
    assert login(client, "pk-fs").status_code == 303
    assert client.get(f"/api/v1/clarifications/{request}").status_code == 404
    for path in (f"/clarification/{request}", "/action/" + "0" * 36, "/consultation/" + "a" * 65):
        hidden = client.get(path)
        assert hidden.status_code == 404 and "Not found" in hidden.text and "drone" not in hidden.text, path
        assert hidden.headers["content-type"].startswith("text/html")
