"""Two nodes opened in-process (not serving) from a demo's setup, for jobs run straight on their writers;
and a FLASH of pk's delivered to ir, for what a peer answers to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detente.node import outgoing
from detente.node.demo import setup_demo
from detente.node.runtime import Node
from detente.store import operators as operators_db
from peer_support import deliver

ROOT = Path(__file__).resolve().parents[3]


def _opened(folder: Path) -> Iterator[tuple[Node, Node]]:
    demo: dict[str, Any] = setup_demo(folder, ROOT / "agreements" / "pk-ir.toml")
    pk, ir = (Node.open(Path(demo["nodes"][party]["data"])) for party in ("pk", "ir"))
    yield pk, ir
    for node in (pk, ir):
        node.ctx.writer.stop()
        node.ctx.engine.dispose()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """A fresh pair for each test."""
    yield from _opened(tmp_path / "demo")


@pytest.fixture(scope="module")
def module_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """One pair for a module's tests, which must not depend on each other's envelopes."""
    yield from _opened(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture
def flash(nodes: tuple[Node, Node]) -> str:
    """pk's FLASH in English, delivered to ir."""
    pk, ir = nodes
    with pk.ctx.engine.connect() as conn:
        operator = operators_db.by_name(conn, "pk-dgmo")
    assert operator is not None
    message = outgoing.check_message(
        pk.ctx, operator, channel="dgmo", to="ir:dgmo", precedence="FLASH", kind="hotline.text",
        body={"text": "Drone sighted over Kech district"}, refs=[], case=None, lang="en",
    )  # fmt: skip
    sent = pk.ctx.writer.run_sync(outgoing.send_job(pk.ctx, operator, message))
    assert "receipt" in deliver(pk, ir, sent.envelope)
    return sent.envelope.id
