"""A peer's translations and reviews: stored when they keep the rules, refused with nothing written when not.

The sender refuses all of these itself (tests/integration/test_translations.py); here a peer seals
them by hand, as a node of another release or a faulty one could, and the receiver judges them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from detente.core import envelope as envelope_mod
from detente.core.precedence import format_time, now, parse_time
from detente.node import translations
from detente.node.incoming import check_envelope, receive_job
from detente.node.runtime import Node
from detente.store import messages as db
from detente.store import operators as operators_db
from peer_support import by_hand, deliver

FA = "پهپادی بر فراز بخش کچ دیده شد"


def log_size(node: Node) -> int:
    with node.ctx.engine.connect() as conn:
        return db.log_size(conn)


def earlier(stamp: str, seconds: float) -> str:
    """The time `seconds` before an RFC 3339 `stamp`."""
    return format_time(parse_time(stamp) - timedelta(seconds=seconds))


def test_a_peers_translation_is_stored_and_announced(nodes: tuple[Node, Node], flash: str) -> None:
    pk, ir = nodes
    translation = by_hand(ir, 1, "translation", {"lang": "fa", "text": FA}, flash)
    checked = check_envelope(pk.ctx, "ir", envelope_mod.stored(translation.raw).data)
    received = pk.ctx.writer.run_sync(receive_job(pk.ctx, "ir", [checked], [checked.id]))
    assert "receipt" in received.results[0], received.results
    [event] = [e for e in received.events if e.kind == "translation"]
    assert (event.id, event.data["lang"], event.data["text"], event.offices) == (flash, "fa", FA, ("pk:dgmo", "pk:fs"))
    assert not [e for e in received.events if e.kind == "message"]  # no FLASH alarm for a translation
    with pk.ctx.engine.connect() as conn:
        [shown] = translations.view(conn, pk.ctx, flash)
    assert (shown["by"], shown["side"], shown["certified"], shown["reviews"]) == ("ir-op-1", "ir", False, [])
    review = by_hand(
        ir, 2, "translation.review", {"verdict": "certified", "note": ""}, translation.id, author="ir-op-2"
    )
    assert "receipt" in deliver(ir, pk, review)
    with pk.ctx.engine.connect() as conn:
        [shown] = translations.view(conn, pk.ctx, flash)
    assert shown["certified"] is True and [r["by"] for r in shown["reviews"]] == ["ir-op-2"]


def test_a_peers_translation_into_the_original_language_is_refused(nodes: tuple[Node, Node], flash: str) -> None:
    pk, ir = nodes
    size = log_size(pk)
    result = deliver(ir, pk, by_hand(ir, 1, "translation", {"lang": "en", "text": "Drone seen"}, flash))
    assert result["error"] == "Invalid" and "already in en" in result["detail"], result
    assert log_size(pk) == size


@pytest.mark.parametrize(
    ("ref", "channel", "sender", "to", "says"),
    [
        ("018d1a2b-0000-7000-8000-000000000001", "dgmo", "ir:dgmo", "pk:dgmo", "unknown envelope"),
        (None, "fs", "ir:fs", "pk:fs", "on the channel of the message it is about"),
    ],
)
def test_a_peers_translation_of_what_this_node_does_not_hold_on_that_channel_is_refused(
    nodes: tuple[Node, Node], flash: str, ref: str | None, channel: str, sender: str, to: str, says: str
) -> None:
    pk, ir = nodes
    size = log_size(pk)
    envelope = by_hand(ir, 1, "translation", {"lang": "fa", "text": FA}, ref or flash, channel=channel, sender=sender,
                       to=to)  # fmt: skip
    result = deliver(ir, pk, envelope)
    assert result["error"] == "Invalid" and says in result["detail"], result
    assert log_size(pk) == size


def test_a_peers_review_by_the_translations_author_is_refused(nodes: tuple[Node, Node], flash: str) -> None:
    pk, ir = nodes
    translation = by_hand(ir, 1, "translation", {"lang": "fa", "text": FA}, flash)
    assert "receipt" in deliver(ir, pk, translation)
    size = log_size(pk)
    own = by_hand(ir, 2, "translation.review", {"verdict": "certified", "note": ""}, translation.id)
    result = deliver(ir, pk, own)
    assert result["error"] == "Forbidden" and "two-person rule" in result["detail"], result
    assert log_size(pk) == size


def test_a_peers_review_of_this_sides_translation_is_refused(nodes: tuple[Node, Node], flash: str) -> None:
    """ir may not certify pk's translation of pk's own message: a side certifies its own translations."""
    pk, ir = nodes
    with pk.ctx.engine.begin() as conn:
        operators_db.add_operator(
            conn, operator_id="pk-tr-id", name="pk-tr", token_hash="x" * 64, password_hash=None,
            roles=["translator"], offices=["pk:dgmo"], lang="en", created=format_time(now()),
        )  # fmt: skip
        translator = operators_db.by_name(conn, "pk-tr")
    assert translator is not None
    ours = pk.ctx.writer.run_sync(translations.translate_job(pk.ctx, translator, flash, "fa", FA)).envelope
    assert (ours.sender, ours.recipient, ours.precedence.value) == ("pk:dgmo", "ir:dgmo", "FLASH")
    assert "receipt" in deliver(pk, ir, ours)
    size = log_size(pk)
    result = deliver(ir, pk, by_hand(ir, 1, "translation.review", {"verdict": "certified", "note": ""}, ours.id))
    assert result["error"] == "Forbidden" and "its own translations" in result["detail"], result
    assert log_size(pk) == size


def test_a_peers_translation_or_review_stamped_before_what_it_is_about_is_refused(
    nodes: tuple[Node, Node], flash: str
) -> None:
    pk, ir = nodes
    with pk.ctx.engine.connect() as conn:
        row = db.get_envelope(conn, flash)
    assert row is not None
    sent = str(row["created"])  # by pk's clock; ir stamps its translation by its own
    size = log_size(pk)
    # Two clocks may disagree by up to 5 minutes while their nodes still federate, and no more.
    result = deliver(
        ir, pk, by_hand(ir, 1, "translation", {"lang": "fa", "text": FA}, flash, created=earlier(sent, 301))
    )
    assert result["error"] == "Invalid" and "5 min 1 s before the message it translates" in result["detail"], result
    assert log_size(pk) == size
    # Measured 10 minutes behind pk, ir's clock stamps a translation made a second after the message 9:59 earlier.
    pk.ctx.clock_offsets["ir"] = -600_000.0
    try:
        translation = by_hand(ir, 1, "translation", {"lang": "fa", "text": FA}, flash, created=earlier(sent, 599))
        assert "receipt" in deliver(ir, pk, translation)
    finally:
        pk.ctx.clock_offsets["ir"] = None
    assert log_size(pk) == size + 1
    # A review and its translation are both stamped by ir's clock: only a clock stepped back makes a review earlier.
    review = {"verdict": "disputed", "note": "«بخش» is a district"}
    result = deliver(ir, pk, by_hand(ir, 2, "translation.review", review, translation.id, author="ir-op-2",
                                     created=earlier(translation.created, 2)))  # fmt: skip
    assert result["error"] == "Invalid" and "2.0 s before the translation it reviews" in result["detail"], result
    assert log_size(pk) == size + 1
    with pk.ctx.engine.connect() as conn:
        [shown] = translations.view(conn, pk.ctx, flash)
    assert shown["reviews"] == []
    stepped = by_hand(ir, 2, "translation.review", review, translation.id, author="ir-op-2",
                      created=earlier(translation.created, 0.5))  # fmt: skip
    assert "receipt" in deliver(ir, pk, stepped)
    assert log_size(pk) == size + 2
