"""Stored Merkle hashes written with each log append: group commit, rollbacks, restarts, migration."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from detente.core import merkle
from detente.errors import Error
from detente.store import messages, tlog
from detente.store.db import alembic_config, make_engine, migrate, sqlite_url
from detente.store.writer import Writer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a database of the PostgreSQL server the run starts."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "node.db")
    return str(request.getfixturevalue("pg_database")("tlog"))


def _append(i: int, fail: bool = False) -> object:
    def job(conn: Connection) -> int:
        index = messages.append_log(conn, b"entry %d" % i, f"id-{i}")
        if fail:
            raise RuntimeError("rolled back")
        return index

    return job


def _check(engine: sa.Engine) -> int:
    """The table holds exactly the stored hashes of the log's entries; return the log size."""
    with engine.connect() as conn:
        entries = messages.read_leaves(conn, 0, 1 << 30)
        expected = merkle.MemoryHashStore(entries)
        count = merkle.stored_hash_count(len(entries))
        rows = conn.execute(sa.select(tlog.tree_hashes.c.idx, tlog.tree_hashes.c.hash).order_by(tlog.tree_hashes.c.idx))
        assert [(int(i), bytes(h)) for i, h in rows] == list(enumerate(expected.read_hashes(range(count))))
        for size in range(len(entries) + 1):
            assert tlog.tree_root(conn, size) == merkle.tree_hash(size, expected)
        return len(entries)


def test_group_commit_with_rolled_back_jobs_and_a_restart(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    writer = Writer(engine)
    writer.start()
    futures = [writer.submit(_append(i, fail=i % 5 == 2)) for i in range(300)]  # type: ignore[arg-type]
    indexes = []
    for future in futures:
        try:
            indexes.append(future.result())
        except RuntimeError:
            pass
    assert indexes == list(range(len(indexes))) and len(indexes) == 240
    assert writer.batches < 300  # several appends did share a transaction
    # A whole batch that fails to commit leaves the cache ahead of the table: it must notice.
    with engine.begin() as conn:
        messages.append_log(conn, b"lost", "lost")
        conn.rollback()
    writer.stop()
    assert _check(engine) == 240

    # After a restart (a new engine: no cache) the appends go on from the table.
    engine.dispose()
    engine = make_engine(url)
    writer = Writer(engine)
    for i in range(300, 333):
        writer.run_sync(_append(i))  # type: ignore[arg-type]
    writer.stop()
    assert _check(engine) == 273
    with engine.connect() as conn:
        entries = messages.read_leaves(conn, 0, 273)
        assert tlog.leaf_index_of(conn, merkle.leaf_hash(entries[200])) == 200
        assert tlog.leaf_index_of(conn, merkle.leaf_hash(b"never")) is None
    engine.dispose()


def test_missing_hashes_are_an_error(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        for i in range(7):
            messages.append_log(conn, b"e%d" % i, str(i))
        # Stored hash 6 is the root of entries 0..3: appending entry 7 needs it, and so does any root.
        conn.execute(sa.delete(tlog.tree_hashes).where(tlog.tree_hashes.c.idx == merkle.stored_hash_index(2, 0)))
    tlog.forget_edge(engine)
    with engine.begin() as conn, pytest.raises(Error, match="tree_hashes table is damaged"):
        tlog.tree_root(conn, 5)
    with engine.begin() as conn, pytest.raises(Error, match="tree_hashes table is damaged"):
        messages.append_log(conn, b"e7", "7")
    engine.dispose()


def test_migration_0002_backfills_an_existing_log(url: str) -> None:
    engine = make_engine(url)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        log = sa.table("log", sa.column("idx"), sa.column("leaf"), sa.column("envelope_id"))
        conn.execute(sa.insert(log), [{"idx": i, "leaf": b"old %d" % i, "envelope_id": str(i)} for i in range(77)])
    migrate(engine)
    assert _check(engine) == 77
    with engine.begin() as conn:  # and appending goes on where the backfill stopped
        assert messages.append_log(conn, b"new", "new") == 77
    assert _check(engine) == 78
    engine.dispose()
