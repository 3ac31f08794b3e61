"""The answer to a FLASH message goes ahead of the writer's queue, as the message did.

Two real nodes' data in process (no peer running): pk seals a message, ir stores it as received,
and ir's operator answers it through ir's API while a spy notes how the job reached the writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from detente.node import outgoing
from detente.node.demo import setup_demo
from detente.node.incoming import receive_job
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


def _received(pk: Node, ir: Node, precedence: str) -> str:
    """Have pk seal a message to ir:dgmo and ir store it as delivered; return its id."""
    with pk.ctx.engine.connect() as conn:
        operator = operators_db.by_name(conn, "pk-dgmo")
    assert operator is not None
    message = outgoing.check_message(
        pk.ctx, operator, channel="dgmo", to="ir:dgmo", precedence=precedence, kind="hotline.text",
        body={"text": f"{precedence} for the answer"}, refs=[], case=None, lang=None,
    )  # fmt: skip
    sent = pk.ctx.writer.run_sync(outgoing.send_job(pk.ctx, operator, message))
    envelope = sent.envelope
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
