"""The witness's rules (c2sp.org/tlog-witness), checked against a real database without a network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from detente.core import keys, merkle, merkle_memory
from detente.core.checkpoint import Checkpoint, format_add_checkpoint, open_checkpoint, sign_checkpoint
from detente.core.note import add_signatures, parse_note, parse_signature_lines
from detente.errors import BadRequest, Forbidden, MalformedError, NotFound
from detente.node import witness
from detente.node.context import NodeContext
from detente.store import tlog
from record_support import agreement_and_keys, node_context

ENTRIES = [b"entry %d" % i for i in range(20)]
STORE = merkle_memory.MemoryHashStore(ENTRIES)


def root_of(size: int) -> bytes:
    return merkle.tree_hash(size, STORE)


@pytest.fixture
def ir(tmp_path: Path) -> Iterator[tuple[NodeContext, keys.Signer]]:
    doc, signers = agreement_and_keys()
    ctx = node_context(tmp_path, "ir", doc, signers)
    yield ctx, signers["pk"]
    ctx.writer.stop()
    ctx.engine.dispose()


def _note(pk: keys.Signer, size: int, root: bytes | None = None) -> bytes:
    root = merkle.tree_hash(size, STORE) if root is None else root
    return sign_checkpoint(Checkpoint("pk.detente/log", size, root), pk).format()


def _submit(ctx: NodeContext, old: int, proof: list[bytes], note: bytes) -> witness.Answer:
    sub = witness.check_submission(ctx, "pk", format_add_checkpoint(old, proof, note))
    return ctx.writer.run_sync(witness.add_checkpoint_job(ctx, sub))


def _state(ctx: NodeContext) -> tuple[int, bytes] | None:
    with ctx.engine.connect() as conn:
        row = tlog.get_witness_state(conn, "pk.detente/log")
    return None if row is None else (int(row["size"]), bytes(row["root"]))


def _alarms(ctx: NodeContext) -> list[dict[str, object]]:
    with ctx.engine.connect() as conn:
        return tlog.list_alarms(conn)


def test_bootstrap_resync_and_growth(ir: tuple[NodeContext, keys.Signer]) -> None:
    ctx, pk = ir
    # No state yet: `old 1` is told the size held (0); `old 0` with a proof is refused.
    conflict = _submit(ctx, 1, [], _note(pk, 5))
    assert (conflict.status, conflict.body, conflict.media_type) == (409, b"0\n", "text/x.tlog.size")
    assert _submit(ctx, 0, [merkle.EMPTY_ROOT], _note(pk, 5)).status == 422
    assert _submit(ctx, 0, [], _note(pk, 0, b"\x01" * 32)).status == 422
    # `old 0` with no proof is cosigned (trust on first use), and the state is stored.
    first = _submit(ctx, 0, [], _note(pk, 5))
    assert first.status == 200 and _state(ctx) == (5, root_of(5))
    cosigned = add_signatures(parse_note(_note(pk, 5)), *parse_signature_lines(first.body))
    witness_key = ctx.signer.verifier.with_alg(keys.ALG_COSIGNATURE_V1)
    _, _, by = open_checkpoint(cosigned, ctx.agreement.party("pk").verifier(), [witness_key])
    assert list(by) == ["ir.detente/log"] and by["ir.detente/log"] > 0
    # From then on `old 0` learns the size, and the proof from it extends the tree.
    assert _submit(ctx, 0, [], _note(pk, 9)).body == b"5\n"
    assert _submit(ctx, 5, merkle.prove_consistency(5, 9, STORE), _note(pk, 9)).status == 200
    assert _submit(ctx, 9, [], _note(pk, 9)).status == 200  # the same checkpoint again
    assert _state(ctx) == (9, root_of(9)) and _alarms(ctx) == []


def test_inconsistent_checkpoints_raise_a_fork_alarm_and_keep_the_state(ir: tuple[NodeContext, keys.Signer]) -> None:
    ctx, pk = ir
    assert _submit(ctx, 0, [], _note(pk, 8)).status == 200
    forked = merkle_memory.MemoryHashStore([*ENTRIES[:7], b"rewritten", *ENTRIES[8:]])
    bad = _submit(ctx, 8, merkle.prove_consistency(8, 12, forked), _note(pk, 12, merkle.tree_hash(12, forked)))
    assert bad.status == 422 and bad.alarm is not None and bad.alarm.everyone
    same_size = _submit(ctx, 8, [], _note(pk, 8, merkle.tree_hash(8, forked)))
    assert same_size.status == 422 and "same size" in same_size.detail
    assert _state(ctx) == (8, root_of(8))
    alarms = _alarms(ctx)
    assert [a["kind"] for a in alarms] == ["fork"]  # one fork, one alarm: the same-size one is that fork too
    assert same_size.alarm is None
    evidence = alarms[-1]["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["cosigned"]["size"] == 8 and evidence["presented"]["size"] == 12
    assert "— ir.detente/log " in evidence["cosigned"]["note"]  # our cosignature is part of it
    assert json.dumps(evidence)  # plain JSON
    # The genuine log goes on being cosigned.
    assert _submit(ctx, 8, merkle.prove_consistency(8, 12, STORE), _note(pk, 12)).status == 200


def test_submissions_refused_before_any_state_is_read(ir: tuple[NodeContext, keys.Signer]) -> None:
    ctx, pk = ir
    with pytest.raises(MalformedError):
        witness.check_submission(ctx, "pk", b"old 0\n")
    with pytest.raises(BadRequest):
        witness.check_submission(ctx, "pk", format_add_checkpoint(6, [], _note(pk, 5)))
    stranger = keys.Signer.generate("pk.detente/log")
    with pytest.raises(Forbidden):
        witness.check_submission(ctx, "pk", format_add_checkpoint(0, [], _note(stranger, 5)))
    other = keys.Signer.generate("xx.detente/log")
    unknown = sign_checkpoint(Checkpoint("xx.detente/log", 1, root_of(1)), other).format()
    with pytest.raises(NotFound):
        witness.check_submission(ctx, "pk", format_add_checkpoint(0, [], unknown))
    own = sign_checkpoint(Checkpoint("ir.detente/log", 1, root_of(1)), ctx.signer).format()
    with pytest.raises(NotFound):
        witness.check_submission(ctx, "pk", format_add_checkpoint(0, [], own))
