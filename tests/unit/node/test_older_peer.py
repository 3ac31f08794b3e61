"""A peer of an earlier release: nothing it would refuse is queued to it.

Upgrade QA: with pk on the first release, ir's translation of a pk message was refused by pk
(`unknown message type 'translation'`), and so was an alternate's ack naming its office
(`body.office: Extra inputs are not permitted`). A refused envelope holds its channel: the FLASH
sent after it waited until pk upgraded. Each node now names what it accepts beyond the first
release (`detente-accepts` on every signed request and answer); a peer that names nothing is of an
earlier release.
"""

from __future__ import annotations

import pytest

from detente.core import wire
from detente.errors import Conflict
from detente.node import answers, translations
from detente.node.runtime import Node
from detente.store import messages as db
from detente.store import operators as operators_db
from detente.store.operators import Operator

EARLIER = None  # what a node of the first release sends: no `detente-accepts` header at all
THIS = " ".join(wire.ACCEPTS)


def _operator(node: Node, name: str) -> Operator:
    with node.ctx.engine.connect() as conn:
        found = operators_db.by_name(conn, name)
    assert found is not None
    return found


def _log_size(node: Node) -> int:
    with node.ctx.engine.connect() as conn:
        return db.log_size(conn)


def _overdue(node: Node, message: str) -> None:
    def job(conn: object) -> None:
        db.update_envelope(conn, message, overdue_at="2026-01-01T00:00:00.000Z")  # type: ignore[arg-type]

    node.ctx.writer.run_sync(job)


def test_a_peer_is_taken_to_run_this_release_until_it_says_otherwise() -> None:
    assert wire.parse_accepts(EARLIER) == frozenset()
    assert wire.parse_accepts(f"{THIS} later-feature") == {*wire.ACCEPTS, "later-feature"}


@pytest.mark.parametrize(("header", "named"), [(THIS, True), (EARLIER, False)])
def test_an_alternates_answer_names_its_office_only_to_a_peer_that_takes_it(
    nodes: tuple[Node, Node], flash: str, header: str | None, named: bool
) -> None:
    _pk, ir = nodes
    assert ir.ctx.takes("pk", wire.ANSWER_OFFICE)  # not heard from yet: this release
    ir.ctx.heard_accepts("pk", header)
    _overdue(ir, flash)
    sent = ir.ctx.writer.run_sync(answers.respond_job(ir.ctx, _operator(ir, "ir-fs"), flash, "ack", {"note": ""}))
    assert sent.envelope.sender == "ir:dgmo" and sent.envelope.body.get("office") == ("ir:fs" if named else None)
    with ir.ctx.engine.connect() as conn:
        row = db.get_envelope(conn, flash)
    assert row is not None and (row["state"], row["response_office"]) == ("acknowledged", "ir:fs")  # as before


def test_a_translation_for_a_peer_of_an_earlier_release_is_refused_and_nothing_is_written(
    nodes: tuple[Node, Node], flash: str
) -> None:
    _pk, ir = nodes
    translator = _operator(ir, "ir-translator1")
    ir.ctx.heard_accepts("pk", EARLIER)
    size = _log_size(ir)
    with pytest.raises(Conflict) as refused:
        ir.ctx.writer.run_sync(translations.translate_job(ir.ctx, translator, flash, "fa", "پهپاد بر فراز کچ"))
    assert refused.value.detail == (
        "pk's node runs an earlier release, which cannot take translations or their reviews: "
        "nothing was sent; translate once pk has upgraded"
    )
    assert _log_size(ir) == size
    ir.ctx.heard_accepts("pk", THIS)  # pk upgraded: its next request or answer says so
    sent = ir.ctx.writer.run_sync(translations.translate_job(ir.ctx, translator, flash, "fa", "پهپاد بر فراز کچ"))
    assert sent.envelope.type == "translation" and _log_size(ir) == size + 1
