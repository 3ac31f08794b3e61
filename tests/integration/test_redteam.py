"""Attacks on two real nodes that once worked: a hostile peer, a client on loopback, a deep body.

Each test is named for what it refused; without its fix it fails. The nodes are this module's own:
the last test stops Iran's node and answers in its place, as a hostile peer holding its key would.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from console_support import login
from detente.core import envelope as envelope_mod
from detente.core import wire
from detente.core.envelope import uuid7
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from support import Cluster, NodeProc, wait_for

DEEP = b"[" * 100_000 + b"]" * 100_000
GOOD = {"channel": "dgmo", "to": "pk:dgmo", "precedence": "ROUTINE", "type": "hotline.text", "body": {"text": "hi"}}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("redteam")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def signed_post(
    cluster: Cluster, sender: str, target: NodeProc, path: str, body: bytes, accepts: str | None = None
) -> httpx.Response:
    """POST `body` to a federation path of `target`, signed with `sender`'s node key as its node
    would; naming what it accepts (`detente-accepts`) if given, else as a node of the first release."""
    config = load_config(cluster[sender].data)
    signer, agreement = config.signer(), config.agreement()
    headers = wire.sign_request(
        signer, sender, wire.ratify(agreement, signer), agreement, "POST", path, body, int(time.time()), target.party
    )
    headers["Content-Type"] = "application/json"
    if accepts is not None:
        headers[wire.ACCEPTS_HEADER] = accepts
    return httpx.post(target.url + path, content=body, headers=headers, verify=target.context, timeout=30)


@pytest.mark.parametrize("path", ["/federation/v1/envelopes", "/federation/v1/log/proof/inclusions"])
def test_a_peer_body_nested_thousands_deep_is_refused_not_an_internal_error(nodes: Cluster, path: str) -> None:
    response = signed_post(nodes, "pk", nodes["ir"], path, b'{"envelopes": ' + DEEP + b"}")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "MalformedError"


def test_an_overdue_notice_on_another_channel_than_its_message_is_refused(nodes: Cluster) -> None:
    """pk's key seals a notice from pk:fs to ir:fs about a DGMO message: it would alert ir:fs's desk."""
    ir = nodes["ir"]
    sent = ir.created("ir-dgmo", "/api/v1/messages", GOOD)
    config = load_config(nodes["pk"].data)
    notice = envelope_mod.seal(
        {
            "v": 1, "id": uuid7(), "agreement": config.agreement().hash, "channel": "fs", "from": "pk:fs",
            "to": "ir:fs", "seq": 1, "author": "system", "precedence": "ROUTINE", "type": "overdue", "lang": "en",
            "refs": [sent["id"]], "case": None, "created": format_time(now()),
            "body": {"deadline": "2024-01-16T13:05:00.000Z", "notify": []},
        },
        config.signer(),
    )  # fmt: skip
    response = signed_post(
        nodes, "pk", ir, "/federation/v1/envelopes", json.dumps({"envelopes": [notice.data]}).encode()
    )
    result = response.json()["results"][0]
    assert result.get("error") == "Invalid", result
    assert "channel 'dgmo', not 'fs'" in result["detail"]


def test_x_forwarded_for_does_not_reset_the_login_limit_per_address(nodes: Cluster) -> None:
    """A client on loopback (a local TCP forwarder's) naming other addresses is still one address."""
    statuses = []
    for n in range(21):  # the limit is 20 failures per address; each name fails once only
        with nodes["pk"].client() as client:
            client.headers["X-Forwarded-For"] = f"198.51.100.{n}"
            statuses.append(login(client, f"nobody-{n}", "not the password").status_code)
    assert statuses == [401] * 20 + [429]


class _Endless(BaseHTTPRequestHandler):
    """A hostile peer's answer to anything: 200, then 64 MiB and more, chunked, with no end announced."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(1024):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the node stopped reading: what the test wants
        self.close_connection = True

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_nothing_a_peer_of_an_earlier_release_would_refuse_is_queued_to_it(nodes: Cluster) -> None:
    """Upgrade QA: a translation refused by a peer of the first release held its channel, FLASH included."""
    pk, ir = nodes["pk"], nodes["ir"]
    this_release = " ".join(wire.ACCEPTS)
    empty = b'{"envelopes": []}'
    translation = {"lang": "fa", "text": "پیام آزمایشی"}
    for _attempt in range(5):
        message = pk.created("pk-dgmo", "/api/v1/messages", {**GOOD, "to": "ir:dgmo"})["id"]
        wait_for(lambda m=message: ir.message("ir-dgmo", m, missing_ok=True) != {}, what="the message at ir")
        # pk's node as of the first release: its signed requests name nothing it accepts.
        answer = signed_post(nodes, "pk", ir, "/federation/v1/envelopes", empty)
        assert answer.status_code == 200 and answer.headers[wire.ACCEPTS_HEADER] == this_release  # ir names its own
        with ir.client("ir-translator1") as client:
            refused = client.post(f"/api/v1/messages/{message}/translations", json=translation)
        if refused.status_code != 201:
            break
        # The real pk node spoke in between (a link test each second names what it accepts): again.
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "pk's node runs an earlier release, which cannot take translations or their reviews: "
        "nothing was sent; translate once pk has upgraded"
    )
    assert ir.message("ir-translator1", message).get("translations", []) == []
    # Upgraded, pk's node says so with its next request (or answer): the translation goes.
    signed_post(nodes, "pk", ir, "/federation/v1/envelopes", empty, accepts=this_release)
    sent = ir.created("ir-translator1", f"/api/v1/messages/{message}/translations", translation)
    wait_for(lambda: pk.message("pk-dgmo", sent["id"], missing_ok=True) != {}, what="the translation at pk")


def test_a_peer_answering_without_end_is_refused_as_it_streams_in(nodes: Cluster) -> None:
    """Iran's key in hostile hands answers gigabytes: Pakistan stops reading at its limit, not at its memory's."""
    pk, ir = nodes["pk"], nodes["ir"]
    ir.stop()
    address = urlsplit(ir.url)
    server = ThreadingHTTPServer((address.hostname or "127.0.0.1", address.port or 443), _Endless)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ir.data / "tls.crt", ir.data / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:

        def refused() -> bool:
            with pk.client("pk-admin") as client:
                links: list[dict[str, Any]] = client.get("/api/v1/links").json()["links"]
            return any("answered more than" in (link["last_error"] or "") for link in links)

        wait_for(refused, timeout=15, what="pk to refuse the endless answer")
    finally:
        server.shutdown()
        server.server_close()
