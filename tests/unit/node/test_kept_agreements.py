"""After an amendment a node accepts envelopes sealed under an agreement it ratified before, and no other.

The amended agreement here also rotates both node keys (`agreement_text_and_keys` makes new ones),
the hardest case: an old-sealed envelope verifies only with the key its own agreement pinned.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from detente.core import agreement as agreement_mod
from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.core.precedence import format_time, now, parse_time
from detente.errors import Invalid, VerificationError
from detente.node.config import NodeConfig
from detente.node.context import NodeContext
from detente.node.incoming import check_envelope, receive_job
from detente.store import messages as db
from record_support import agreement_text_and_keys, envelope, node_context

Era = tuple[str, Agreement, dict[str, Signer]]


def era() -> Era:
    text, signers = agreement_text_and_keys()
    return text, agreement_mod.load(text), signers


@pytest.fixture
def eras() -> tuple[Era, Era]:
    """The first agreement, and its amendment: new keys, and 5 minutes for a FLASH on dgmo, not 10."""
    text, signers = agreement_text_and_keys()
    amended = text + "\n[channels.dgmo.deadlines]\nFLASH = 300\n"
    return era(), (amended, agreement_mod.load(amended), signers)


@pytest.fixture
def ir(tmp_path: Path, eras: tuple[Era, Era]) -> Iterator[NodeContext]:
    (_, first, _), (_, amended, signers) = eras
    ctx = node_context(tmp_path, "ir", amended, signers)
    ctx.earlier[first.hash] = first
    try:
        yield ctx
    finally:
        ctx.writer.stop()


def test_an_envelope_sealed_before_the_amendment_is_checked_under_its_own_agreement(
    ir: NodeContext, eras: tuple[Era, Era]
) -> None:
    (_, first, old_keys), (_, amended, new_keys) = eras
    assert check_envelope(ir, "pk", envelope(first, old_keys["pk"], 1).data).data["agreement"] == first.hash
    assert check_envelope(ir, "pk", envelope(amended, new_keys["pk"], 2).data).data["agreement"] == amended.hash
    # Each era's key only for its own envelopes.
    with pytest.raises(VerificationError):
        check_envelope(ir, "pk", envelope(first, new_keys["pk"], 3).data)
    with pytest.raises(VerificationError):
        check_envelope(ir, "pk", envelope(amended, old_keys["pk"], 4).data)


def test_an_agreement_the_node_did_not_ratify_is_refused(ir: NodeContext) -> None:
    _, stranger, keys = era()
    with pytest.raises(Invalid, match="is under another agreement than the one in force"):
        check_envelope(ir, "pk", envelope(stranger, keys["pk"], 1).data)
    with pytest.raises(Invalid, match="neither the one in force nor one this node ratified"):
        ir.sealed_under(stranger.hash)


def test_only_kept_copies_of_ratified_agreements_are_loaded(tmp_path: Path, eras: tuple[Era, Era]) -> None:
    (first_text, first, _), (amended_text, amended, _) = eras
    config = NodeConfig(tmp_path, "ir", "127.0.0.1", 8443, "sqlite:///unused")
    (tmp_path / "agreements").mkdir()
    config.kept_agreement_path(first.hash).write_text(first_text, encoding="utf-8")
    config.kept_agreement_path(amended.hash).write_text(amended_text, encoding="utf-8")
    both = [first.hash, amended.hash]
    assert config.earlier_agreements(both, amended.hash) == {first.hash: first}
    assert config.earlier_agreements([amended.hash], amended.hash) == {}  # kept, never ratified as earlier
    assert config.earlier_agreements([first.hash, "ab" * 32], amended.hash) == {first.hash: first}  # no copy
    # A copy that is not the agreement its name says, or cannot be read, is left out.
    changed = first_text.replace("link_test_seconds = ", "link_test_seconds = 1", 1)
    assert agreement_mod.load(changed).hash != first.hash
    config.kept_agreement_path(first.hash).write_text(changed, encoding="utf-8")
    assert config.earlier_agreements(both, amended.hash) == {}
    config.kept_agreement_path(first.hash).write_bytes(b"\xff\xfe")
    assert config.earlier_agreements(both, amended.hash) == {}


def test_an_envelope_sealed_before_the_amendment_keeps_the_deadline_it_was_sent_with(
    ir: NodeContext, eras: tuple[Era, Era]
) -> None:
    # The sender counted 10 minutes (the first agreement); the receiver, under the amendment, must too.
    (_, first, old_keys), (_, amended, _) = eras
    assert amended.deadlines("dgmo") and not first.deadlines("dgmo")
    created = format_time(now())
    old = check_envelope(ir, "pk", envelope(first, old_keys["pk"], 1, precedence="FLASH", created=created).data)
    ir.writer.run_sync(receive_job(ir, "pk", [old], [old.id]))
    with ir.engine.connect() as conn:
        row = db.get_envelope(conn, old.id)
    assert row is not None
    assert (parse_time(row["deadline"]) - parse_time(created)).total_seconds() == 600
