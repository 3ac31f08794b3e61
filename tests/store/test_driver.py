"""The hot statements on the driver's cursor (`store.driver`) behave as `conn.execute` would (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, bindparam, delete, event, insert, select
from sqlalchemy.exc import IntegrityError

from detente.store import driver, logtail, tlog
from detente.store import messages as db
from detente.store.db import write_transaction
from detente.store.tables import envelopes, outbox, sequences
from support import RAW, envelope_row


def test_rows_read_through_the_driver_equal_sqlalchemys_with_their_types(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        db.insert_envelope(conn, **envelope_row(1))
        db.insert_envelope(conn, **envelope_row(2, needs_ack=False, deadline=None))
    with any_engine.connect() as conn:
        for n in (1, 2):
            through_driver = db.get_envelope(conn, envelope_row(n)["id"])
            through_sqlalchemy = (
                conn.execute(select(envelopes).where(envelopes.c.id == envelope_row(n)["id"])).mappings().one()
            )
            assert through_driver == dict(through_sqlalchemy)
            assert through_driver is not None
            # The result processors ran: a boolean, not SQLite's 0/1; bytes, not a memoryview.
            assert type(through_driver["needs_ack"]) is bool and through_driver["needs_ack"] is (n == 1)
            assert type(through_driver["raw"]) is bytes and through_driver["raw"] == RAW
        assert db.get_envelope(conn, "01a20000-0000-7000-8000-999999999999") is None
        assert set(db.get_envelopes(conn, [envelope_row(1)["id"]])) == {envelope_row(1)["id"]}
        assert set(db.get_envelopes(conn, [envelope_row(1)["id"], envelope_row(2)["id"]])) == {
            envelope_row(1)["id"],
            envelope_row(2)["id"],
        }


def test_a_statements_own_literal_is_bound_and_returning_answers(any_engine: Engine) -> None:
    # `last = last + 1` carries its 1 as a parameter the caller does not give.
    with write_transaction(any_engine) as conn:
        assert [db.next_seq(conn, "ir", "dgmo") for _ in range(3)] == [1, 2, 3]
        db.set_in_seq(conn, "ir", "dgmo", 7)
        assert db.last_in_seq(conn, "ir", "dgmo") == 7
    with any_engine.connect() as conn:
        stored = {(r.direction, r.last) for r in conn.execute(select(sequences.c.direction, sequences.c.last))}
    assert stored == {("out", 3), ("in", 7)}


def test_the_outbox_through_the_driver(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        for n in (1, 2, 3):
            db.insert_envelope(conn, **envelope_row(n))
            db.enqueue(conn, envelope_row(n)["id"], "ir", "dgmo", n, new=True)
        db.enqueue(conn, envelope_row(2)["id"], "ir", "dgmo", 2)  # already queued: ignored
    with any_engine.connect() as conn:
        batch = db.outbox_batch(conn, "ir", 2)
        assert [(raw, channel, seq) for _, raw, channel, seq in batch] == [
            (b"{\x00\xff}", "dgmo", 1),
            (b"{\x00\xff}", "dgmo", 2),
        ]
        assert db.outbox_depth(conn, "ir") == 3


def test_delivered_envelopes_leave_the_outbox_in_one_driver_call(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        for n in (1, 2, 3):
            db.insert_envelope(conn, **envelope_row(n))
            db.enqueue(conn, envelope_row(n)["id"], "ir", "dgmo", n, new=True)
        db.dequeue(conn, [envelope_row(1)["id"], envelope_row(3)["id"], "01a20000-0000-7000-8000-999999999999"])
        db.dequeue(conn, [])
    with any_engine.connect() as conn:
        assert [seq for _, _, _, seq in db.outbox_batch(conn, "ir", 10)] == [2]


def test_hand_written_sql_runs_in_the_drivers_own_style(any_engine: Engine) -> None:
    mark = "?" if any_engine.dialect.paramstyle == "qmark" else "%s"
    with write_transaction(any_engine) as conn:
        rows = [("in", "ir", f"c{n}", n) for n in range(3)]
        sql = f"INSERT INTO sequences (direction, peer, channel, last) VALUES ({mark}, {mark}, {mark}, {mark})"
        driver.execute_sql(conn, sql, rows, many=True)
        assert db.last_in_seq(conn, "ir", "c2") == 2
        with pytest.raises(IntegrityError):
            driver.execute_sql(conn, sql, rows[0])  # the same key again


def test_updates_of_several_rows_in_one_driver_call(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        for n in (1, 2):
            db.insert_envelope(conn, **envelope_row(n))
        db.update_envelopes(
            conn, [{"target_id": envelope_row(n)["id"], "state": "delivered", "receipt": f"r{n}"} for n in (1, 2)]
        )
        db.update_envelopes(conn, [])
    with any_engine.connect() as conn:
        got = {(r.state, r.receipt) for r in conn.execute(select(envelopes.c.state, envelopes.c.receipt))}
    assert got == {("delivered", "r1"), ("delivered", "r2")}


def test_one_rows_update_through_the_driver(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        for n in (1, 2):
            db.insert_envelope(conn, **envelope_row(n))
        db.update_envelope(conn, envelope_row(2)["id"], state="acknowledged", response_note="seen", needs_ack=False)
    with any_engine.connect() as conn:
        got = {r.id: (r.state, r.response_note, r.needs_ack) for r in conn.execute(select(envelopes))}
    assert got == {
        envelope_row(1)["id"]: ("accepted", None, True),
        envelope_row(2)["id"]: ("acknowledged", "seen", False),
    }


def test_a_driver_error_is_sqlalchemys_and_leaves_the_transaction_to_its_owner(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        db.insert_envelope(conn, **envelope_row(1))
    with pytest.raises(IntegrityError), write_transaction(any_engine) as conn:
        db.insert_envelope(conn, **envelope_row(2))
        db.insert_envelope(conn, **envelope_row(3, id=envelope_row(1)["id"]))  # the same primary key
    with any_engine.connect() as conn:  # the whole transaction was rolled back: row 2 is not there
        assert [r.id for r in conn.execute(select(envelopes.c.id))] == [envelope_row(1)["id"]]


def test_the_engines_statement_listeners_see_driver_statements_and_the_log_is_written_first(any_engine: Engine) -> None:
    seen: list[str] = []
    sqlalchemy_level: list[object] = []
    event.listen(any_engine, "before_cursor_execute", lambda _c, _cu, statement, *_: seen.append(statement))
    event.listen(any_engine, "before_execute", lambda *args: sqlalchemy_level.append(args[1]))
    with write_transaction(any_engine) as conn:
        logtail.append(conn, b"leaf", envelope_row(1)["id"])
        seen.clear()
        sqlalchemy_level.clear()
        # The append waits on the connection; the driver's read of the log's size must see it.
        assert logtail.log_size(conn) == 1
        assert db.last_in_seq(conn, "ir", "dgmo") == 0
    assert any(s.startswith("INSERT INTO log") for s in seen)
    assert any("max(log.idx)" in s for s in seen) and any("FROM sequences" in s for s in seen)
    # Those statements took the driver's path: none went through SQLAlchemy's `execute`.
    assert sqlalchemy_level == []


def test_statements_sqlalchemy_must_finish_at_execution_time_are_refused(any_engine: Engine) -> None:
    with any_engine.connect() as conn:
        with pytest.raises(ValueError, match="needs SQLAlchemy at execution time"):
            driver.compiled(db._ENVELOPES_GET, conn.dialect)
        expanding = delete(outbox).where(outbox.c.envelope_id.in_(bindparam("ids", expanding=True)))
        with pytest.raises(ValueError, match="needs SQLAlchemy at execution time"):
            driver.compiled(expanding, conn.dialect)


def test_compiled_once_per_statement_dialect_and_columns(any_engine: Engine) -> None:
    stmt = insert(outbox)
    with any_engine.connect() as conn:
        first = driver.compiled(stmt, conn.dialect, ["envelope_id", "peer", "channel", "seq"])
        assert driver.compiled(stmt, conn.dialect, ["seq", "channel", "peer", "envelope_id"]) is first
        other = driver.compiled(stmt, conn.dialect, ["envelope_id", "peer", "channel", "seq", "attempts"])
        assert other is not first and "attempts" in other.sql and "attempts" not in first.sql


def test_proof_of_delivery_reads_and_marks_through_the_driver(any_engine: Engine) -> None:
    with write_transaction(any_engine) as conn:
        db.insert_envelope(conn, **envelope_row(1, log_index=5, receipt="r1"))
        db.insert_envelope(conn, **envelope_row(2, log_index=3, receipt="r2"))
        db.insert_envelope(conn, **envelope_row(3, log_index=4))  # no receipt yet
        db.insert_envelope(conn, **envelope_row(4, log_index=6, receipt="r4", peer="xx"))
    with any_engine.connect() as conn:
        waiting = tlog.unverified_sent(conn, "ir", 10)
        assert [(r["id"], r["receipt"]) for r in waiting] == [(envelope_row(n)["id"], f"r{n}") for n in (2, 1)]
        assert type(waiting[0]["raw"]) is bytes and waiting[0]["raw"] == RAW
        assert len(tlog.unverified_sent(conn, "ir", 1)) == 1
    with write_transaction(any_engine) as conn:
        tlog.mark_verified(conn, 9, "2024-01-16T13:06:00.000Z", [(envelope_row(2)["id"], [b"\x01" * 32])])
        tlog.mark_verified(conn, 12, "2024-01-16T13:07:00.000Z", [(envelope_row(2)["id"], [])])  # keeps the first
        tlog.mark_verified(conn, 12, "2024-01-16T13:07:00.000Z", [])
    with any_engine.connect() as conn:
        assert [r["id"] for r in tlog.unverified_sent(conn, "ir", 10)] == [envelope_row(1)["id"]]
        marked = conn.execute(
            select(envelopes.c.verified_size, envelopes.c.peer_proof).where(envelopes.c.id == envelope_row(2)["id"])
        ).one()
    assert (marked.verified_size, marked.peer_proof) == (9, '["' + "01" * 32 + '"]')
