"""A FLASH message and its acknowledgement between two real nodes over TLS."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import websockets

from cli_support import detente
from detente.core.precedence import format_time
from support import Cluster, NodeProc, run_async, wait_for


def send(node: NodeProc, operator: str, **fields: Any) -> dict[str, Any]:
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text", **fields}
    request.setdefault("body", {"text": "Explosions reported near Panjgur. Request clarification."})
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def state_is(node: NodeProc, operator: str, message_id: str, state: str) -> bool:
    with node.client(operator) as client:
        response = client.get(f"/api/v1/messages/{message_id}")
    return response.status_code == 200 and response.json()["state"] == state


def test_flash_message_is_delivered_receipted_and_acknowledged(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    sent = send(pk, "pk-dgmo")
    assert sent["state"] == "accepted" and sent["seq"] >= 1 and sent["log_index"] >= 0

    wait_for(lambda: state_is(pk, "pk-dgmo", sent["id"], "delivered"), what="the receipt")
    received = ir.message("ir-dgmo", sent["id"])
    assert received["direction"] == "in" and received["state"] == "delivered"
    assert received["precedence"] == "FLASH" and received["from"] == "pk:dgmo"
    assert received["body"]["text"].startswith("Explosions")
    # The deadline is the creation time plus 10 minutes (FLASH).
    assert received["deadline"][:13] >= received["created"][:13]

    outgoing = pk.message("pk-dgmo", sent["id"])
    receipt = outgoing["receipt"]
    assert receipt["node"] == "ir" and receipt["envelope"] == sent["id"]
    assert receipt["log_index"] == received["log_index"]
    # Both logs hold the byte-identical envelope.
    assert outgoing["envelope"] == received["envelope"]

    with ir.client("ir-dgmo") as client:
        ack = client.post(f"/api/v1/messages/{sent['id']}/ack", json={"note": "Received; investigating"})
    assert ack.status_code == 201, ack.text
    wait_for(lambda: state_is(pk, "pk-dgmo", sent["id"], "acknowledged"), what="the ack to travel back")
    outgoing = pk.message("pk-dgmo", sent["id"])
    assert outgoing["acknowledgement"]["type"] == "ack"
    assert outgoing["acknowledgement"]["refs"] == [sent["id"]]
    assert outgoing["response"]["note"] == "Received; investigating"
    assert ir.message("ir-dgmo", sent["id"])["state"] == "acknowledged"

    # A second acknowledgement is refused and changes nothing.
    with ir.client("ir-dgmo") as client:
        again = client.post(f"/api/v1/messages/{sent['id']}/ack")
    assert again.status_code == 409 and again.json()["error"] == "Conflict"


def test_answering_a_message_acknowledges_it_so_it_does_not_escalate(pair: Cluster) -> None:
    """QA: a FLASH answered (not acknowledged first) went overdue and alerted the alternates."""
    pk, ir = pair["pk"], pair["ir"]
    asked = send(pk, "pk-dgmo", body={"text": "Who fired at Panjgur? Answer at once."})
    wait_for(lambda: state_is(ir, "ir-dgmo", asked["id"], "delivered"), what="the question")
    # Another office's message referring to it is not an answer of the addressee's: nothing acknowledged.
    other = send(ir, "ir-fs", channel="fs", to="pk:fs", precedence="ROUTINE", refs=[asked["id"]],
                 body={"text": "FYI, seen."})  # fmt: skip
    assert ir.message("ir-dgmo", asked["id"])["state"] == "delivered"
    answer = send(ir, "ir-dgmo", to="pk:dgmo", precedence="IMMEDIATE", refs=[asked["id"]],
                  body={"text": "Not us; checking."})  # fmt: skip
    received = ir.message("ir-dgmo", asked["id"])
    assert received["state"] == "acknowledged", received
    ack = received["acknowledgement"]
    assert ack["type"] == "ack" and ack["body"] == {"note": "answered with hotline.text"}
    # The receipt is logged before the answer, on both nodes.
    assert ack["author"] == answer_author(ir, "ir-dgmo") and received["response"]["by"] == "ir-dgmo"
    assert ir.message("ir-dgmo", ack["id"])["log_index"] < answer["log_index"]
    wait_for(lambda: state_is(pk, "pk-dgmo", asked["id"], "acknowledged"), what="the acknowledgement to travel back")
    assert pk.message("pk-dgmo", asked["id"])["acknowledgement"]["id"] == ack["id"]
    # Answering again acknowledges nothing twice; acknowledging by hand is refused as for any answered message.
    send(ir, "ir-dgmo", to="pk:dgmo", precedence="ROUTINE", refs=[asked["id"]], body={"text": "Still checking."})
    assert ir.message("ir-dgmo", asked["id"])["acknowledgement"]["id"] == ack["id"]
    with ir.client("ir-dgmo") as client:
        assert client.post(f"/api/v1/messages/{asked['id']}/ack").status_code == 409
    assert other["id"] != answer["id"]


def answer_author(node: NodeProc, operator: str) -> str:
    """The operator id the node signs `operator`'s envelopes with."""
    with node.client(operator) as client:
        me: str = client.get("/api/v1/me").json()["id"]
    return me


def test_decline_travels_back_with_its_reason(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    sent = send(pk, "pk-dgmo", precedence="PRIORITY", body={"text": "Request a call at 1400Z"})
    wait_for(lambda: state_is(ir, "ir-dgmo", sent["id"], "delivered"))
    with ir.client("ir-dgmo") as client:
        response = client.post(f"/api/v1/messages/{sent['id']}/decline", json={"reason": "Awaiting authority"})
    assert response.status_code == 201, response.text
    wait_for(lambda: state_is(pk, "pk-dgmo", sent["id"], "declined"))
    assert pk.message("pk-dgmo", sent["id"])["response"]["note"] == "Awaiting authority"


def test_stream_shows_arrival_and_acknowledgement_live(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        headers_ir = {"Authorization": f"Bearer {ir.token('ir-dgmo')}"}
        headers_pk = {"Authorization": f"Bearer {pk.token('pk-dgmo')}"}
        ir_uri = ir.url.replace("https", "wss") + "/api/v1/stream"
        pk_uri = pk.url.replace("https", "wss") + "/api/v1/stream"
        async with (
            websockets.connect(ir_uri, ssl=ir.context, additional_headers=headers_ir) as ir_ws,
            websockets.connect(pk_uri, ssl=pk.context, additional_headers=headers_pk) as pk_ws,
        ):
            assert json.loads(await ir_ws.recv())["event"] == "hello"
            assert json.loads(await pk_ws.recv())["event"] == "hello"
            # The client offers permessage-deflate; the node declines it (CPU per event, and
            # compression beside a peer's text invites length side channels under TLS).
            assert ir_ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ir_ws.response.headers
            sent = await asyncio.to_thread(send, pk, "pk-dgmo")
            ir_events = await _collect(ir_ws, lambda e: e["event"] == "message" and e["id"] == sent["id"])
            with ir.client("ir-dgmo") as client:
                assert (await asyncio.to_thread(client.post, f"/api/v1/messages/{sent['id']}/ack")).status_code == 201
            pk_events = await _collect(pk_ws, lambda e: e["event"] == "acknowledged" and e["id"] == sent["id"])
            return ir_events, pk_events, sent["id"]

    ir_events, pk_events, sent_id = run_async(scenario())
    arrival = ir_events[-1]
    assert arrival["precedence"] == "FLASH" and arrival["from"] == "pk:dgmo" and arrival["deadline"]
    assert any(e["event"] == "receipt" and e["id"] == sent_id for e in pk_events)
    assert pk_events[-1]["by"] == "ir:dgmo"


async def _collect(ws: Any, done: Any, timeout: float = 20) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            events.append(event)
            if done(event):
                return events


def test_stream_refuses_without_a_token(pair: Cluster) -> None:
    ir = pair["ir"]

    async def attempt() -> int | None:
        uri = ir.url.replace("https", "wss") + "/api/v1/stream"
        async with websockets.connect(uri, ssl=ir.context) as ws:
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        return None

    assert run_async(attempt()) == 4401


def test_operators_see_only_their_offices(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    sent = send(pk, "pk-dgmo", body={"text": "for the DGMO only"})
    wait_for(lambda: state_is(ir, "ir-dgmo", sent["id"], "delivered"))
    with ir.client("ir-fs") as client:
        assert client.get(f"/api/v1/messages/{sent['id']}").status_code == 404
        assert all(m["id"] != sent["id"] for m in client.get("/api/v1/messages").json()["messages"])
        refused = client.post(f"/api/v1/messages/{sent['id']}/ack")
    # ir:fs is the alternate of ir:dgmo: told when the message becomes theirs, not "not found" (QA).
    assert refused.status_code == 403, refused.text
    assert "addressed to ir:dgmo; its alternates may answer it once it is overdue (its deadline is " in refused.text
    # A supervisor sees every office of the party.
    with ir.client("ir-supervisor") as client:
        assert client.get(f"/api/v1/messages/{sent['id']}").status_code == 200
    # Nobody may send from an office they do not hold.
    with pk.client("pk-fs") as client:
        response = client.post(
            "/api/v1/messages",
            json={"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
                  "body": {"text": "x"}},
        )  # fmt: skip
    assert response.status_code == 403 and "pk:dgmo" in response.json()["detail"]


def test_inbox_filters_by_box_channel_state_and_since(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    sent = send(pk, "pk-dgmo", precedence="ROUTINE", body={"text": "filter me"})
    wait_for(lambda: state_is(ir, "ir-dgmo", sent["id"], "delivered"))
    with ir.client("ir-dgmo") as client:
        inbox = client.get("/api/v1/messages", params={"box": "in", "channel": "dgmo", "state": "delivered"})
        assert sent["id"] in [m["id"] for m in inbox.json()["messages"]]
        outbox = client.get("/api/v1/messages", params={"box": "out"}).json()["messages"]
        assert sent["id"] not in [m["id"] for m in outbox]
        later = client.get("/api/v1/messages", params={"since": "2999-01-01T00:00:00Z"}).json()["messages"]
        assert later == []
        bad = client.get("/api/v1/messages", params={"since": "yesterday"})
        assert bad.status_code == 422 and bad.json()["error"] == "Invalid"
        # `since` compares times, not text: the message's own second, written without the
        # milliseconds or with fewer digits, still includes it; a millisecond after it does not.
        created = client.get(f"/api/v1/messages/{sent['id']}").json()["created"]
        moment = datetime.fromisoformat(created)
        for since in (created, created[:19] + "Z", created[:21] + "Z"):
            listed = client.get("/api/v1/messages", params={"since": since, "box": "in"}).json()["messages"]
            assert sent["id"] in [m["id"] for m in listed], since
        after = format_time(moment + timedelta(milliseconds=1))
        listed = client.get("/api/v1/messages", params={"since": after, "box": "in"}).json()["messages"]
        assert sent["id"] not in [m["id"] for m in listed]


def test_a_listing_says_when_older_messages_match(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    first = send(pk, "pk-dgmo", precedence="FLASH", body={"text": "the oldest"})
    last = send(pk, "pk-dgmo", precedence="ROUTINE", body={"text": "the newest"})
    wait_for(lambda: state_is(ir, "ir-dgmo", last["id"], "delivered"))
    with ir.client("ir-dgmo") as client:
        page = client.get("/api/v1/messages", params={"box": "in", "limit": 1}).json()
        assert [m["id"] for m in page["messages"]] == [last["id"]] and page["more"] is True
        whole = client.get("/api/v1/messages", params={"box": "in", "limit": 1000}).json()
        assert first["id"] in [m["id"] for m in whole["messages"]]
        assert whole["more"] is False


def test_who_may_read_a_message_but_not_answer_it_is_told_why(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    sent = send(pk, "pk-dgmo", precedence="FLASH", body={"text": "answer me"})
    wait_for(lambda: state_is(ir, "ir-dgmo", sent["id"], "delivered"))
    added = subprocess.run(
        [sys.executable, "-m", "detente", "user", "add", "--data", str(ir.data), "--name", "ir-dgmo-tr",
         "--office", "ir:dgmo", "--role", "translator"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    translator = added.stdout.split("token ", 1)[1].strip()
    with ir.client(token=translator) as client:
        assert client.get(f"/api/v1/messages/{sent['id']}").status_code == 200
        refused = client.post(f"/api/v1/messages/{sent['id']}/ack", json={})
    assert refused.status_code == 403, refused.text
    assert "only an operator or supervisor answers it" in refused.json()["detail"]
    # The sender's own message: it reads it, and is told it cannot acknowledge it.
    with pk.client("pk-dgmo") as client:
        own = client.post(f"/api/v1/messages/{sent['id']}/ack", json={})
    assert own.status_code == 422 and "received from the other side" in own.json()["detail"]
    # A person's words must say something: a blank reason or text is refused where it is written.
    with ir.client("ir-dgmo") as client:
        blank = client.post(f"/api/v1/messages/{sent['id']}/decline", json={"reason": " \t "})
        assert blank.status_code == 422 and blank.json()["fields"] == {"reason": "must not be blank"}
        assert client.get(f"/api/v1/messages/{sent['id']}").json()["state"] == "delivered"
    with pk.client("pk-dgmo") as client:
        empty = client.post(
            "/api/v1/messages",
            json={"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
                  "body": {"text": "\n  "}},
        )  # fmt: skip
        assert empty.status_code == 422 and empty.json()["fields"] == {"text": "must not be blank"}
    # Nothing of the refusals changed the message: the addressee still answers it.
    with ir.client("ir-dgmo") as client:
        assert client.post(f"/api/v1/messages/{sent['id']}/ack", json={}).status_code == 201


def test_links_are_up_and_tested(pair: Cluster) -> None:
    pk = pair["pk"]

    def tested() -> dict[str, Any] | None:
        with pk.client("pk-dgmo") as client:
            link = client.get("/api/v1/links").json()["links"][0]
        return link if link["state"] == "UP" and link["last_test_at"] and link["rtt_ms"] else None

    link = wait_for(tested, what="a successful link test")
    assert link["peer"] == "ir" and link["rtt_ms"] > 0


def test_status_reaches_the_peer(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    with ir.client("ir-dgmo") as client:
        response = client.post("/api/v1/status", json={"peer": "pk", "code": "AWAITING_AUTHORITY", "note": "minister"})
    assert response.status_code == 201, response.text

    def seen() -> dict[str, Any] | None:
        with pk.client("pk-dgmo") as client:
            status = client.get("/api/v1/links").json()["links"][0]["peer_status"]
        return status if status and status["code"] == "AWAITING_AUTHORITY" else None

    assert wait_for(seen)["note"] == "minister"
    with ir.client("ir-dgmo") as client:
        bad = client.post("/api/v1/status", json={"peer": "pk", "code": "SLEEPING"})
    assert bad.status_code == 422


def test_each_office_s_status_is_kept_and_named(pair: Cluster) -> None:
    """A status is an office's word: ir:fs saying OK does not replace ir:dgmo's AWAITING_AUTHORITY."""
    pk, ir = pair["pk"], pair["ir"]
    told = {"ir-dgmo": ("AWAITING_AUTHORITY", "waiting for COAS"), "ir-fs": ("OK", "")}
    for operator, (code, note) in told.items():
        with ir.client(operator) as client:
            response = client.post("/api/v1/status", json={"peer": "pk", "code": code, "note": note})
        assert response.status_code == 201, response.text

    def seen() -> dict[str, Any] | None:
        with pk.client("pk-fs") as client:
            link = client.get("/api/v1/links").json()["links"][0]
        offices = {s["office"]: s for s in link["peer_statuses"]}
        return link if offices.get("ir:fs", {}).get("code") == "OK" and "ir:dgmo" in offices else None

    link = wait_for(seen, what="both offices' statuses on pk")
    offices = {s["office"]: s for s in link["peer_statuses"]}
    assert offices["ir:dgmo"]["code"] == "AWAITING_AUTHORITY" and offices["ir:dgmo"]["note"] == "waiting for COAS"
    assert link["peer_status"]["office"] == "ir:fs"  # the newest, named
    with ir.client("ir-dgmo") as client:
        ours = {s["office"]: s["code"] for s in client.get("/api/v1/links").json()["links"][0]["our_statuses"]}
    assert ours["ir:dgmo"] == "AWAITING_AUTHORITY" and ours["ir:fs"] == "OK"
    shown = detente("links", "--node", str(pk.data), "--token", pk.token("pk-fs"))
    assert shown.code == 0 and "ir:dgmo AWAITING_AUTHORITY" in shown.stdout and "ir:fs OK" in shown.stdout


def test_cli_send_inbox_ack_links(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]

    def cli(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "detente", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    token = pk.token("pk-lo-zahedan")
    out = cli("send", "--node", str(pk.data), "--token", token, "--channel", "liaison", "--to", "ir:lo-turbat",
              "--precedence", "ROUTINE", "--text", "Liaison officer arriving 0900Z")  # fmt: skip
    message_id = out.split()[0]
    wait_for(lambda: state_is(ir, "ir-lo-turbat", message_id, "delivered"))
    listed = json.loads(cli("inbox", "--node", str(ir.data), "--token", ir.token("ir-lo-turbat"), "--json"))
    assert message_id in [m["id"] for m in listed]
    assert "acknowledged" in cli("ack", message_id, "--node", str(ir.data), "--token", ir.token("ir-lo-turbat"))
    assert "UP" in cli("links", "--node", str(pk.data), "--token", pk.token("pk-lo-zahedan"))
    # Errors are one line with the node's message, and a non-zero exit; no traceback.
    bad = subprocess.run(
        [sys.executable, "-m", "detente", "ack", message_id, "--node", str(ir.data), "--token", "dtn_wrong"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "Unauthorized" in bad.stderr and "Traceback" not in bad.stderr


def test_tokens_can_be_rotated_and_operators_disabled_while_the_node_runs(pair: Cluster) -> None:
    pk = pair["pk"]

    def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "detente", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stdout + done.stderr
        return done

    def status(token: str) -> int:
        with pk.client(token=token) as client:
            return client.get("/api/v1/links").status_code

    data = ("--data", str(pk.data))
    added = cli("user", "add", *data, "--name", "pk-relief", "--office", "pk:dgmo", "--role", "operator")
    first = added.stdout.split("token ", 1)[1].strip()
    assert status(first) == 200
    second = cli("user", "token", *data, "--name", "pk-relief").stdout.split("token ", 1)[1].strip()
    assert second != first and status(second) == 200
    # The node trusts a token it has just seen for at most TOKEN_TTL (2 s): then the old one is refused.
    wait_for(lambda: status(first) == 401, timeout=5, what="the replaced token to be refused")
    assert "disabled" in cli("user", "disable", *data, "--name", "pk-relief").stdout
    wait_for(lambda: status(second) == 401, timeout=5, what="the disabled operator's token to be refused")
    cli("user", "enable", *data, "--name", "pk-relief")
    assert status(second) == 200  # an unknown token is never cached: enabling works at once
    unknown = cli("user", "disable", *data, "--name", "nobody", code=1)
    assert "NotFound" in unknown.stderr and "nobody" in unknown.stderr and "Traceback" not in unknown.stderr
