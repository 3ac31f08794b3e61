"""A refused message names the request member at fault in `fields`, alone and in a batch, and writes nothing.

A form built from the OpenAPI document highlights the input a `fields` key names: routing errors
(`channel`, `to`, `type`, `precedence`, `refs`, `lang`) as well as body fields (`text`, `evidence.1`).
"""

from __future__ import annotations

from typing import Any

import pytest

from support import Cluster, quiet, service_free_counts

GOOD = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text", "body": {"text": "hi"}}
UNKNOWN_ID = "01a20000-0000-7000-8000-000000000000"
SHA = "ab" * 32
EVIDENCE = {"sha256": SHA, "name": "site.jpg", "media_type": "image/jpeg", "size": 10}
INCIDENT = {
    "kind": "strike", "time": "2024-01-16T12:00:00Z", "location": {"lat": 26.97, "lon": 63.52, "place": "Panjgur"},
    "description": "Missiles hit a house.", "assessment": "Deliberate.",
}  # fmt: skip
COSIGN = (
    "consultation.cosign refs the consultation (its consultation.propose envelope), then the "
    "consultation.minutes envelope it co-signs: 2 references, got 1"
)

CASES = [
    # (case, request, fields)
    ("office not on the channel", {**GOOD, "to": "ir:fs"},
     {"to": "office 'ir:fs' is not at either end of channel 'dgmo'"}),
    ("own party's office", {**GOOD, "to": "pk:dgmo"}, {"to": "office 'pk:dgmo' belongs to this node's own party"}),
    ("unknown channel", {**GOOD, "channel": "navy"},
     {"channel": "unknown channel 'navy'; your offices' channels: dgmo"}),
    ("reserved channel", {**GOOD, "channel": "node"},
     {"channel": "channel 'node' is reserved for the nodes themselves"}),
    ("unknown type", {**GOOD, "type": "nonexistent.type"}, {"type": "not a message type"}),
    ("service type", {**GOOD, "type": "ack", "body": {}},
     {"type": "ack is sent with its own action, not as a message"}),
    ("precedence the type may not carry",
     {**GOOD, "type": "incident.report", "precedence": "ROUTINE", "body": INCIDENT},
     {"precedence": "incident.report may not be sent ROUTINE; allowed: FLASH, IMMEDIATE, PRIORITY"}),
    ("type the channel does not carry",
     {**GOOD, "type": "action.verify", "precedence": "PRIORITY", "body": {}, "refs": [UNKNOWN_ID]},
     {"type": "channel 'dgmo' does not carry action.verify under the agreement"}),
    ("cosign with one ref", {**GOOD, "type": "consultation.cosign", "precedence": "ROUTINE", "body": {"sha256": SHA},
                             "refs": [UNKNOWN_ID]}, {"refs": COSIGN}),
    ("unknown ref", {**GOOD, "refs": [UNKNOWN_ID]}, {"refs.0": "no such envelope on this node"}),
    ("language outside the agreement", {**GOOD, "lang": "de"},
     {"lang": "language 'de' is not one of the agreement's: en, ur, fa"}),
    ("blank language", {**GOOD, "lang": " "},
     {"lang": "must not be blank: leave it out for your own language, or give one of en, ur, fa"}),
    ("zero-width text", {**GOOD, "body": {"text": "\u200b"}}, {"text": "must not be blank"}),
    ("invisible description",
     {**GOOD, "type": "incident.report", "body": {**INCIDENT, "description": "\u2060\ufeff"}},
     {"description": "must not be blank"}),
    ("evidence listed twice",
     {**GOOD, "type": "action.report", "precedence": "IMMEDIATE", "refs": [UNKNOWN_ID],
      "body": {"summary": "Done.", "evidence": [EVIDENCE, EVIDENCE]}},
     {"evidence.1": f"lists the same file (sha256 {SHA}) as evidence.0"}),
]  # fmt: skip


def counts(cluster: Cluster) -> dict[str, dict[str, int]]:
    return {party: service_free_counts(node) for party, node in cluster.nodes.items()}


def post(cluster: Cluster, path: str, payload: Any) -> Any:
    with cluster["pk"].client("pk-dgmo") as client:
        return client.post(path, json=payload)


@pytest.mark.parametrize(("request_", "fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_refused_message_names_its_field_and_writes_nothing(
    pair: Cluster, request_: dict[str, Any], fields: dict[str, str]
) -> None:
    quiet(pair)
    before = counts(pair)
    response = post(pair, "/api/v1/messages", request_)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "Invalid" and body["fields"] == fields
    assert "Traceback" not in response.text
    assert counts(pair) == before


def test_a_language_tag_is_read_in_any_case(pair: Cluster) -> None:
    """BCP 47 tags are case-insensitive: "UR" is signed as the agreement's "ur" (QA: it was refused)."""
    sent = post(pair, "/api/v1/messages", {**GOOD, "lang": "UR", "precedence": "ROUTINE"})
    assert sent.status_code == 201, sent.text
    with pair["pk"].client("pk-dgmo") as client:
        assert client.get(f"/api/v1/messages/{sent.json()['id']}").json()["envelope"]["lang"] == "ur"


def test_the_ref_that_is_missing_is_named_by_its_place(pair: Cluster) -> None:
    sent = post(pair, "/api/v1/messages", GOOD)
    assert sent.status_code == 201, sent.text
    quiet(pair)
    before = counts(pair)
    response = post(pair, "/api/v1/messages", {**GOOD, "refs": [sent.json()["id"], UNKNOWN_ID]})
    assert response.status_code == 422, response.text
    assert response.json()["fields"] == {"refs.1": "no such envelope on this node"}
    assert response.json()["detail"] == f"refs.1: no envelope {UNKNOWN_ID} on this node"
    assert counts(pair) == before


BATCH = [
    # (case, the second message of the batch, fields): found in the checks, or inside the writer's transaction.
    ("office, in the checks", {**GOOD, "to": "ir:fs"},
     {"messages.1.to": "office 'ir:fs' is not at either end of channel 'dgmo'"}),
    ("type, in the checks", {**GOOD, "type": "nonexistent.type"}, {"messages.1.type": "not a message type"}),
    ("blank text, in the checks", {**GOOD, "body": {"text": "\u200b\u200d"}}, {"messages.1.text": "must not be blank"}),
    ("ref, in the transaction", {**GOOD, "refs": [UNKNOWN_ID]}, {"messages.1.refs.0": "no such envelope on this node"}),
]  # fmt: skip


@pytest.mark.parametrize(("second", "fields"), [c[1:] for c in BATCH], ids=[c[0] for c in BATCH])
def test_a_refused_batch_names_the_field_under_its_message(
    pair: Cluster, second: dict[str, Any], fields: dict[str, str]
) -> None:
    quiet(pair)
    before = counts(pair)
    response = post(pair, "/api/v1/messages/batch", {"messages": [GOOD, second]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["fields"] == fields and body["at"] == "messages.1"
    assert counts(pair) == before
