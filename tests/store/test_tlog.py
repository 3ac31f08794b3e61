"""Stored Merkle hashes written with each log append: group commit, rollbacks, restarts, migration."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from detente.core import merkle, merkle_memory
from detente.errors import Error
from detente.store import logtail, messages, tlog
from detente.store.db import alembic_config, make_engine, migrate, sqlite_url
from detente.store.tables import log
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
        expected = merkle_memory.MemoryHashStore(entries)
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
    logtail.forget(engine)
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


def test_pending_appends_are_seen_in_their_transaction_and_dropped_with_a_savepoint(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        assert [messages.append_log(conn, b"a%d" % i, f"a{i}") for i in range(3)] == [0, 1, 2]
        # Not committed yet, but every read in the same transaction finds the rows.
        assert messages.log_size(conn) == 3
        assert messages.read_leaves(conn, 0, 10) == [b"a0", b"a1", b"a2"]
        assert tlog.tree_root(conn, 3) == merkle_memory.MemoryHashStore([b"a0", b"a1", b"a2"]).root()
        nested = conn.begin_nested()
        assert messages.append_log(conn, b"gone", "gone") == 3
        nested.rollback()
        # The rolled-back entry left no trace: the next one takes its index.
        assert messages.append_log(conn, b"a3", "a3") == 3
        nested = conn.begin_nested()
        assert messages.append_log(conn, b"a4", "a4") == 4
        nested.commit()
    assert _check(engine) == 5
    with engine.begin() as conn:  # a whole transaction rolled back after its rows were written
        messages.append_log(conn, b"lost", "lost")
        assert messages.log_size(conn) == 6
        conn.rollback()
    with engine.begin() as conn:
        assert messages.append_log(conn, b"a5", "a5") == 5
    assert _check(engine) == 6
    engine.dispose()


def test_pending_rows_wait_through_statements_on_other_tables(url: str) -> None:
    """A batch of messages writes its log rows with one statement per table, at the first read of the log."""
    engine = make_engine(url)
    migrate(engine)
    writes: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LOG"):
            writes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    with engine.begin() as conn:
        for i in range(3):
            messages.append_log(conn, b"b%d" % i, f"b{i}")
            messages.enqueue(conn, f"b{i}", "ir", "dgmo", i + 1, new=True)
            conn.execute(sa.select(1))
        assert writes == []  # the outbox rows and the SELECTs did not wait for, nor write, the log rows
        assert messages.log_size(conn) == 3
        assert len(writes) == 1
        messages.append_log(conn, b"b3", "b3")
    assert len(writes) == 2  # the last entry at COMMIT
    assert _check(engine) == 4
    engine.dispose()


def test_appends_by_another_engine_are_noticed(url: str) -> None:
    """Two engines (two processes, say) on one database: each re-reads the tail the other moved."""
    first, second = make_engine(url), make_engine(url)
    migrate(first)
    leaves = []
    for i in range(40):
        engine = first if (i // 7) % 2 == 0 else second
        with engine.begin() as conn:
            leaves.append(b"x%d" % i)
            assert messages.append_log(conn, leaves[-1], f"x{i}") == i
    assert _check(first) == 40
    first.dispose()
    second.dispose()


def test_a_log_row_that_cannot_be_written_fails_its_job_alone(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    writer = Writer(engine)

    def clash(conn: Connection) -> int:
        index = messages.append_log(conn, b"clash", "clash")
        # A row written behind the tail's back at the index the next append takes: writing the
        # pending rows of that append must fail, and fail this job only.
        conn.execute(sa.insert(log).values(idx=index + 1, leaf=b"dup", envelope_id="dup"))
        messages.append_log(conn, b"after", "after")
        messages.log_size(conn)  # a statement on the log writes the pending rows
        return index

    futures = [writer.submit(_append(0)), writer.submit(clash), writer.submit(_append(2))]
    assert futures[0].result() == 0
    with pytest.raises(sa.exc.IntegrityError):
        futures[1].result()
    assert futures[2].result() == 1
    writer.stop()
    assert _check(engine) == 2
    engine.dispose()


def test_the_newest_size_every_witness_cosigned(url: str) -> None:
    """What `detente log export` ends at: the newest of our checkpoints that every peer cosigned."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        assert tlog.newest_size_cosigned_by_all(conn, ["ir", "af"]) is None
        for size, witness in ((3, "ir"), (3, "af"), (5, "ir"), (7, "af"), (8, "ir"), (8, "xx")):
            tlog.add_cosignature(conn, size, witness, f"{witness}.detente/log", f"— {witness} line", "t")
        # 8 and 5 lack af, 7 lacks ir: 3 is the newest both cosigned. Others' cosignatures do not count.
        assert tlog.newest_size_cosigned_by_all(conn, ["ir", "af"]) == 3
        assert tlog.newest_size_cosigned_by_all(conn, ["ir"]) == 8
        assert tlog.newest_size_cosigned_by_all(conn, ["af", "af"]) == 7
        assert tlog.newest_size_cosigned_by_all(conn, []) is None
        assert tlog.witnesses_at(conn, 8) == ["ir", "xx"] and tlog.witnesses_at(conn, 4) == []
    engine.dispose()
