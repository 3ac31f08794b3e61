"""A peer's clock within the federation's ±5 minutes, ahead or behind: deadlines and overdue notices.

Jobs run straight on in-process nodes (`conftest.nodes`); `ctx.clock_offsets` is what the link
tests would have measured (the peer's clock minus ours, in ms).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from detente.core import clocks
from detente.core import envelope as envelope_mod
from detente.core.envelope import Envelope
from detente.core.precedence import format_time, now, parse_time
from detente.node.incoming import check_envelope, receipts_job, receive_job
from detente.node.runtime import Node
from detente.store import messages as db

FLASH_MINUTES = 10  # agreements/pk-ir.toml: FLASH on dgmo
SEQ = itertools.count(1)  # the module's nodes are shared: each envelope takes the channel's next number
IR_SEQ = itertools.count(1)  # the same channel, ir to pk


@pytest.fixture
def nodes(module_nodes: tuple[Node, Node]) -> Iterator[tuple[Node, Node]]:
    pk, ir = module_nodes
    yield pk, ir
    pk.ctx.clock_offsets.clear()
    ir.ctx.clock_offsets.clear()


def sealed(pk: Node, created: str, **fields: Any) -> Envelope:
    data = {
        "v": 1, "id": envelope_mod.uuid7(), "agreement": pk.ctx.agreement.hash, "channel": "dgmo",
        "from": "pk:dgmo", "to": "ir:dgmo", "seq": next(SEQ), "author": "tester", "precedence": "FLASH",
        "type": "hotline.text", "lang": "en", "refs": [], "case": None, "created": created,
        "body": {"text": "skewed"}, **fields,
    }  # fmt: skip
    return envelope_mod.seal(data, pk.ctx.signer)


def receive(ir: Node, env: Envelope) -> dict[str, Any]:
    checked = check_envelope(ir.ctx, "pk", envelope_mod.stored(env.raw).data)
    result: dict[str, Any] = ir.ctx.writer.run_sync(receive_job(ir.ctx, "pk", [checked], [checked.id])).results[0]
    assert "receipt" in result, result
    return result


def row(node: Node, envelope_id: str) -> Any:
    with node.ctx.engine.connect() as conn:
        return db.get_envelope(conn, envelope_id)


def seconds_between(a: str, b: str) -> float:
    return (parse_time(b) - parse_time(a)).total_seconds()


@pytest.mark.parametrize("offset_s", [-240, 240])
def test_an_incoming_deadline_is_measured_in_this_node_s_clock(nodes: tuple[Node, Node], offset_s: int) -> None:
    pk, ir = nodes
    ir.ctx.clock_offsets["pk"] = offset_s * 1000  # pk's clock reads `offset_s` more than ir's
    here = now()
    created = format_time(here + timedelta(seconds=offset_s))  # what pk stamps at this moment
    env = sealed(pk, created)
    receive(ir, env)
    deadline = row(ir, env.id)["deadline"]
    # The full ten minutes from now in ir's clock, not ten minutes from pk's stamp.
    assert abs(seconds_between(format_time(here), deadline) - FLASH_MINUTES * 60) < 2


def test_within_the_tolerance_nothing_is_corrected(nodes: tuple[Node, Node]) -> None:
    pk, ir = nodes
    ir.ctx.clock_offsets["pk"] = 900.0  # 0.9 s: clocks agree
    created = format_time(now())
    env = sealed(pk, created)
    receive(ir, env)
    assert seconds_between(created, row(ir, env.id)["deadline"]) == FLASH_MINUTES * 60


def test_an_overdue_notice_before_our_deadline_is_logged_but_changes_nothing(nodes: tuple[Node, Node]) -> None:
    pk, ir = nodes
    message = sealed(pk, format_time(now()))
    receive(ir, message)
    # pk's clock is ahead (not measured yet): it says the deadline passed, ours says ten minutes remain.
    notice = sealed(pk, format_time(now()), type="overdue", precedence="FLASH", refs=[message.id],
                    body={"deadline": format_time(now()), "notify": []})  # fmt: skip
    receive(ir, notice)
    kept = row(ir, message.id)
    assert kept["state"] == "delivered" and kept["overdue_at"] is None
    assert row(ir, notice.id) is not None  # the notice itself is stored and logged


def test_an_overdue_notice_after_our_deadline_marks_the_message(nodes: tuple[Node, Node]) -> None:
    pk, ir = nodes
    # Sent 10 min 5 s ago (it waited in pk's outbox while the link was down): its deadline passed here too.
    message = sealed(pk, format_time(now() - timedelta(minutes=FLASH_MINUTES, seconds=5)))
    receive(ir, message)
    notice = sealed(pk, format_time(now()), type="overdue", precedence="FLASH", refs=[message.id],
                    body={"deadline": format_time(now()), "notify": []})  # fmt: skip
    receive(ir, notice)
    marked = row(ir, message.id)
    assert marked["state"] == "overdue" and marked["overdue_at"] is not None


def stored_as_sent(pk: Node, env: Envelope) -> None:
    """Store `env` on pk as the send job would have (pk's own message to ir)."""
    with pk.ctx.engine.begin() as conn:
        db.insert_envelope(
            conn, id=env.id, direction="out", peer="ir", channel="dgmo", from_office="pk:dgmo", to_office="ir:dgmo",
            seq=env.seq, type="hotline.text", precedence="FLASH", author="tester", case_id=None, ref=None,
            created=env.created, raw=env.raw, log_index=db.append_log(conn, env.raw, env.id), needs_ack=True,
            deadline=env.created, state="accepted", receipt=None, delivered_at=None, recorded_at=env.created,
        )  # fmt: skip


def test_a_receipt_time_is_read_in_our_clock(nodes: tuple[Node, Node]) -> None:
    pk, ir = nodes
    pk.ctx.clock_offsets["ir"] = 240_000  # ir's clock is 4 min ahead
    env = sealed(pk, format_time(now()))
    # Stored on pk as sent, then the receipt ir stamped 4 minutes "later".
    receipt = receive(ir, env)["receipt"]
    stored_as_sent(pk, env)
    receipt["received"] = format_time(parse_time(env.created) + timedelta(minutes=4))
    pk.ctx.writer.run_sync(receipts_job(pk.ctx, "ir", [(env, receipt)]))
    assert row(pk, env.id)["delivered_at"] == env.created


@pytest.mark.parametrize("offset_s", [240, -240, -0.5])
def test_an_answer_from_a_peer_is_timed_in_our_clock(nodes: tuple[Node, Node], offset_s: float) -> None:
    pk, ir = nodes
    pk.ctx.clock_offsets["ir"] = offset_s * 1000  # ir's clock minus pk's
    message = sealed(pk, format_time(now() - timedelta(seconds=30)))
    stored_as_sent(pk, message)
    answered_at = now() + timedelta(seconds=offset_s)  # ir's clock, as its duty officer answers
    data = {
        "v": 1, "id": envelope_mod.uuid7(), "agreement": ir.ctx.agreement.hash, "channel": "dgmo",
        "from": "ir:dgmo", "to": "pk:dgmo", "seq": next(IR_SEQ), "author": "ir-dgmo", "precedence": "FLASH",
        "type": "ack", "lang": "en", "refs": [message.id], "case": None, "created": format_time(answered_at),
        "body": {"note": "seen"},
    }  # fmt: skip
    ack = envelope_mod.seal(data, ir.ctx.signer)
    checked = check_envelope(pk.ctx, "ir", envelope_mod.stored(ack.raw).data)
    pk.ctx.writer.run_sync(receive_job(pk.ctx, "ir", [checked], [checked.id]))
    answered = row(pk, message.id)
    assert answered["state"] == "acknowledged"
    if offset_s == -0.5:  # within the tolerance: the peer's own stamp, as it signed it
        assert answered["response_at"] == ack.created
    else:  # the moment in pk's clock: now, give or take the test's own run (not 4 minutes off)
        assert abs(seconds_between(format_time(now()), answered["response_at"])) < 5
        # and never before the message it answers, nor after pk stored the answer
        assert message.created <= answered["response_at"] <= format_time(now())


def test_clock_arithmetic() -> None:
    assert clocks.measured_offset("2026-01-01T00:04:00.100Z", parse_time("2026-01-01T00:00:00Z").timestamp(), 0.2) == (
        pytest.approx(240.0)
    )
    assert clocks.to_local("2026-01-01T00:04:00.000Z", 240_000) == "2026-01-01T00:00:00.000Z"
    assert clocks.to_local("2026-01-01T00:04:00.000Z", 999) == "2026-01-01T00:04:00.000Z"
    assert clocks.to_local("2026-01-01T00:04:00.000Z", None) == "2026-01-01T00:04:00.000Z"
    assert clocks.describe(None) is None and clocks.describe(-999.9) is None
    assert clocks.describe(240_000) == "its clock is 4 min 0 s ahead of ours"
    assert clocks.describe(-1_500) == "its clock is 1.5 s behind ours"
    assert clocks.amount(-240.4, "{minutes} دقیقه {seconds} ثانیه") == "4 دقیقه 0 ثانیه"
    assert clocks.amount(59.94, short="{seconds:.1f} ثانیه") == "59.9 ثانیه"


def test_a_request_time_far_from_the_measured_offset_makes_it_stale() -> None:
    assert not clocks.stale(240_000, 240) and not clocks.stale(240_000, 236)
    assert clocks.stale(240_000, 0) and clocks.stale(-1_000, 5)
    assert not clocks.stale(None, 3) and clocks.stale(None, 6)
