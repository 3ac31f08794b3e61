"""`POST /api/v1/messages/batch`: several messages in one request, in order, all or none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import Cluster, quiet, service_free_counts, wait_for

DGMO = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "IMMEDIATE", "type": "hotline.text"}
FS = {"channel": "fs", "to": "ir:fs", "precedence": "PRIORITY", "type": "hotline.text"}
UNKNOWN_ID = "01a20000-0000-7000-8000-000000000000"


def text(base: dict[str, Any], words: str, **extra: Any) -> dict[str, Any]:
    return {**base, "body": {"text": words}, **extra}


def post(cluster: Cluster, operator: str, payload: Any) -> Any:
    with cluster["pk"].client(operator) as client:
        return client.post("/api/v1/messages/batch", json=payload)


def counts(cluster: Cluster) -> dict[str, dict[str, int]]:
    return {party: service_free_counts(node) for party, node in cluster.nodes.items()}


def test_a_batch_is_sent_in_order_and_every_message_arrives(pair: Cluster) -> None:
    quiet(pair)
    before = counts(pair)
    batch = [text(DGMO, "one"), text(FS, "two"), text(DGMO, "three")]
    response = post(pair, "pk-supervisor", {"messages": batch})
    assert response.status_code == 201, response.text
    results = response.json()["messages"]
    assert [r["state"] for r in results] == ["accepted"] * 3
    # The request's order is the order of the log and of each channel's sequence.
    indexes = [r["log_index"] for r in results]
    assert indexes == sorted(indexes) and len(set(indexes)) == 3
    assert results[2]["seq"] == results[0]["seq"] + 1

    with pair["ir"].client("ir-supervisor") as client:

        def arrived() -> list[dict[str, Any]]:
            found = []
            for result in results:
                answer = client.get(f"/api/v1/messages/{result['id']}")
                if answer.status_code != 200:
                    return []
                found.append(answer.json())
            return found

        received = wait_for(arrived, what="the batch on ir")
    assert [m["body"]["text"] for m in received] == ["one", "two", "three"]
    assert [m["to"] for m in received] == ["ir:dgmo", "ir:fs", "ir:dgmo"]
    # pk's deliverer asks for batch receipts: what it stored is ir's receipt with its batch path.
    with pair["pk"].client("pk-supervisor") as client:

        def receipted() -> list[dict[str, Any]]:
            views = [client.get(f"/api/v1/messages/{r['id']}").json() for r in results]
            return views if all(v.get("receipt") for v in views) else []

        stored = [v["receipt"] for v in wait_for(receipted, what="the receipts on pk")]
    assert {r["kind"] for r in stored} == {"detente-receipt/v2"}
    assert all(r["node"] == "ir" and r["batch"]["size"] >= 1 for r in stored)
    quiet(pair)
    after = counts(pair)
    assert after["pk"]["envelopes"] == before["pk"]["envelopes"] + 3
    assert after["ir"]["log"] == before["ir"]["log"] + 3


REFUSED = [
    # (case, operator, messages, status, error, where, detail)
    ("unknown channel in the checks", "pk-supervisor",
     [text(DGMO, "fine"), text(DGMO, "fine"), text(DGMO, "bad", channel="navy")],
     422, "Invalid", "messages.2", "unknown channel 'navy'"),
    ("unknown ref, found only inside the transaction", "pk-supervisor",
     [text(DGMO, "recorded first, then rolled back"), text(DGMO, "bad", refs=[UNKNOWN_ID])],
     422, "Invalid", "messages.1", "no envelope"),
    ("an office the operator does not hold", "pk-dgmo",
     [text(DGMO, "mine"), text(FS, "not mine")],
     403, "Forbidden", "messages.1", "not bound to office pk:fs"),
    ("a rule of the message type", "pk-supervisor",
     [text(DGMO, "fine"), text(DGMO, "")],
     422, "Invalid", "messages.1", "text"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("operator", "messages", "status", "error", "where", "detail"),
    [c[1:] for c in REFUSED],
    ids=[c[0] for c in REFUSED],
)
def test_one_bad_message_refuses_the_batch_and_writes_nothing(
    pair: Cluster, operator: str, messages: list[Any], status: int, error: str, where: str, detail: str
) -> None:
    quiet(pair)
    before = counts(pair)
    response = post(pair, operator, {"messages": messages})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["at"] == where
    assert body["detail"].startswith(f"{where}: ") and detail in body["detail"]
    assert "Traceback" not in response.text
    assert counts(pair) == before


def test_field_errors_are_located_in_the_batch(pair: Cluster) -> None:
    response = post(pair, "pk-supervisor", {"messages": [text(DGMO, "fine"), text(DGMO, "x", colour="red")]})
    assert response.status_code == 422
    assert response.json()["fields"] == {"messages.1.colour": "unknown field"}
    empty = post(pair, "pk-supervisor", {"messages": [text(DGMO, "fine"), text(DGMO, "")]})
    assert empty.status_code == 422
    assert all(key.startswith("messages.1.") for key in empty.json()["fields"])


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [text(DGMO, "x")] * 101}, "messages"),
        ({"message": [text(DGMO, "x")]}, "message"),
        ([text(DGMO, "x")], "request: must be a JSON object"),
    ],
    ids=["empty", "over 100", "misnamed", "a bare list"],
)
def test_a_batch_of_the_wrong_shape_is_refused(pair: Cluster, payload: Any, detail: str) -> None:
    quiet(pair)
    before = counts(pair)
    response = post(pair, "pk-supervisor", payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "Invalid" and detail in response.json()["detail"]
    assert counts(pair) == before


def test_cli_send_batch_from_a_file_and_its_errors(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "detente", "send-batch", *args, "--node", str(pk.data)]
        command += ["--token", pk.token("pk-supervisor")]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, input=stdin)

    good = tmp_path / "good.json"
    # A precedence in lower case is taken, as `send --precedence flash` takes it.
    good.write_text(json.dumps([text(DGMO, "from a file"), {**text(FS, "and another"), "precedence": "flash"}]))
    done = cli(str(good))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.endswith(" accepted") for line in lines)
    with pk.client("pk-supervisor") as client:
        second = client.get(f"/api/v1/messages/{lines[1].split()[0]}").json()
    assert second["envelope"]["precedence"] == "FLASH"
    piped = cli("-", stdin=json.dumps({"messages": [text(FS, "from standard input")]}))
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 1, piped.stderr

    quiet(pair)
    before = counts(pair)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([text(DGMO, "fine"), text(DGMO, "wrong", channel="navy")]))
    notjson = tmp_path / "notjson.json"
    notjson.write_text("[{")
    for args, says in (
        ((str(bad),), "messages.1: unknown channel 'navy'"),
        ((str(notjson),), "is not JSON"),
        ((str(tmp_path / "missing.json"),), "cannot read"),
    ):
        refused = cli(*args)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert counts(pair) == before
