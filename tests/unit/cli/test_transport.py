"""Only a 2xx JSON object of the expected shape is an answer; anything else is one clear error."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import typer

from detente.cli.client import _warn_if_link_down
from detente.cli.transport import API, ApiError, UnexpectedAnswer, base_url, call, check_token, shape
from detente.errors import BadRequest, Error, Unavailable


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
        ("https://127.0.0.1:8443/api/v1", "https://127.0.0.1:8443"),  # the `api` entry of demo.json
        ("https://127.0.0.1:8443/api/v1/", "https://127.0.0.1:8443"),
        ("https://hotline.example/pk/api/v1", "https://hotline.example/pk"),  # behind a path prefix
        ("https://hotline.example/pk/", "https://hotline.example/pk"),
    ],
)
def test_the_base_url_drops_a_trailing_slash_and_api_v1(given: str, base: str) -> None:
    assert base_url(given) == base


def test_a_token_is_checked_not_echoed() -> None:
    assert check_token("dtn_abc-_XYZ") == "dtn_abc-_XYZ"
    with pytest.raises(typer.BadParameter, match="the token is empty"):
        check_token("")
    with pytest.raises(typer.BadParameter) as refused:
        check_token("dtn_secret value")
    assert "secret" not in str(refused.value)


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="https://node.test" + API, transport=httpx.MockTransport(handler))


def _answer(status: int, **kwargs: Any) -> httpx.Client:
    return _client(lambda request: httpx.Response(status, **kwargs))


def test_a_json_object_of_the_right_shape_is_the_answer() -> None:
    with _answer(200, json={"messages": [], "more": False}) as client:
        assert call(client, "GET", "/messages", expect={"messages": list}) == {"messages": [], "more": False}
    with _answer(201, json={"id": "x", "seq": 1}) as client:
        assert call(client, "POST", "/status", expect={"id": str, "seq": int})["seq"] == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_not_an_empty_answer(status: int) -> None:
    with _answer(status, headers={"location": "https://node.test/api/v1/messages"}) as client:
        with pytest.raises(UnexpectedAnswer) as raised:
            call(client, "GET", "/messages/")
    text = raised.value.diagnostics()
    assert f"with {status} " in text and "https://node.test/api/v1/messages" in text and "check --url" in text


def test_the_node_error_reads_as_the_readme_shows_it() -> None:
    body = {"error": "Forbidden", "detail": "operator pk-fs is not bound to office pk:dgmo"}
    with _answer(403, json=body) as client:
        with pytest.raises(ApiError) as raised:
            call(client, "POST", "/messages", json={})
    assert raised.value.diagnostics() == "Forbidden: operator pk-fs is not bound to office pk:dgmo"
    assert raised.value.status_code == 403 and isinstance(raised.value, Error)


@pytest.mark.parametrize(
    ("status", "kwargs", "says"),
    [
        (502, {"text": "<html>Bad Gateway</html>"}, "with 502 Bad Gateway"),
        (500, {"json": ["not", "an", "error"]}, "with 500 Internal Server Error"),
        (200, {"text": "<html>console</html>"}, "is not a JSON object"),
        (200, {"json": [1, 2]}, "is not a JSON object"),
        (200, {"content": b""}, "has no 'messages' (list)"),
        (200, {"json": {"links": []}}, "has no 'messages' (list)"),
        (200, {"json": {"messages": {"a": 1}}}, "has no 'messages' (list)"),
    ],
)
def test_any_other_answer_is_one_clear_error(status: int, kwargs: dict[str, Any], says: str) -> None:
    with _answer(status, **kwargs) as client:
        with pytest.raises(UnexpectedAnswer, match=re.escape(says)) as raised:
            call(client, "GET", "/messages", expect={"messages": list})
    assert "GET /api/v1/messages" in raised.value.diagnostics()


def test_shape_tells_true_from_an_integer() -> None:
    assert shape({"seq": 3}, {"seq": int}, "x") == {"seq": 3}
    with pytest.raises(UnexpectedAnswer, match="has no 'seq' \\(integer\\)"):
        shape({"seq": True}, {"seq": int}, "the answer")
    with pytest.raises(UnexpectedAnswer, match="is not a JSON object"):
        shape("text", {}, "an item")


def test_a_node_that_cannot_be_reached_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with _client(refuse) as client:
        with pytest.raises(Unavailable, match="node at https://node.test/api/v1/: Connection refused") as refused:
            call(client, "GET", "/links")
    assert refused.value.detail.endswith(
        "(nothing listens there: is `detente serve` running for this node, on this address?)"
    )


def test_a_node_holding_another_certificate_is_named_as_such() -> None:
    def other(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate")

    with _client(other) as client:
        with pytest.raises(Unavailable, match="does not hold the certificate given: check that --cacert"):
            call(client, "GET", "/links")

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _client(timeout) as client:  # no guess where none is sure
        with pytest.raises(Unavailable) as unsure:
            call(client, "GET", "/links")
    assert unsure.value.detail == "cannot reach the node at https://node.test/api/v1/: timed out"


def test_a_url_too_long_to_send_is_a_bad_request() -> None:
    with _answer(200, json={}) as client:
        with pytest.raises(BadRequest, match="cannot build the request"):
            call(client, "GET", "/codebook", params={"lang": "x" * 70_000})


def _links(*links: dict[str, Any]) -> httpx.Client:
    return _answer(200, json={"links": list(links)})


def test_after_a_send_only_the_addressed_links_not_up_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    down = {"peer": "ir", "state": "DEGRADED", "since": "2024-01-16T13:05:00.000Z", "last_error": "no\x1b[2J answer"}
    other = {"peer": "af", "state": "DOWN", "since": None, "last_error": "never contacted"}
    with _links(down, other) as client:
        _warn_if_link_down(client, ["ir:dgmo", "ir:fs"])
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        "warning: the link to ir is DEGRADED since 2024-01-16T13:05:00.000Z: no\\x1b[2J answer; "
        "the message is queued and goes when ir answers\n"
    )
    with _links({**down, "state": "UP"}, other) as client:
        _warn_if_link_down(client, ["ir:dgmo", "not an office", 7])
    assert capsys.readouterr().err == ""


def test_after_a_send_links_that_cannot_be_read_are_a_warning_not_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _answer(403, json={"error": "Forbidden", "detail": "no role that may read links"}) as client:
        _warn_if_link_down(client, ["ir:dgmo"])
    assert capsys.readouterr().err == (
        "warning: sent, but the link state could not be read: Forbidden: no role that may read links\n"
    )
