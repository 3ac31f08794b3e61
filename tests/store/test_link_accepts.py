"""What each peer last said it accepts is kept (`links.accepts`), written only when it changes.

Upgrade QA: a node restarted while a peer of an earlier release was unreachable took that peer to
run this release, and let an operator queue a translation the peer would refuse, holding its
channel. The end-to-end case, on real nodes, is in tests/integration/test_upgrade.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from detente.core import wire
from detente.errors import Unavailable
from detente.node.config import NodeConfig
from detente.node.context import NodeContext
from detente.node.runtime import Node
from detente.store import links as links_db
from detente.store.db import make_engine, migrate, sqlite_url
from detente.store.writer import Writer
from record_support import agreement_and_keys
from support import run_async

THIS = " ".join(wire.ACCEPTS)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """ir's node, not started, over a SQLite database (the statements are `keep_accepts`', run on both
    databases above); its writer runs on a thread of its own."""
    doc, signers = agreement_and_keys()
    url = sqlite_url(tmp_path / "node.db")
    engine = make_engine(url)
    migrate(engine)
    writer = Writer(engine)
    writer.start()
    config = NodeConfig(tmp_path, "ir", "127.0.0.1", 8443, url)
    try:
        yield Node(NodeContext(config, signers["ir"], doc, engine, writer))
    finally:
        writer.stop()
        engine.dispose()


def _kept(engine: Engine, peer: str) -> str | None:
    with engine.connect() as conn:
        row = links_db.get_link(conn, peer)
    return None if row is None else row["accepts"]


def test_keep_accepts_creates_the_link_row_or_updates_only_that_column(any_engine: Engine) -> None:
    at = "2026-01-16T13:05:00.000Z"
    with any_engine.begin() as conn:
        links_db.ensure_link(conn, "af", at)
        silent = links_db.get_link(conn, "af")
        assert silent is not None and silent["accepts"] is None  # never heard from
        links_db.keep_accepts(conn, "pk", "", at)  # it spoke before this node contacted it
        links_db.update_link(conn, "pk", state="UP", peer_status="busy")
        links_db.keep_accepts(conn, "pk", THIS, at)
        row = links_db.get_link(conn, "pk")
    assert row is not None and (row["state"], row["peer_status"], row["accepts"]) == ("UP", "busy", THIS)


def test_a_request_only_compares_and_the_node_writes_a_change_once(node: Node) -> None:
    ctx, woken = node.ctx, []
    ctx.accepts_changed = lambda: woken.append(1)
    for _ in range(3):
        ctx.heard_accepts("pk", None)  # an earlier release, on every request
    assert ctx.writer.jobs == 0 and len(woken) == 3 and not ctx.takes("pk", wire.TRANSLATION)
    run_async(node.keep_accepts())
    run_async(node.keep_accepts())  # nothing changed: no job
    assert ctx.writer.jobs == 1 and _kept(ctx.engine, "pk") == ""
    for _ in range(3):
        ctx.heard_accepts("pk", None)  # the same words, kept: not even a wake-up
    assert len(woken) == 3
    ctx.heard_accepts("pk", THIS)  # upgraded
    run_async(node.keep_accepts())
    assert ctx.writer.jobs == 2 and _kept(ctx.engine, "pk") == THIS and ctx.takes("pk", wire.TRANSLATION)


def test_a_write_that_failed_is_made_at_the_next_try(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    keep = links_db.keep_accepts

    def down(conn: Connection, peer: str, accepts: str, at: str) -> None:
        raise Unavailable("the database cannot be reached")

    node.ctx.heard_accepts("pk", None)
    monkeypatch.setattr(links_db, "keep_accepts", down)
    with pytest.raises(Unavailable):
        run_async(node.keep_accepts())
    monkeypatch.setattr(links_db, "keep_accepts", keep)
    assert _kept(node.ctx.engine, "pk") is None and node.ctx.unkept_accepts() == {"pk": frozenset()}
    run_async(node.keep_accepts())
    assert _kept(node.ctx.engine, "pk") == "" and node.ctx.unkept_accepts() == {}


def test_a_word_heard_just_before_the_node_stops_is_kept(node: Node) -> None:
    node.ctx.heard_accepts("pk", None)
    run_async(node.stop())
    assert _kept(node.ctx.engine, "pk") == ""  # the engine reconnects after `dispose`
