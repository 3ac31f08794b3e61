"""One storage suite, run against SQLite and a real PostgreSQL the test run starts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, event, inspect, select

from detente.errors import Conflict
from detente.store import evidence, workflow  # noqa: F401 - their tables join `metadata` on import
from detente.store import messages as db
from detente.store import operators as operators_db
from detente.store.db import migrate
from detente.store.tables import envelopes, log, metadata, sequences
from detente.store.writer import Writer
from support import envelope_row, run_async


def test_migrations_create_every_table_and_are_idempotent(any_engine: Engine) -> None:
    migrate(any_engine)  # a second run changes nothing
    names = set(inspect(any_engine).get_table_names())
    assert {"envelopes", "log", "outbox", "sequences", "operators", "ratifications", "links"} <= names


def test_sequences_count_per_peer_and_channel(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        assert [db.next_seq(conn, "ir", "dgmo") for _ in range(3)] == [1, 2, 3]
        assert db.next_seq(conn, "ir", "fs") == 1
        assert db.last_in_seq(conn, "ir", "dgmo") == 0
        db.set_in_seq(conn, "ir", "dgmo", 5)
        db.set_in_seq(conn, "ir", "dgmo", 6)
        assert db.last_in_seq(conn, "ir", "dgmo") == 6


def test_log_appends_are_dense_and_readable(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        indexes = [db.append_log(conn, f"leaf {n}".encode(), f"id-{n}") for n in range(5)]
        assert indexes == [0, 1, 2, 3, 4]
        assert db.read_leaves(conn, 1, 3) == [b"leaf 1", b"leaf 2"]
        assert db.log_size(conn) == 5


def test_outbox_orders_by_channel_sequence_and_is_idempotent(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        for n in (3, 1, 2):
            db.insert_envelope(conn, **envelope_row(n, raw=f'{{"n":{n}}}'.encode()))
            db.enqueue(conn, envelope_row(n)["id"], "ir", "dgmo", n)
        db.enqueue(conn, envelope_row(1)["id"], "ir", "dgmo", 1)
        assert [seq for _, _, _, seq in db.outbox_batch(conn, "ir", 10)] == [1, 2, 3]
        assert db.outbox_depth(conn, "ir") == 3
        db.dequeue(conn, [envelope_row(1)["id"]])
        assert db.outbox_depth(conn) == 2
        assert db.requeue_from(conn, "ir", "dgmo", 1) == 3
        assert db.outbox_depth(conn) == 3


def _queue(conn: Any, queued: dict[str, int], start: int = 0) -> dict[tuple[str, int], int]:
    """Queue `count` envelopes on each channel of `queued`; return (channel, seq) -> n of each row."""
    made, n = {}, start
    for channel, count in queued.items():
        for seq in range(1, count + 1):
            n += 1
            db.insert_envelope(conn, **envelope_row(n, channel=channel, seq=seq, raw=f"{channel} {seq}".encode()))
            db.enqueue(conn, envelope_row(n)["id"], "ir", channel, seq)
            made[(channel, seq)] = n
    return made


def _order(rows: list[tuple[int, bytes, str, int]]) -> list[str]:
    assert all(raw == f"{channel} {seq}".encode() for _, raw, channel, seq in rows)  # each row its own bytes
    return [f"{channel}{seq}" for _, _, channel, seq in rows]


def test_channels_take_turns_in_a_batch_each_in_sequence_order(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        _queue(conn, {"fs": 2, "dgmo": 5, "liaison": 1})
        # A message on a quiet channel is in the first turn, however long the others' queues.
        assert _order(db.outbox_batch(conn, "ir", 10)) == [
            "dgmo1", "fs1", "liaison1", "dgmo2", "fs2", "dgmo3", "dgmo4", "dgmo5",
        ]  # fmt: skip
        # A batch cut short keeps each channel's rows a prefix of its queue.
        assert _order(db.outbox_batch(conn, "ir", 4)) == ["dgmo1", "fs1", "liaison1", "dgmo2"]
        assert _order(db.outbox_batch(conn, "ir", 1)) == ["dgmo1"]
        assert db.outbox_batch(conn, "pk", 10) == []


def test_an_outbox_read_finds_its_channels_in_one_statement(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        _queue(conn, {"fs": 2, "dgmo": 5, "liaison": 1})
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(any_engine, "before_cursor_execute", seen)
        try:
            assert len(db.outbox_batch(conn, "ir", 10)) == 8
            # The channels, one run each (4 wanted of each: only dgmo fills it), then dgmo's rest.
            assert len(statements) == 5 and "RECURSIVE" in statements[0]
            statements.clear()
            assert db.outbox_batch(conn, "pk", 10) == []
            assert len(statements) == 1
        finally:
            event.remove(any_engine, "before_cursor_execute", seen)


def test_a_busy_channel_fills_what_the_quiet_ones_leave(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        _queue(conn, {"dgmo": 10, "fs": 1})
        assert _order(db.outbox_batch(conn, "ir", 8)) == ["dgmo1", "fs1"] + [f"dgmo{s}" for s in range(2, 8)]
        assert len(db.outbox_batch(conn, "ir", 200)) == 11


def test_a_batch_in_flight_is_left_out(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        _queue(conn, {"dgmo": 5, "fs": 2})
        assert _order(db.outbox_batch(conn, "ir", 10, after={"dgmo": 3, "fs": 2})) == ["dgmo4", "dgmo5"]
        assert db.outbox_batch(conn, "ir", 10, after={"dgmo": 5, "fs": 2}) == []
        assert _order(db.outbox_batch(conn, "ir", 3, after={"fs": 1})) == ["dgmo1", "fs2", "dgmo2"]


def test_the_migrations_build_exactly_the_tables_the_code_declares(any_engine: Engine) -> None:
    with any_engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert compare_metadata(context, metadata) == []


def test_sequence_numbers_are_unique_per_direction_peer_and_channel(any_engine: Engine) -> None:
    with pytest.raises(Exception), any_engine.begin() as conn:  # noqa: B017 - any integrity error
        db.insert_envelope(conn, **envelope_row(1))
        db.insert_envelope(conn, **envelope_row(2, seq=1, log_index=2))
    with any_engine.begin() as conn:  # link tests are unsequenced: many seq 0 rows are fine
        db.insert_envelope(conn, **envelope_row(1, seq=0))
        db.insert_envelope(conn, **envelope_row(2, seq=0, log_index=2))


def test_overdue_query_finds_only_unanswered_past_deadlines(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        db.insert_envelope(conn, **envelope_row(1))
        db.insert_envelope(conn, **envelope_row(2, deadline="2099-01-01T00:00:00.000Z"))
        db.insert_envelope(conn, **envelope_row(3, response_id="x"))
        db.insert_envelope(conn, **envelope_row(4, needs_ack=False))
        due = db.due_for_overdue(conn, "2024-01-16T14:00:00.000Z")
        assert [r["seq"] for r in due] == [1]
        assert db.next_deadline(conn) == "2024-01-16T13:15:00.000Z"


def test_writer_commits_batches_and_isolates_a_failing_job(any_engine: Engine) -> None:
    writer = Writer(any_engine)
    writer.start()
    try:

        def good(n: int) -> Any:
            return lambda conn: db.append_log(conn, f"w{n}".encode(), f"w{n}")

        def bad(conn: Connection) -> None:
            db.append_log(conn, b"doomed", "doomed")
            raise Conflict("refused")

        futures = [writer.submit(good(n)) for n in range(50)]
        failing = writer.submit(bad)
        futures += [writer.submit(good(n)) for n in range(50, 100)]
        results = [f.result(timeout=30) for f in futures]
        with pytest.raises(Conflict):
            failing.result(timeout=30)
        assert sorted(results) == list(range(100))
        with any_engine.connect() as conn:
            leaves = [r[0] for r in conn.execute(select(log.c.envelope_id).order_by(log.c.idx))]
        assert "doomed" not in leaves and len(leaves) == 100
        assert writer.batches < 100  # group commit did batch
    finally:
        writer.stop()


def test_writer_serialises_concurrent_callers(any_engine: Engine) -> None:
    writer = Writer(any_engine)
    writer.start()
    out: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(25):
            index = writer.run_sync(lambda conn: db.append_log(conn, b"x", "x"))
            with lock:
                out.append(index)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.stop()
    assert sorted(out) == list(range(200))


def _leaves(any_engine: Engine) -> list[str]:
    with any_engine.connect() as conn:
        return [r[0] for r in conn.execute(select(log.c.envelope_id).order_by(log.c.idx))]


def test_writer_on_the_event_loop_batches_and_isolates_a_failing_job(any_engine: Engine) -> None:
    writer = Writer(any_engine)
    threads_seen: set[int] = set()

    def good(n: int) -> Any:
        def job(conn: Connection) -> int:
            threads_seen.add(threading.get_ident())
            return db.append_log(conn, f"w{n}".encode(), f"w{n}")

        return job

    def bad(conn: Connection) -> None:
        db.append_log(conn, b"doomed", "doomed")
        raise Conflict("refused")

    async def main() -> tuple[list[Any], int]:
        writer.attach(asyncio.get_running_loop())
        calls = [writer.run(good(n)) for n in range(50)] + [writer.run(bad)]
        calls += [writer.run(good(n)) for n in range(50, 100)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await writer.detach()
        return outcomes, threading.get_ident()

    outcomes, loop_thread = run_async(main())
    assert isinstance(outcomes[50], Conflict)
    assert sorted(outcomes[:50] + outcomes[51:]) == list(range(100))
    assert threads_seen == {loop_thread}  # the jobs ran on the loop, not on a writer thread
    assert writer.batches < 100  # group commit did batch
    leaves = _leaves(any_engine)
    assert "doomed" not in leaves and len(leaves) == 100


def test_writer_on_the_event_loop_gathers_jobs_that_arrive_during_a_commit(any_engine: Engine) -> None:
    writer = Writer(any_engine)

    async def main() -> None:
        writer.attach(asyncio.get_running_loop())
        first = [asyncio.ensure_future(writer.run(lambda conn: db.append_log(conn, b"a", "a"))) for _ in range(2)]
        await asyncio.sleep(0)  # the two calls are queued; the writer's batch runs next
        # These start after the batch has handed its COMMIT to a thread, and queue behind it.
        rest = [asyncio.ensure_future(writer.run(lambda conn: db.append_log(conn, b"b", "b"))) for _ in range(20)]
        assert sorted(await asyncio.gather(*first)) == [0, 1]
        assert sorted(await asyncio.gather(*rest)) == list(range(2, 22))
        await writer.detach()

    run_async(main())
    assert writer.batches == 2 and writer.jobs == 22
    assert len(_leaves(any_engine)) == 22


def test_writer_on_the_event_loop_runs_urgent_jobs_in_the_next_batch(any_engine: Engine) -> None:
    writer = Writer(any_engine)

    def append(name: str) -> Any:
        return lambda conn: db.append_log(conn, name.encode(), name)

    async def main() -> None:
        writer.attach(asyncio.get_running_loop())
        first = [asyncio.ensure_future(writer.run(append(f"first {n}"))) for n in range(2)]
        await asyncio.sleep(0)  # the first batch is running: what comes now waits for the next one
        waiting = [asyncio.ensure_future(writer.run(append(f"waiting {n}"))) for n in range(20)]
        flash = asyncio.ensure_future(writer.run(append("FLASH"), urgent=True))
        await asyncio.gather(*first, *waiting, flash)
        await writer.detach()

    run_async(main())
    # The FLASH job, queued last, committed alone right after the batch that was running.
    assert _leaves(any_engine) == ["first 0", "first 1", "FLASH"] + [f"waiting {n}" for n in range(20)]
    assert writer.batches == 3


def test_writer_on_the_event_loop_bounds_a_batch_by_the_weight_of_its_jobs(any_engine: Engine) -> None:
    from sqlalchemy import event

    writer = Writer(any_engine, max_weight=10)
    event_batches: list[list[str]] = []

    def append(name: str) -> Any:
        def job(conn: Any) -> int:
            if conn.info.get("batch") is None:  # the first job of a transaction opens a new batch
                conn.info["batch"] = []
                event_batches.append(conn.info["batch"])
            conn.info["batch"].append(name)
            return db.append_log(conn, name.encode(), name)

        return job

    async def main() -> None:
        writer.attach(asyncio.get_running_loop())
        weights = {"a": 4, "b": 4, "c": 4, "heavy": 30, "d": 1, "e": 1}
        await asyncio.gather(*(writer.run(append(name), weight=w) for name, w in weights.items()))
        await writer.detach()

    event.listen(any_engine, "commit", lambda conn: conn.info.pop("batch", None))
    run_async(main())
    # Up to ten envelopes' worth a batch, and a heavier job alone.
    assert event_batches == [["a", "b"], ["c"], ["heavy"], ["d", "e"]]
    assert _leaves(any_engine) == ["a", "b", "c", "heavy", "d", "e"]


@pytest.mark.parametrize(
    ("turns_from", "arriving", "expected"),
    [
        # The FLASH ran next and was committed with n0 alone; n1 and n2 went back to the head of
        # the queue with their weights (4 + 4: n3 waits for the batch after).
        (9, ["FLASH"], ["n0", "FLASH", "COMMIT", "n1", "n2", "COMMIT", "n3", "COMMIT"]),
        # Receipts go ahead of the queue, in the next batch, but do not cut in: that costs a commit.
        (9, ["RECEIPTS"], ["n0", "n1", "n2", "COMMIT", "RECEIPTS", "COMMIT", "n3", "COMMIT"]),
        (
            9,
            ["RECEIPTS", "FLASH"],
            ["n0", "FLASH", "COMMIT", "RECEIPTS", "COMMIT", "n1", "n2", "COMMIT", "n3", "COMMIT"],
        ),
        # A batch lighter than TURNS_FROM (1 + 4 + 4 < 10) runs without turns: the FLASH waits for it.
        (10, ["FLASH"], ["n0", "n1", "n2", "COMMIT", "FLASH", "COMMIT", "n3", "COMMIT"]),
    ],
)
def test_an_urgent_job_cuts_into_a_running_batch_at_its_next_turn(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch, turns_from: int, arriving: list[str], expected: list[str]
) -> None:
    from sqlalchemy import event

    from detente.store import writer as writer_mod

    monkeypatch.setattr(writer_mod, "TURN", 0.0)  # a turn before every job but a batch's first ...
    monkeypatch.setattr(writer_mod, "TURNS_FROM", turns_from)  # ... of that many envelopes' worth or more
    writer = Writer(any_engine, max_weight=10)
    seen: list[str] = []

    def append(name: str, then: Any = None) -> Any:
        def job(conn: Any) -> int:
            seen.append(name)
            if then is not None:
                then()
            return db.append_log(conn, name.encode(), name)

        return job

    async def main() -> None:
        writer.attach(asyncio.get_running_loop())
        later: list[asyncio.Future[int]] = []

        def they_arrive() -> None:  # while n0 runs: they reach the writer at its next turn
            for name in arriving:
                flash = name == "FLASH"
                later.append(asyncio.ensure_future(writer.run(append(name), urgent=flash, ahead=not flash)))

        weights = {"n0": 1, "n1": 4, "n2": 4, "n3": 4}
        jobs = [writer.run(append(n, they_arrive if n == "n0" else None), weight=w) for n, w in weights.items()]
        await asyncio.gather(*jobs)
        await asyncio.gather(*later)  # queued while n0 ran
        await writer.detach()

    event.listen(any_engine, "commit", lambda conn: seen.append("COMMIT"))
    run_async(main())
    assert seen == expected
    assert _leaves(any_engine) == [name for name in expected if name != "COMMIT"]
    assert writer.batches == expected.count("COMMIT")


def test_a_failing_job_that_cut_in_fails_alone(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from detente.store import writer as writer_mod

    monkeypatch.setattr(writer_mod, "TURN", 0.0)
    monkeypatch.setattr(writer_mod, "TURNS_FROM", 2)
    writer = Writer(any_engine)
    ran: list[str] = []

    def append(name: str) -> Any:
        def job(conn: Any) -> int:
            ran.append(name)
            return db.append_log(conn, name.encode(), name)

        return job

    def failing_flash(conn: Any) -> None:
        ran.append("FLASH")
        db.append_log(conn, b"FLASH", "FLASH")
        raise Conflict("the FLASH job refuses")

    async def main() -> Any:
        writer.attach(asyncio.get_running_loop())
        later: list[asyncio.Future[Any]] = []

        def first(conn: Any) -> int:
            if not later:
                later.append(asyncio.ensure_future(writer.run(failing_flash, urgent=True)))
            return append("n0")(conn)

        await asyncio.gather(writer.run(first), *(writer.run(append(f"n{k}")) for k in (1, 2)))
        outcome = (await asyncio.gather(*later, return_exceptions=True))[0]
        await writer.detach()
        return outcome

    outcome = run_async(main())
    # The batch it cut into was run again with a SAVEPOINT per job: only the FLASH job failed, and
    # the jobs it had sent back to the queue ran after.
    assert ran == ["n0", "FLASH", "n0", "FLASH", "n1", "n2"]
    assert isinstance(outcome, Conflict)
    assert _leaves(any_engine) == ["n0", "n1", "n2"]


def test_writer_on_the_event_loop_commits_a_lone_job_on_the_loop(any_engine: Engine) -> None:
    from sqlalchemy import event

    writer = Writer(any_engine)
    commits: list[int] = []
    event.listen(any_engine, "commit", lambda conn: commits.append(threading.get_ident()))

    async def main() -> tuple[int, list[int], list[int]]:
        writer.attach(asyncio.get_running_loop())
        lone = await writer.run(lambda conn: db.append_log(conn, b"lone", "lone"))
        pair = await asyncio.gather(*(writer.run(lambda conn: db.append_log(conn, b"p", "p")) for _ in range(2)))
        await writer.detach()
        return lone, sorted(pair), [threading.get_ident()]

    lone, pair, (loop_thread,) = run_async(main())
    assert (lone, pair) == (0, [1, 2]) and writer.batches == 2
    # The lone job committed on the loop; the batch of two handed its COMMIT to a thread.
    assert commits[0] == loop_thread and commits[1] != loop_thread and len(commits) == 2
    assert _leaves(any_engine) == ["lone", "p", "p"]


def test_writer_detach_commits_what_is_queued_and_other_loops_use_the_thread(any_engine: Engine) -> None:
    writer = Writer(any_engine)

    async def serve() -> list[int]:
        writer.attach(asyncio.get_running_loop())
        queued = [asyncio.ensure_future(writer.run(lambda conn: db.append_log(conn, b"q", "q"))) for _ in range(5)]
        await asyncio.sleep(0)  # the five calls are now queued on the loop
        await writer.detach()
        assert len(_leaves(any_engine)) == 5  # detach returned after their commit
        return list(await asyncio.gather(*queued))

    assert sorted(run_async(serve())) == list(range(5))

    async def elsewhere() -> int:
        return await writer.run(lambda conn: db.append_log(conn, b"t", "t"))

    try:
        assert run_async(elsewhere()) == 5  # not attached to this loop: the writer thread ran it
        assert writer._thread is not None
    finally:
        writer.stop()


def test_writer_on_the_event_loop_reports_a_failed_commit(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.engine import RootTransaction
    from sqlalchemy.exc import OperationalError

    writer = Writer(any_engine)

    def failing_commit(self: RootTransaction) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    async def main() -> list[Any]:
        writer.attach(asyncio.get_running_loop())
        with monkeypatch.context() as patch:
            patch.setattr(RootTransaction, "commit", failing_commit)
            outcomes = await asyncio.gather(
                *(writer.run(lambda conn: db.append_log(conn, b"x", "x")) for _ in range(3)), return_exceptions=True
            )
            try:  # a lone job, committed on the loop
                await writer.run(lambda conn: db.append_log(conn, b"y", "y"))
            except OperationalError as exc:
                outcomes.append(exc)
        await writer.detach()
        return outcomes

    outcomes = run_async(main())
    assert len(outcomes) == 4 and all(isinstance(o, OperationalError) for o in outcomes)
    assert _leaves(any_engine) == []  # nothing was written


def test_writer_on_the_event_loop_finishes_a_commit_it_is_cancelled_in(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from sqlalchemy.engine import RootTransaction

    writer = Writer(any_engine)
    real_commit = RootTransaction.commit
    commit_threads: list[int] = []

    def slow_commit(self: RootTransaction) -> None:
        commit_threads.append(threading.get_ident())
        time.sleep(0.2)
        real_commit(self)

    async def main() -> tuple[bool, int]:
        writer.attach(asyncio.get_running_loop())
        with monkeypatch.context() as patch:
            patch.setattr(RootTransaction, "commit", slow_commit)
            calls = [asyncio.ensure_future(writer.run(lambda conn: db.append_log(conn, b"c", "c"))) for _ in range(2)]
            await asyncio.sleep(0.05)  # the COMMIT of the two is now running in a thread
            assert writer._draining is not None
            writer._draining.cancel()
            await asyncio.wait(calls)
        # The cancelled batch's COMMIT ran to its end before the connection went back to the pool,
        # so the writer (and the connection) go on working.
        after = await writer.run(lambda conn: db.append_log(conn, b"d", "d"))
        await writer.detach()
        return all(c.cancelled() for c in calls), after

    cancelled, after = run_async(main())
    assert cancelled and commit_threads  # the callers saw the cancellation; the commit ran in a thread
    assert after == 2 and _leaves(any_engine) == ["c", "c", "d"]


def test_operators_and_ratifications(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        operators_db.add_operator(
            conn, operator_id="op1", name="pk-dgmo", token_hash="h" * 64, password_hash=None, roles=["operator"],
            offices=["pk:dgmo"], lang="en", created="2024-01-16T13:05:00.000Z",
        )  # fmt: skip
        op = operators_db.by_token_hash(conn, "h" * 64)
        assert op is not None and op.offices == ("pk:dgmo",) and op.has("operator")
        assert operators_db.by_name(conn, "nobody") is None
        operators_db.save_ratification(conn, "pk", "a" * 64, "sig1", "t")
        operators_db.save_ratification(conn, "pk", "a" * 64, "sig2", "t")
        assert operators_db.ratifications_of(conn, "a" * 64) == {"pk": "sig2"}
    with any_engine.connect() as conn:
        assert conn.execute(select(sequences)).first() is None
        assert conn.execute(select(envelopes)).first() is None


def test_rows_by_id_in_one_read_and_batch_updates(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        for n in (1, 2, 3):
            db.insert_envelope(conn, **envelope_row(n))
        ids = [envelope_row(n)["id"] for n in (1, 2, 3)]
        found = db.get_envelopes(conn, [ids[0], "no-such-id", ids[2]])
        assert sorted(found) == sorted([ids[0], ids[2]]) and found[ids[2]]["seq"] == 3
        db.update_envelopes(conn, [{"target_id": i, "state": "delivered", "delivered_at": "t"} for i in ids[:2]])
        rows = db.get_envelopes(conn, ids)
        assert [rows[i]["state"] for i in ids] == ["delivered", "delivered", envelope_row(3)["state"]]
        assert db.get_envelopes(conn, []) == {}


def test_the_envelopes_referring_to_one_are_listed_in_log_order(any_engine: Engine) -> None:
    with any_engine.begin() as conn:
        db.insert_envelope(conn, **envelope_row(1))
        db.insert_envelope(conn, **envelope_row(3, type="ack", ref=envelope_row(1)["id"], direction="in"))
        db.insert_envelope(conn, **envelope_row(2, type="overdue", ref=envelope_row(1)["id"], direction="in"))
        db.insert_envelope(conn, **envelope_row(4, type="ack", ref=envelope_row(2)["id"]))  # about another one
    with any_engine.connect() as conn:
        referred = db.referring(conn, envelope_row(1)["id"])
        assert [(r["id"], r["type"], r["log_index"]) for r in referred] == [
            (envelope_row(2)["id"], "overdue", 2),
            (envelope_row(3)["id"], "ack", 3),
        ]
        assert db.referring(conn, envelope_row(9)["id"]) == []
