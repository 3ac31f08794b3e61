"""A real node whose PostgreSQL server restarts or stops (its own server: `pg_support`).

During a restart every request succeeds, but one whose COMMIT was under way: the node waits the
server out (`store.db.RETRY_FOR`).
While it is stopped, the API answers 503 `Unavailable` naming the database without its password,
nothing is written, and the node's log says so once, not at every tick; once the server is back,
the log says so and requests succeed again.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pg_support import OwnServer, own_server
from support import Cluster, quiet, service_free_counts, wait_for

pytestmark = pytest.mark.postgres
PASSWORD = "pw-never-shown-91c2"


def _message(text: str) -> dict[str, Any]:
    return {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text", "body": {"text": text}}


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[OwnServer, Cluster]]:
    """pk on a PostgreSQL server of this test's own (its URL holds a password), ir on SQLite."""
    with own_server() as server:
        cluster = Cluster(tmp_path, db_urls={"pk": server.database("pk", PASSWORD)})
        try:
            cluster.start()
            yield server, cluster
        finally:
            cluster.stop()


def _from_first_trouble(logged: str) -> str:
    """Return the log from the line before its first error or traceback, 4,000 characters of it."""
    first = min((at for at in (logged.find("unexpected error"), logged.find("Traceback")) if at >= 0), default=0)
    return logged[logged.rfind("\n", 0, max(first - 200, 0)) + 1 :][:4000]


def _counts(cluster: Cluster) -> dict[str, dict[str, int]]:
    quiet(cluster)
    return {party: service_free_counts(node) for party, node in cluster.nodes.items()}


def test_with_the_database_stopped_the_api_answers_503_naming_it_and_nothing_changes(
    outage: tuple[OwnServer, Cluster],
) -> None:
    server, cluster = outage
    pk = cluster["pk"]
    with pk.client("pk-dgmo") as api:
        assert api.post("/api/v1/messages", json=_message("before")).status_code == 201
    before = _counts(cluster)
    database = pk.engine().url.database
    named = f"the database postgresql+psycopg://postgres@127.0.0.1:{server.port}/{database} is unavailable: "
    logged_before = pk.log_path.read_text()

    server.stop()
    try:
        with pk.client("pk-dgmo") as api, pk.client(token="dtn_a-token-no-one-holds") as stranger:
            answers = [
                api.post("/api/v1/messages", json=_message("while the database is stopped")),
                api.get("/api/v1/links"),
                api.get("/api/v1/messages"),
                stranger.get("/api/v1/me"),  # not in the token cache: looked up in the database
            ]
        for answer in answers:
            assert answer.status_code == 503, (answer.request.url, answer.text)
            body = answer.json()
            assert body["error"] == "Unavailable" and named in body["detail"], body
            assert PASSWORD not in answer.text and "***" not in answer.text and "Traceback" not in answer.text
        # The scheduler meets the database down at every tick (0.5 s): its log says so once.
        wait_for(lambda: "deadline check failed: " + named in pk.log_path.read_text(), timeout=10)
        # Longer than an idle deliverer's 5 s: it reads its outbox while the database is down too.
        wait_for(lambda: "delivery to ir waits for this node's database: " in pk.log_path.read_text(), timeout=10)
        threading.Event().wait(1)
        during = pk.log_path.read_text()[len(logged_before) :]
    finally:
        server.start()

    lines = [re.sub(r"^\S+ \S+ ", "", line) for line in during.splitlines() if " WARNING " in line]
    assert lines, during
    assert len(lines) == len(set(lines)), during  # no warning twice in those seconds
    assert PASSWORD not in during
    wait_for(lambda: "is available again" in pk.log_path.read_text(), timeout=10, what="the node to say so")
    assert _counts(cluster) == before  # the refused message was not stored, nor anything else
    with pk.client("pk-dgmo") as api:
        after = api.post("/api/v1/messages", json=_message("after"))
    assert after.status_code == 201, after.text
    # Delivery goes on (QA: the deliverer's task ended when recording the failure failed as well,
    # and the outbox stayed queued for good), and the database's outage is not the link's.
    ir = cluster["ir"]
    wait_for(lambda: ir.message("ir-dgmo", after.json()["id"], missing_ok=True) != {}, what="'after' to reach ir")
    logged = pk.log_path.read_text()
    assert "duty stopped" not in logged and "Traceback" not in logged, logged[-3000:]
    with pk.client("pk-dgmo") as api:
        link = next(item for item in api.get("/api/v1/links").json()["links"] if item["peer"] == "ir")
    assert link["state"] == "UP" and "SQL" not in str(link.get("last_error")), link


def test_requests_during_restarts_of_the_database_all_succeed(outage: tuple[OwnServer, Cluster]) -> None:
    server, cluster = outage
    pk, ir = cluster["pk"], cluster["ir"]
    before = _counts(cluster)
    sent: list[str] = []
    failed: list[str] = []
    closed: list[int] = []
    stop = threading.Event()

    def sending(n: int) -> None:
        with pk.client("pk-dgmo") as api:
            i = 0
            while not stop.is_set() or i < 3:
                try:
                    answer = api.post("/api/v1/messages", json=_message(f"sender {n}, message {i}"))
                except httpx.RemoteProtocolError:  # a connection closed under a request (uvicorn does after a 500)
                    closed.append(n)
                    i += 1
                    continue
                if answer.status_code == 201:
                    sent.append(answer.json()["id"])
                else:
                    failed.append(f"{answer.status_code} {answer.text}")
                i += 1

    senders = [threading.Thread(target=sending, args=(n,)) for n in range(5)]
    for thread in senders:
        thread.start()
    try:
        threading.Event().wait(0.5)
        server.restart("fast")
        threading.Event().wait(0.5)
        server.restart("immediate")
        threading.Event().wait(0.5)
    finally:
        stop.set()
        for thread in senders:
            thread.join(60)
    # Only a request whose COMMIT was under way when the server went away may fail: it is never
    # run again (the server may have committed it). It is answered 503 CommitInDoubt, which tells
    # the operator to look for the message before sending it again, and the node's log says so.
    # Every other request waited the restart out.
    assert all(failure.startswith("503 ") and '"CommitInDoubt"' in failure for failure in failed), failed
    assert all("may or may not be stored: look for it before sending it again" in f for f in failed), failed
    assert all(PASSWORD not in failure for failure in failed)
    assert closed == []  # a 503 keeps the connection: no request meets a closed one
    logged = pk.log_path.read_text()
    assert "unexpected error" not in logged and "Traceback" not in logged, _from_first_trouble(logged)
    in_doubt = re.findall(r"commit (\d+) in doubt, of \d+ write\(s\): ", logged)
    assert len(in_doubt) >= min(len(failed), 1), logged[-3000:]
    assert len(set(in_doubt)) == len(in_doubt)  # each its own line, none held back as a repeat
    assert len(sent) >= 15
    after = _counts(cluster)
    assert after["pk"]["envelopes"] - before["pk"]["envelopes"] >= len(sent)  # and their receipts' envelopes
    for message_id in sent:  # each stored and delivered
        assert ir.message("ir-dgmo", message_id)["id"] == message_id


def test_a_read_on_the_event_loop_waits_the_database_out_off_it(tmp_path: Path) -> None:
    """Every request's token or session is read on the event loop (`Node.read_quick`). With the
    database stopped, that read waits out `RETRY_FOR` in a thread: the loop goes on serving others
    meanwhile, where it used to stop the whole node for those seconds."""
    from detente.errors import Unavailable
    from detente.node.demo import setup_demo
    from detente.node.runtime import Node
    from detente.store import operators as operators_db
    from support import run_async
    from support import test_agreement as agreement_for_tests

    with own_server() as server:
        info = setup_demo(tmp_path / "nodes", agreement_for_tests(tmp_path), db_urls={"pk": server.database("pk")})
        node = Node.open(Path(info["nodes"]["pk"]["data"]))  # in this process, no background work
        try:
            assert run_async(node.read_quick(lambda conn: operators_db.by_token_hash(conn, "0" * 64))) is None
            server.stop()

            async def read_beside_a_ticker() -> tuple[BaseException | None, int]:
                ticks = 0
                reading = asyncio.create_task(node.read_quick(lambda conn: operators_db.by_token_hash(conn, "0" * 64)))
                while not reading.done():
                    await asyncio.sleep(0.01)
                    ticks += 1
                return reading.exception(), ticks

            error, ticks = run_async(read_beside_a_ticker())
            assert isinstance(error, Unavailable), error
            # The read waited about 2 s (store.db.RETRY_FOR) for the server, in a thread: the loop
            # ran the ticker all the while (a read waiting on the loop would have let it tick once).
            assert ticks >= 20, ticks
        finally:
            node.close()
