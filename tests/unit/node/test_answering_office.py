"""The office that answered a message: the addressee, or the alternate that answered once it was overdue.

Auditor QA: an alternate's answer was recorded as the addressee's, on both sides. The ack is still
sealed from the addressed office (the channel links it), and its body names the alternate; the
receiver accepts only an alternate of the addressee, and keeps the office with the answer.
"""

from __future__ import annotations

import pytest

from detente.node.runtime import Node
from detente.store import messages as db
from peer_support import by_hand, deliver


def answer_of(node: Node, message: str) -> tuple[str | None, str | None]:
    with node.ctx.engine.connect() as conn:
        row = db.get_envelope(conn, message)
    assert row is not None
    return row["state"], row["response_office"]


def test_an_alternates_answer_names_it(nodes: tuple[Node, Node], flash: str) -> None:
    pk, ir = nodes
    assert "ir:fs" in pk.ctx.agreement.alternates("ir:dgmo")
    ack = by_hand(ir, 1, "ack", {"note": "", "office": "ir:fs"}, flash)
    assert "receipt" in deliver(ir, pk, ack)
    assert answer_of(pk, flash) == ("acknowledged", "ir:fs")


def test_the_addressees_answer_is_as_before(nodes: tuple[Node, Node], flash: str) -> None:
    pk, ir = nodes
    ack = by_hand(ir, 1, "ack", {"note": "seen"}, flash)
    assert "receipt" in deliver(ir, pk, ack)
    assert answer_of(pk, flash) == ("acknowledged", "ir:dgmo")


@pytest.mark.parametrize("office", ["ir:lo-turbat", "pk:fs", "ir:nowhere"])
def test_an_office_that_is_no_alternate_of_the_addressee_is_refused(
    nodes: tuple[Node, Node], flash: str, office: str
) -> None:
    pk, ir = nodes
    with pk.ctx.engine.connect() as conn:
        size = db.log_size(conn)
    ack = by_hand(ir, 1, "ack", {"note": "", "office": office}, flash)
    result = deliver(ir, pk, ack)
    assert result.get("error") == "Invalid", result
    assert f"office '{office}' is not an alternate of ir:dgmo" in result["detail"]
    assert answer_of(pk, flash) == ("accepted", None)  # unanswered (no receipt was stored here)
    with pk.ctx.engine.connect() as conn:
        assert db.log_size(conn) == size  # nothing written
