"""Bad input to the operator API gets a clear 4xx and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from support import Cluster, quiet, service_free_counts

GOOD = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text", "body": {"text": "hi"}}


def _post(cluster: Cluster, operator: str | None, payload: Any = None, content: bytes | None = None, **kw: Any) -> Any:
    with cluster["pk"].client(operator) as client:
        if content is not None:
            return client.post("/api/v1/messages", content=content, headers={"Content-Type": "application/json"})
        return client.post("/api/v1/messages", json=payload, **kw)


CASES = [
    ("malformed JSON", "pk-dgmo", None, b'{"channel": "dgmo",', 400, "MalformedError", "not valid JSON"),
    ("unknown field", "pk-dgmo", {**GOOD, "colour": "red"}, None, 422, "Invalid", "colour: unknown field"),
    ("wrong type", "pk-dgmo", {**GOOD, "body": "text"}, None, 422, "Invalid", "body"),
    ("precedence not a string", "pk-dgmo", {**GOOD, "precedence": 1}, None, 422, "Invalid", "precedence"),
    ("unknown precedence", "pk-dgmo", {**GOOD, "precedence": "URGENT"}, None, 422, "Invalid", "precedence"),
    ("unknown channel", "pk-dgmo", {**GOOD, "channel": "navy"}, None, 422, "Invalid", "unknown channel 'navy'"),
    ("unknown office", "pk-dgmo", {**GOOD, "to": "ir:navy"}, None, 422, "Invalid", "not at either end"),
    ("own office", "pk-dgmo", {**GOOD, "to": "pk:dgmo"}, None, 422, "Invalid", "own party"),
    ("unknown type", "pk-dgmo", {**GOOD, "type": "rumour"}, None, 422, "Invalid", "unknown message type 'rumour'"),
    ("service type", "pk-dgmo", {**GOOD, "type": "ack", "body": {}}, None, 422, "Invalid", "its own action"),
    ("empty text", "pk-dgmo", {**GOOD, "body": {"text": ""}}, None, 422, "Invalid", "body.text"),
    ("extra body field", "pk-dgmo", {**GOOD, "body": {"text": "x", "x": 1}}, None, 422, "Invalid", "body.x"),
    ("unknown ref", "pk-dgmo", {**GOOD, "refs": ["01a20000-0000-7000-8000-000000000000"]}, None, 422, "Invalid",
     "no envelope"),
    ("wrong language", "pk-dgmo", {**GOOD, "lang": "de"}, None, 422, "Invalid", "language 'de'"),
    ("office not held", "pk-fs", GOOD, None, 403, "Forbidden", "not bound to office pk:dgmo"),
    ("auditor cannot send", "pk-admin", GOOD, None, 403, "Forbidden", "no role that may send"),
    ("no token", None, GOOD, None, 401, "Unauthorized", "Bearer"),
    ("oversized", "pk-dgmo", None, b'{"x":"' + b"a" * 300_000 + b'"}', 413, "TooLarge", "larger than"),
    ("not UTF-8", "pk-dgmo", None, b'{"channel": "\xff"}', 400, "MalformedError", "not UTF-8"),
    ("nested too deeply", "pk-dgmo", None, b"[" * 100_000 + b"]" * 100_000, 400, "MalformedError", "nested too deeply"),
    ("a list, not an object", "pk-dgmo", [GOOD], None, 422, "Invalid", "request: must be a JSON object"),
    ("null", "pk-dgmo", None, b"null", 422, "Invalid", "request: must be a JSON object"),
    ("blank text", "pk-dgmo", {**GOOD, "body": {"text": " \n "}}, None, 422, "Invalid", "text: must not be blank"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("operator", "payload", "content", "status", "error", "detail"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_message_is_refused_and_nothing_is_written(
    pair: Cluster, operator: str | None, payload: Any, content: bytes | None, status: int, error: str, detail: str
) -> None:
    quiet(pair)
    before = {p: service_free_counts(n) for p, n in pair.nodes.items()}
    response = _post(pair, operator, payload, content)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert detail in body["detail"]
    assert "Traceback" not in response.text
    assert {p: service_free_counts(n) for p, n in pair.nodes.items()} == before


def test_a_chunked_body_over_the_limit_is_too_large(pair: Cluster) -> None:
    # No Content-Length: the limit is enforced while the body streams in, and still answered as 413.
    def chunks() -> Any:
        yield b'{"channel": "'
        for _ in range(40):
            yield b"a" * 8192
        yield b'"}'

    quiet(pair)
    before = service_free_counts(pair["pk"])
    with pair["pk"].client("pk-dgmo") as client:
        response = client.post("/api/v1/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "TooLarge", response.text
    assert service_free_counts(pair["pk"]) == before


def test_bad_token_is_refused(pair: Cluster) -> None:
    with pair["pk"].client(token="dtn_not-a-token") as client:
        response = client.get("/api/v1/messages")
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"


def test_field_errors_name_the_field(pair: Cluster) -> None:
    response = _post(pair, "pk-dgmo", {**GOOD, "body": {"text": ""}})
    assert response.status_code == 422
    assert "text" in response.json()["fields"]


def test_unknown_message_and_bad_decline(pair: Cluster) -> None:
    with pair["ir"].client("ir-dgmo") as client:
        missing = client.post("/api/v1/messages/01a20000-0000-7000-8000-000000000000/ack")
        assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
        no_reason = client.post("/api/v1/messages/01a20000-0000-7000-8000-000000000000/decline", json={})
        assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]


def test_a_long_id_is_echoed_clipped_in_the_error(pair: Cluster) -> None:
    # A URL of 5,000 characters is fine for the server; its whole "id" back in the answer is not.
    long_id = "a" * 5000
    with pair["pk"].client("pk-dgmo") as client:
        message = client.get(f"/api/v1/messages/{long_id}")
        case = client.get(f"/api/v1/cases/{long_id}")
        ack = client.post(f"/api/v1/messages/{long_id}/ack")
        spaced = client.get(f"/api/v1/messages/{'b' * 150} c")
    for response, kind in ((message, "message"), (case, "case"), (ack, "message")):
        assert response.status_code == 404, response.text
        assert response.json() == {
            "error": "NotFound",
            "detail": f"no {kind} {'a' * 200}… (5000 characters) for your offices",
        }
    # A run within the bound is repeated whole: ids, hashes and signatures are much shorter.
    assert spaced.json()["detail"] == f"no message {'b' * 150} c for your offices"


def test_unknown_route_and_method_are_json(pair: Cluster) -> None:
    with pair["pk"].client("pk-dgmo") as client:
        assert client.get("/api/v1/nothing").json()["error"] == "NotFound"
        assert client.delete("/api/v1/messages").json()["error"] == "MethodNotAllowed"


def test_openapi_document_is_served(pair: Cluster) -> None:
    with pair["pk"].client() as client:
        doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/messages" in doc["paths"] and "/api/v1/messages/{message_id}/ack" in doc["paths"]


@pytest.mark.parametrize("path", ["/api/v1/messages%2Fbatch", "/api/v1/messages%2fbatch", "/api%2Fv1/messages/batch"])
def test_an_encoded_slash_in_the_path_is_refused_not_routed(pair: Cluster, path: str) -> None:
    # Decoded before routing, `messages%2Fbatch` would reach the batch route and send the batch.
    quiet(pair)
    before = service_free_counts(pair["pk"])
    with pair["pk"].client("pk-dgmo") as client:
        response = client.post(path, json={"messages": [GOOD]})
        listed = client.get("/api/v1/messages%2F")
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "BadRequest",
        "detail": "a URL path segment cannot hold an encoded '/' (%2F): no id holds one",
    }
    assert listed.status_code == 400 and listed.json()["error"] == "BadRequest"
    assert service_free_counts(pair["pk"]) == before
