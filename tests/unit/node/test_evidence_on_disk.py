"""The node's start marks `missing` each evidence file its database lists as stored that the disk lacks
or holds at another size (the QA report: a PostgreSQL node restored by the server's tools said `stored`
and answered 404); a file damaged at its size is caught when it is served."""

from __future__ import annotations

import hashlib
import logging

import pytest

from detente.errors import NotFound
from detente.node import evidence
from detente.node.runtime import Node
from detente.store import evidence as evidence_db
from detente.store.db import read_connection
from support import run_async


def _stored(node: Node, content: bytes) -> str:
    sha256 = hashlib.sha256(content).hexdigest()
    evidence.write_file(node.ctx, sha256, content)
    node.ctx.writer.run_sync(evidence.upload_job(sha256, len(content), "text/plain", "site.txt", "op"))
    return sha256


def _state(node: Node, sha256: str) -> tuple[str, str | None]:
    with read_connection(node.ctx.engine) as conn:
        row = evidence_db.get(conn, sha256)
    assert row is not None
    return str(row["state"]), row["last_error"]


def test_files_absent_or_of_another_size_are_marked_missing_at_the_start(
    nodes: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    pk, _ = nodes
    kept, gone, cut = (_stored(pk, f"{name} {n}".encode()) for n, name in enumerate(("kept", "gone", "cut")))
    (evidence.directory(pk.ctx) / gone).unlink()
    (evidence.directory(pk.ctx) / cut).write_bytes(b"cu")
    with caplog.at_level(logging.WARNING, "detente.evidence"):
        done = run_async(evidence.mark_absent(pk.ctx))
    assert set(done) == {gone, cut}
    assert _state(pk, kept) == ("stored", None)
    assert _state(pk, gone)[0] == "missing" and _state(pk, cut)[0] == "missing"
    warned = caplog.text
    assert f"evidence {gone} is listed as stored but" in warned and "is not there" in warned
    assert f"evidence {cut} is listed as stored but" in warned and "holds 2 bytes, not 5" in warned
    assert "no peer has it: upload it again" in warned  # uploaded here and never sent
    assert run_async(evidence.mark_absent(pk.ctx)) == {}  # marked once


def test_a_file_damaged_at_its_size_is_not_served_and_marked_missing(nodes: tuple[Node, Node]) -> None:
    pk, _ = nodes
    sha256 = _stored(pk, b"damaged later")
    assert evidence.read_file(pk.ctx, sha256) == b"damaged later"
    (evidence.directory(pk.ctx) / sha256).write_bytes(b"Damaged later")
    assert run_async(evidence.mark_absent(pk.ctx)) == {}  # the start checks sizes only
    with pytest.raises(NotFound, match="do not hash to its name"):
        evidence.read_file(pk.ctx, sha256)
    assert _state(pk, sha256)[0] == "missing"
