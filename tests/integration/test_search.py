"""Finding messages on two real nodes: `GET /api/v1/messages` with a search, and `detente inbox --find`.

Every message of these tests carries a word of its own (`tag`), so that what other tests send to the
shared pair never changes what a search here finds.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from cli_support import assert_error, assert_usage_error, detente
from support import Cluster, NodeProc, wait_for
from workflow_support import post, send


def found(node: NodeProc, operator: str, **params: Any) -> list[str]:
    """The ids a search as `operator` finds, oldest first."""
    with node.client(operator) as client:
        response = client.get("/api/v1/messages", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


def created(node: NodeProc, message_id: str) -> str:
    return str(node.message(f"{node.party}-supervisor", message_id)["created"])


@pytest.fixture(scope="module")
def sent(pair: Cluster) -> dict[str, str]:
    """From pk to ir: a FLASH text, an Urdu text translated on ir into English, a codebook message, 50%."""
    pk, ir = pair["pk"], pair["ir"]
    tag = f"zq{uuid.uuid4().hex[:8]}"
    ids = {
        "tag": tag,
        "flash": send(pk, "pk-dgmo", "hotline.text", {"text": f"Mortar fire near PANJGUR {tag}"},
                      precedence="FLASH")["id"],
        "urdu": post(pk, "pk-dgmo", "/api/v1/messages", {
            "channel": "dgmo", "to": "ir:dgmo", "precedence": "IMMEDIATE", "type": "hotline.text", "lang": "ur",
            "body": {"text": f"{tag} پنجگور کے قریب دھماکوں کی اطلاع"}})["id"],
        "code": send(pk, "pk-dgmo", "code", {"code": "NO-HOSTILE-INTENT", "params": {"place": f"Saravan {tag}"}},
                     precedence="FLASH")["id"],
        "percent": send(pk, "pk-dgmo", "hotline.text", {"text": f"Readiness 50% {tag}"}, precedence="ROUTINE")["id"],
        "five": send(pk, "pk-dgmo", "hotline.text", {"text": f"Readiness 500 {tag}"}, precedence="ROUTINE")["id"],
    }  # fmt: skip
    wait_for(lambda: len(found(ir, "ir-dgmo", q=tag)) == 5, what="ir to hold the five messages")
    # ir's translator reads the Urdu text in English; the translation travels back to pk.
    translation = {"lang": "en", "text": f"Explosions reported near Panjgur, shelling{tag}"}
    post(ir, "ir-translator1", f"/api/v1/messages/{ids['urdu']}/translations", translation)
    wait_for(lambda: found(pk, "pk-dgmo", q=f"shelling{tag}") == [ids["urdu"]], what="pk to hold the translation")
    return ids


def test_words_precedence_type_peer_window_and_id_find_the_message(pair: Cluster, sent: dict[str, str]) -> None:
    pk, ir = pair["pk"], pair["ir"]
    tag = sent["tag"]
    everything = [sent[k] for k in ("flash", "urdu", "code", "percent", "five")]
    assert found(ir, "ir-dgmo", q=tag) == everything  # received: the incoming path stored their words
    assert found(pk, "pk-dgmo", q=tag.upper(), box="out") == everything  # sent: the outgoing path
    # "Panjgur" is in the first text, and in the English translation of the Urdu one (made on ir).
    assert found(ir, "ir-dgmo", q=f"panjgur {tag}") == [sent["flash"], sent["urdu"]]
    assert found(ir, "ir-dgmo", q=f"shelling{tag}") == [sent["urdu"]]
    assert found(ir, "ir-dgmo", q=f"{tag} پنجگور") == [sent["urdu"]]
    # The codebook text (never in the envelope) and the code find the codebook message.
    assert found(ir, "ir-dgmo", q=f"hostile intent {tag}") == [sent["code"]]
    assert found(ir, "ir-dgmo", q=f"{tag} no-hostile-intent") == [sent["code"]]
    assert found(ir, "ir-dgmo", q=f"50% {tag}") == [sent["percent"]]  # `%` is a character, not a wildcard
    assert found(ir, "ir-dgmo", q=tag, precedence="flash") == [sent["flash"], sent["code"]]
    slower = [sent[k] for k in ("urdu", "percent", "five")]
    assert found(ir, "ir-dgmo", q=tag, precedence=["IMMEDIATE", "ROUTINE"]) == slower
    assert found(ir, "ir-dgmo", q=tag, type="code") == [sent["code"]]
    assert found(ir, "ir-dgmo", q=tag, party="pk", box="in") == everything
    assert found(ir, "ir-dgmo", id=sent["urdu"][-8:]) == [sent["urdu"]]
    assert found(ir, "ir-dgmo", id="…" + sent["code"][-12:].upper()) == [sent["code"]]
    assert found(ir, "ir-dgmo", id="\u200f…" + sent["code"][-12:] + "\u200e") == [sent["code"]]  # copied from RTL
    assert found(ir, "ir-dgmo", q=f"\u200f{tag}\u200e", channel="dgmo") == everything
    # `since` is included, `until` is not.
    window = {"since": created(ir, sent["urdu"]), "until": created(ir, sent["percent"])}
    assert found(ir, "ir-dgmo", q=tag, **window) == [sent["urdu"], sent["code"]]
    # Asked for by type, the translation itself is listed (service types are left out otherwise).
    assert len(found(ir, "ir-dgmo", q=f"shelling{tag}", type="translation")) == 1


def test_a_search_shows_only_what_the_operator_may_read(pair: Cluster, sent: dict[str, str]) -> None:
    ir = pair["ir"]
    assert found(ir, "ir-fs", q=sent["tag"]) == []  # another office's traffic, not yet overdue
    assert found(ir, "ir-fs", id=sent["flash"]) == []
    assert len(found(ir, "ir-supervisor", q=sent["tag"])) == 5
    assert found(ir, "ir-lo-turbat", q=f"panjgur {sent['tag']}") == []


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"q": "x" * 201}, {"q"}),
        ({"precedence": ["FLASH", "URGENT"]}, {"precedence"}),
        ({"since": "yesterday"}, {"since"}),
        ({"since": "2024-01-17T00:00:00Z", "until": "2024-01-16T00:00:00Z"}, {"until"}),
        ({"party": "us"}, {"party"}),
        ({"id": "3f2a"}, {"id"}),
        ({"type": "hotline.txt"}, {"type"}),
        # QA: a NUL listed everything on SQLite (a 500 on PostgreSQL); marks alone listed everything;
        # a channel nobody has found nothing, silently.
        ({"q": "a\x00b"}, {"q"}),
        ({"q": "\u200c\u064e"}, {"q"}),
        ({"channel": "liason"}, {"channel"}),
        ({"channel": "\x00"}, {"channel"}),
        ({"q": "x" * 201, "until": "soon", "party": "us", "id": "zz"}, {"q", "until", "party", "id"}),
    ],
)
def test_a_wrong_filter_is_refused_naming_it(pair: Cluster, params: dict[str, Any], fields: set[str]) -> None:
    with pair["ir"].client("ir-dgmo") as client:
        response = client.get("/api/v1/messages", params=params)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "Invalid" and set(answer["fields"]) == fields


def test_inbox_finds_with_the_same_filters_and_refuses_a_typo_before_asking(
    pair: Cluster, sent: dict[str, str]
) -> None:
    pk, ir = pair["pk"], pair["ir"]
    reader = ("--node", str(ir.data), "--token", ir.token("ir-dgmo"))
    window = ("--since", created(ir, sent["flash"]), "--until", created(ir, sent["five"]))
    result = detente("inbox", *reader, "--find", f"PANJGUR {sent['tag']}", "--precedence", "flash", *window, "--json")
    assert result.code == 0, result.stderr
    assert [m["id"] for m in json.loads(result.stdout)] == [sent["flash"]]
    table = detente("inbox", *reader, "--find", sent["tag"], "--type", "code", "--peer", "PK")
    assert table.code == 0 and sent["code"] in table.stdout and sent["flash"] not in table.stdout
    by_id = detente("inbox", *reader, "--id", sent["percent"][-10:], "--json")
    assert [m["id"] for m in json.loads(by_id.stdout)] == [sent["percent"]]
    both = detente("inbox", "--node", str(pk.data), "--token", pk.token("pk-dgmo"), "--box", "all",
                   "--find", f"shelling{sent['tag']}", "--json")  # fmt: skip
    assert [m["id"] for m in json.loads(both.stdout)] == [sent["urdu"]]
    # A search covers what was sent unless --box says otherwise (QA: --find missed pk's own message).
    mine = ("--node", str(pk.data), "--token", pk.token("pk-dgmo"), "--find", f"shelling{sent['tag']}", "--json")
    assert [m["id"] for m in json.loads(detente("inbox", *mine).stdout)] == [sent["urdu"]]
    assert json.loads(detente("inbox", *mine, "--box", "in").stdout) == []
    # Refused on the command line, before any request: a usage error naming the option.
    assert_usage_error(detente("inbox", *reader, "--precedence", "urgent"), "--precedence")
    assert_usage_error(detente("inbox", *reader, "--id", "3f2a"), "--id")
    assert_usage_error(detente("inbox", *reader, "--find", "x" * 201), "--find")
    assert_usage_error(detente("inbox", *reader, "--until", "tomorrow"), "--until")
    later_first = ("--since", "2024-01-17T00:00:00Z", "--until", "2024-01-16T00:00:00Z")
    assert_usage_error(detente("inbox", *reader, *later_first), "must be after since")
    # A peer only the node knows: the node refuses it, one line.
    assert_error(detente("inbox", *reader, "--peer", "us"), "party: 'us' is not a peer of this node; its peers: pk")
