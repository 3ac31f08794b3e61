"""How ir's endpoints hand their jobs to the writer: answers to FLASH messages ahead of the queue,
and a long delivery batch stored in parts.

Two real nodes' data in process (no peer running): pk seals messages, ir stores them as received
(directly, or through its federation endpoint with pk's key), and a spy on ir's writer notes how
each job reached it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from detente.core import receipts, wire
from detente.node import outgoing
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.node.events import Event
from detente.node.incoming import JOB_ENVELOPES, receive_job
from detente.node.runtime import Node
from detente.store import messages as db
from detente.store import operators as operators_db
from detente.web.app import create_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node, dict[str, Any]]]:
    demo: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    pk, ir = (Node.open(Path(demo["nodes"][party]["data"])) for party in ("pk", "ir"))
    yield pk, ir, demo
    for node in (pk, ir):
        node.ctx.writer.stop()
        node.ctx.engine.dispose()


def _sealed(pk: Node, precedence: str, text: str) -> Any:
    """Have pk seal and record a message to ir:dgmo; return its envelope."""
    with pk.ctx.engine.connect() as conn:
        operator = operators_db.by_name(conn, "pk-dgmo")
    assert operator is not None
    message = outgoing.check_message(
        pk.ctx, operator, channel="dgmo", to="ir:dgmo", precedence=precedence, kind="hotline.text",
        body={"text": text}, refs=[], case=None, lang=None,
    )  # fmt: skip
    return pk.ctx.writer.run_sync(outgoing.send_job(pk.ctx, operator, message)).envelope


def _received(pk: Node, ir: Node, precedence: str) -> str:
    """Have pk seal a message to ir:dgmo and ir store it as delivered; return its id."""
    envelope = _sealed(pk, precedence, f"{precedence} for the answer")
    stored = ir.ctx.writer.run_sync(receive_job(ir.ctx, "pk", [envelope], [envelope.id]))
    assert "receipt" in stored.results[0], stored.results
    return envelope.id


@pytest.mark.parametrize(("precedence", "urgent"), [("FLASH", True), ("IMMEDIATE", False), ("ROUTINE", False)])
@pytest.mark.parametrize("answer", ["ack", "decline"])
def test_the_answer_to_a_flash_message_jumps_the_writers_queue(
    nodes: tuple[Node, Node, dict[str, Any]], precedence: str, urgent: bool, answer: str
) -> None:
    pk, ir, demo = nodes
    message_id = _received(pk, ir, precedence)
    token = next(o["token"] for o in demo["nodes"]["ir"]["operators"] if o["name"] == "ir-dgmo")
    calls: list[tuple[str, bool]] = []
    real_run = ir.ctx.writer.run

    async def spying_run(job: Any, *, urgent: bool = False, weight: int = 1) -> Any:
        calls.append((job.__qualname__, urgent))
        return await real_run(job, urgent=urgent, weight=weight)

    ir.ctx.writer.run = spying_run  # type: ignore[method-assign]
    try:
        with TestClient(create_app(ir, start_background=False), base_url="https://testserver") as client:
            body = {"reason": "not ours"} if answer == "decline" else {}
            response = client.post(
                f"/api/v1/messages/{message_id}/{answer}", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text
            # A message nobody can see gets its 404 whatever the id: the read ahead of the job
            # decides nothing but the order.
            missing = client.post(
                "/api/v1/messages/no-such-message/ack", json={}, headers={"Authorization": f"Bearer {token}"}
            )
            assert missing.status_code == 404, missing.text
    finally:
        del ir.ctx.writer.run
    answers = [u for name, u in calls if name.startswith("respond_job")]
    assert answers == [urgent, False]
    sent = ir.read(lambda conn: db.get_envelope(conn, response.json()["id"]))
    assert sent is not None and sent["precedence"] == precedence  # the answer travels at the message's precedence


def test_a_part_that_fails_fails_the_request_but_the_parts_stored_are_announced(
    nodes: tuple[Node, Node, dict[str, Any]],
) -> None:
    pk, ir, _ = nodes
    envelopes = [_sealed(pk, "ROUTINE", f"part {n}") for n in range(JOB_ENVELOPES + 5)]
    config = load_config(Path(pk.ctx.config.data))
    agreement = config.agreement()
    body = b'{"envelopes":[' + b",".join(e.raw for e in envelopes) + b"]}"
    path = "/federation/v1/envelopes"
    real_run = ir.ctx.writer.run
    weights: list[int] = []

    async def second_part_fails(job: Any, *, urgent: bool = False, weight: int = 1) -> Any:
        weights.append(weight)
        if len(weights) == 2:
            raise RuntimeError("the disk is full")
        return await real_run(job, urgent=urgent, weight=weight)

    published: list[Event] = []
    real_publish = ir.ctx.bus.publish
    ir.ctx.writer.run = second_part_fails  # type: ignore[method-assign]
    ir.ctx.bus.publish = lambda *events: published.extend(events)  # type: ignore[method-assign]
    try:
        app = create_app(ir, start_background=False)
        # What a peer sees: the error as the node answers it, not the exception the test client raises.
        with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:

            def post() -> Any:
                headers = wire.sign_request(
                    config.signer(), "pk", wire.ratify(agreement, config.signer()), agreement, "POST", path, body,
                    int(time.time()), "ir",
                )  # fmt: skip
                return client.post(path, content=body, headers={**headers, **receipts.ASK_BATCH})

            failed = post()
            ir.ctx.writer.run = real_run  # type: ignore[method-assign]
            again = post()
    finally:
        del ir.ctx.writer.run
        ir.ctx.bus.publish = real_publish  # type: ignore[method-assign]
    assert weights == [JOB_ENVELOPES, 5]  # in parts of JOB_ENVELOPES, in order
    # The request fails as a whole, with no traceback; the part stored says so on the stream.
    assert failed.status_code == 500 and "the disk is full" not in failed.text
    announced = [e.id for e in published if e.kind == "message"]
    assert announced[:JOB_ENVELOPES] == [e.id for e in envelopes[:JOB_ENVELOPES]]
    # Sent again, the stored part gets the receipts it got, and the rest is stored now.
    assert again.status_code == 200, again.text
    results = again.json()["results"]
    assert [r["id"] for r in results] == [e.id for e in envelopes] and all("receipt" in r for r in results)
