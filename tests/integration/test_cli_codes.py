"""Codebook messages from the command line against two real nodes: `code send` and how `inbox` shows them.

Commands run through `detente.cli.main` in this process (`cli_support.detente`). Every message is
ROUTINE: its deadline passes after the test run, so no overdue envelope appears while a later test
counts what was written.
"""

from __future__ import annotations

import json
from typing import Any

from cli_support import Ran, assert_error, assert_usage_error, detente
from detente.cli.terminal import printable
from support import Cluster, NodeProc, quiet, service_free_counts, wait_for

PLACE = "پنجگور"
CASUALTIES = {"place": PLACE, "killed": 2, "injured": 5}
ROUTE = ("--channel", "dgmo", "--to", "ir:dgmo", "--precedence", "ROUTINE")


def auth(node: NodeProc, operator: str) -> tuple[str, ...]:
    return ("--node", str(node.data), "--token", node.token(operator))


def counts(pair: Cluster) -> dict[str, dict[str, int]]:
    """Envelopes, log entries and outbox rows of both nodes, once earlier deliveries are done."""
    quiet(pair)
    return {party: service_free_counts(node) for party, node in pair.nodes.items()}


def message(node: NodeProc, operator: str, to: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Send a ROUTINE message of type `kind` on dgmo through the API; return the node's answer."""
    request = {"channel": "dgmo", "to": to, "precedence": "ROUTINE", "type": kind, "body": body}
    return node.created(operator, "/api/v1/messages", request)


def view(node: NodeProc, operator: str | None, message_id: str, token: str | None = None) -> dict[str, Any]:
    with node.client(operator, token=token) as client:
        response = client.get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def arrived(node: NodeProc, operator: str, message_id: str) -> bool:
    with node.client(operator) as client:
        return client.get(f"/api/v1/messages/{message_id}").status_code == 200


def persian_reader(ir: NodeProc) -> str:
    """Add an ir:dgmo operator who reads Persian; return its token."""
    add = ("user", "add", "--data", str(ir.data), "--name", "ir-cli-codes-fa", "--office", "ir:dgmo",
           "--role", "operator", "--lang", "fa")  # fmt: skip
    added: Ran | None = None
    for _ in range(5):
        # `user add` on a running SQLite node can meet the node's writer between its read and its
        # write (SQLITE_BUSY on a deferred transaction): try again, as an administrator would.
        added = detente(*add)
        if added.code == 0 or "locked" not in added.stderr:
            break
    assert added is not None and added.code == 0, added and added.stderr
    return added.stdout.split("token ", 1)[1].strip()


def text_column(table: str, message_id: str) -> str:
    """Return the row of `message_id` in an `inbox` table (one line: the table is wide enough)."""
    rows = [line for line in table.splitlines() if message_id in line]
    assert len(rows) == 1, table
    return rows[0]


def test_inbox_shows_a_code_message_as_text_in_the_readers_language(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    persian = persian_reader(ir)
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "code": "CASUALTIES-CONFIRMED",
               "params": CASUALTIES}  # fmt: skip
    sent = pk.created("pk-dgmo", "/api/v1/codes", request)
    plain = message(pk, "pk-dgmo", "ir:dgmo", "hotline.text", {"text": "plain text"})
    bare = message(pk, "pk-dgmo", "ir:dgmo", "deescalation.proposal", {"measures": ["pull back 10 km"]})
    wait_for(lambda: arrived(ir, "ir-dgmo", bare["id"]), what="the messages to reach ir")
    since = view(ir, "ir-dgmo", sent["id"])["created"]
    english = view(ir, "ir-dgmo", sent["id"])["rendered_text"]
    farsi = view(ir, None, sent["id"], token=persian)["rendered_text"]
    assert english == f"We confirm 2 killed and 5 injured at {PLACE}." and farsi == sent["rendered"]["fa"]

    for token, expected, other in ((ir.token("ir-dgmo"), english, farsi), (persian, farsi, english)):
        table = detente("inbox", "--node", str(ir.data), "--token", token, "--since", since, "--limit", "1000")
        assert table.code == 0, table.stderr
        row = text_column(table.stdout, sent["id"])
        assert printable(expected)[:60] in row and printable(other)[:60] not in row
        assert "CASUALTIES-CONFIRMED" not in row and '"params"' not in row
        # A body's own text; a body with none as its list's texts, never as JSON.
        assert "plain text" in text_column(table.stdout, plain["id"])
        proposal = text_column(table.stdout, bare["id"])
        assert "pull back 10 km" in proposal and "measures" not in proposal and "{" not in proposal
    # The sender's own list renders it too (in pk-dgmo's language, English).
    sender = detente("inbox", *auth(pk, "pk-dgmo"), "--box", "out", "--since", since, "--limit", "1000")
    assert sender.code == 0 and printable(english)[:60] in text_column(sender.stdout, sent["id"])


def test_code_send_refuses_params_out_of_range_naming_them(pair: Cluster) -> None:
    pk = pair["pk"]
    before = counts(pair)
    send = ("code", "send", *auth(pk, "pk-dgmo"), *ROUTE)
    casualties = (*send, "--code", "CASUALTIES-CONFIRMED", "--param", "place=X")
    negative = detente(*casualties, "--param", "killed=-3", "--param", "injured=2")
    assert_error(negative, "Invalid: params.killed: must be a whole number from 0 to 1000000000")
    huge = detente(*casualties, "--param", "killed=1", "--param", f"injured={10**30}")
    assert_error(huge, "Invalid: params.injured: must be a whole number from 0 to 1000000000")
    assert "canonicalised" not in huge.stderr
    evacuate = (*send, "--code", "EVACUATE-AREA", "--param", "place=X")
    for radius in ("-5", "1e308", "-0"):
        result = detente(*evacuate, "--param", f"radius_km={radius}")
        assert_error(result, "Invalid: params.radius_km: must be a finite number from 0 to 10000000")
    for radius in ("nan", "NaN", "inf", "-inf", "-Infinity", "1e999"):
        result = detente(*evacuate, "--param", f"radius_km={radius}")
        assert_usage_error(result, f"Invalid value for '--param': radius_km must be a finite number, not '{radius}'")
    assert counts(pair) == before


def test_the_api_names_the_param_of_an_int_beyond_2_53(pair: Cluster) -> None:
    pk = pair["pk"]
    before = counts(pair)
    base = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE"}
    cases = [
        ({"code": "CASUALTIES-CONFIRMED", "params": {"place": "X", "killed": 10**30, "injured": 1}}, "params.killed"),
        ({"code": "EVACUATE-AREA", "params": {"place": "X", "radius_km": 1e308}}, "params.radius_km"),
    ]
    with pk.client("pk-dgmo") as client:
        for request, field in cases:
            response = client.post("/api/v1/codes", json={**base, **request})
            assert response.status_code == 422, response.text
            assert list(response.json()["fields"]) == [field], response.text
        # Python's JSON reader takes NaN, which no JSON encoder writes: still refused, by name.
        raw = json.dumps({**base, "code": "EVACUATE-AREA", "params": {"place": "X", "radius_km": float("nan")}})
        response = client.post("/api/v1/codes", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and list(response.json().get("fields", {})) == ["params.radius_km"], (
            response.text
        )
    assert counts(pair) == before


def test_code_send_links_the_messages_it_refers_to(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    first = message(ir, "ir-dgmo", "pk:dgmo", "hotline.text", {"text": "are you there?"})
    second = message(ir, "ir-dgmo", "pk:dgmo", "hotline.text", {"text": "please answer"})
    wait_for(lambda: arrived(pk, "pk-dgmo", second["id"]), what="ir's messages to reach pk")
    reply = detente("code", "send", *auth(pk, "pk-dgmo"), "--channel", "dgmo", "--to", "ir:dgmo",
                    "--precedence", "routine", "--code", "MESSAGE-RECEIVED",
                    "--ref", first["id"], "--ref", second["id"])  # fmt: skip
    assert reply.code == 0, reply.stderr
    reply_id = reply.stdout.split()[0]
    assert view(pk, "pk-dgmo", reply_id)["refs"] == [first["id"], second["id"]]
    wait_for(lambda: arrived(ir, "ir-dgmo", reply_id), what="the reply to reach ir")
    assert view(ir, "ir-dgmo", reply_id)["refs"] == [first["id"], second["id"]]

    before = counts(pair)
    send = ("code", "send", *auth(pk, "pk-dgmo"), *ROUTE, "--code", "MESSAGE-RECEIVED")
    assert_usage_error(detente(*send, "--ref", ""), "Invalid value for '--ref': an id cannot be empty")
    assert_usage_error(detente(*send, "--ref", first["id"], "--ref", "a/b"), "an id cannot hold '/'")
    assert_error(detente(*send, "--ref", "no-such-envelope"), "no envelope no-such-envelope on this node")
    assert counts(pair) == before
