"""Queries on the transparency log: stored Merkle hashes, checkpoints, cosignatures, witness state, alarms.

`tree_hashes` holds the Go-tlog stored-hash layout of `core.merkle` (index -> 32-byte hash). It is
written by `store.logtail` in the same transaction as the log row it hashes, so the two can never
disagree after a crash. Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, RowMapping, bindparam, func, insert, select, update

from detente.core import merkle
from detente.store import driver
from detente.store.logtail import TableHashReader
from detente.store.tables import alarms, checkpoints, cosignatures, envelopes, tree_hashes, witness_state, witnessed

__all__ = ["TableHashReader"]  # re-exported: readers of the tree know it from here


def tree_root(conn: Connection, size: int) -> bytes:
    """Return the RFC 6962 root of the first `size` records. Raises `Error` if hashes are missing."""
    return merkle.tree_hash(size, TableHashReader(conn))


def leaf_index_of(conn: Connection, leaf_hash: bytes) -> int | None:
    """Return the index of the first entry whose leaf hash is `leaf_hash`, or None.

    This scans `tree_hashes` (there is no index on hash values): it is meant for occasional lookups
    by auditors; the nodes themselves ask by index or envelope id.
    """
    for (idx,) in conn.execute(
        select(tree_hashes.c.idx).where(tree_hashes.c.hash == leaf_hash).order_by(tree_hashes.c.idx)
    ):
        level, n = merkle.split_stored_hash_index(int(idx))
        if level == 0:
            return n
    return None


# --- own checkpoints and the cosignatures peers returned on them ---


def latest_checkpoint(conn: Connection) -> RowMapping | None:
    """Return the newest checkpoint this node signed, or None."""
    return conn.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)).mappings().first()


def checkpoint_at(conn: Connection, size: int) -> RowMapping | None:
    """Return the checkpoint this node signed for `size`, or None."""
    return conn.execute(select(checkpoints).where(checkpoints.c.size == size)).mappings().first()


def all_checkpoints(conn: Connection) -> list[RowMapping]:
    """Return every checkpoint this node signed, oldest first."""
    return list(conn.execute(select(checkpoints).order_by(checkpoints.c.size)).mappings())


def insert_checkpoint(conn: Connection, size: int, root: bytes, note: bytes, created: str) -> None:
    """Record a checkpoint this node signed."""
    conn.execute(insert(checkpoints).values(size=size, root=root, note=note, created=created))


def add_cosignature(conn: Connection, size: int, witness: str, name: str, line: str, at: str) -> None:
    """Record a peer's cosignature line on our checkpoint of `size` (the first one stays)."""
    key = (cosignatures.c.size == size) & (cosignatures.c.witness == witness)
    if conn.execute(select(cosignatures.c.size).where(key)).first() is None:
        conn.execute(insert(cosignatures).values(size=size, witness=witness, name=name, line=line, received_at=at))


def cosignature_lines(conn: Connection, size: int) -> list[str]:
    """Return the cosignature lines (without newline) peers gave our checkpoint of `size`."""
    rows = conn.execute(select(cosignatures.c.line).where(cosignatures.c.size == size).order_by(cosignatures.c.witness))
    return [str(r[0]) for r in rows]


def newest_cosigned_size(conn: Connection, above: int = -1) -> int | None:
    """Return the largest size above `above` of ours that any peer cosigned, or None."""
    value = conn.execute(select(func.max(cosignatures.c.size)).where(cosignatures.c.size > above)).scalar()
    return None if value is None else int(value)


def newest_size_cosigned_by_all(conn: Connection, witnesses: Sequence[str]) -> int | None:
    """Return the largest size of ours that every one of `witnesses` (peer parties) cosigned, or None."""
    wanted = set(witnesses)
    query = (
        select(cosignatures.c.size)
        .where(cosignatures.c.witness.in_(wanted))
        .group_by(cosignatures.c.size)
        .having(func.count() == len(wanted))  # (size, witness) is the key: no witness counts twice
        .order_by(cosignatures.c.size.desc())
        .limit(1)
    )
    value = conn.execute(query).scalar()
    return None if value is None else int(value)


def witnesses_at(conn: Connection, size: int) -> list[str]:
    """Return the peer parties that cosigned our checkpoint of `size`, sorted."""
    rows = conn.execute(select(cosignatures.c.witness).where(cosignatures.c.size == size))
    return sorted(str(r[0]) for r in rows)


def last_cosigned_size(conn: Connection, witness: str) -> int | None:
    """Return the largest size of ours that `witness` cosigned, or None if it never did."""
    value = conn.execute(select(func.max(cosignatures.c.size)).where(cosignatures.c.witness == witness)).scalar()
    return None if value is None else int(value)


# --- witness side: what this node cosigned of its peers' logs ---


def get_witness_state(conn: Connection, origin: str) -> RowMapping | None:
    """Return the latest checkpoint of `origin` this node cosigned, or None."""
    return conn.execute(select(witness_state).where(witness_state.c.origin == origin)).mappings().first()


def set_witness_state(
    conn: Connection, origin: str, peer: str, size: int, root: bytes, note: bytes, cosignature: str, at: str
) -> None:
    """Make (size, root) the latest cosigned checkpoint of `origin` and keep it in the history."""
    values = {"peer": peer, "size": size, "root": root, "note": note, "updated_at": at}
    if conn.execute(update(witness_state).where(witness_state.c.origin == origin).values(**values)).rowcount == 0:
        conn.execute(insert(witness_state).values(origin=origin, **values))
    conn.execute(
        insert(witnessed).values(
            origin=origin, peer=peer, size=size, root=root, note=note, cosignature=cosignature, cosigned_at=at
        )
    )


def witnessed_at(conn: Connection, origin: str, size: int) -> RowMapping | None:
    """Return the newest checkpoint of `origin` at `size` that this node cosigned, or None."""
    query = (
        select(witnessed)
        .where(witnessed.c.origin == origin, witnessed.c.size == size)
        .order_by(witnessed.c.id.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


# --- alarms ---


def insert_alarm(
    conn: Connection, alarm_id: str, kind: str, peer: str, origin: str, summary: str, evidence: dict[str, Any], at: str
) -> None:
    """Store an alarm with its evidence (JSON)."""
    conn.execute(
        insert(alarms).values(
            id=alarm_id,
            kind=kind,
            peer=peer,
            origin=origin,
            summary=summary,
            evidence=json.dumps(evidence, sort_keys=True),
            created=at,
        )  # fmt: skip
    )


def latest_alarm(conn: Connection, kind: str, origin: str) -> dict[str, Any] | None:
    """Return the newest alarm of `kind` about the log `origin`, with its decoded evidence, or None."""
    row = (
        conn.execute(
            select(alarms)
            .where(alarms.c.kind == kind, alarms.c.origin == origin)
            .order_by(alarms.c.created.desc(), alarms.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else {**dict(row), "evidence": json.loads(row["evidence"])}


def list_alarms(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Return the newest alarms first, each with its decoded evidence."""
    rows = conn.execute(select(alarms).order_by(alarms.c.created.desc(), alarms.c.id.desc()).limit(limit)).mappings()
    return [{**dict(r), "evidence": json.loads(r["evidence"])} for r in rows]


# --- proof of delivery ---


# Both run on the driver's cursor (`store.driver`): the proof fetcher reads and marks every
# delivered envelope once, and SQLAlchemy's execution path cost more than the statements.
_UNVERIFIED = (
    select(envelopes.c.id, envelopes.c.raw, envelopes.c.receipt, envelopes.c.from_office, envelopes.c.type)
    .where(
        envelopes.c.direction == "out",
        envelopes.c.peer == bindparam("peer"),
        envelopes.c.receipt.is_not(None),
        envelopes.c.verified_at.is_(None),
    )
    .order_by(envelopes.c.log_index)
    .limit(bindparam("limit", type_=Integer))
)


def unverified_sent(conn: Connection, peer: str, limit: int) -> list[dict[str, Any]]:
    """Return envelopes sent to `peer` that have a receipt but no verified inclusion proof yet."""
    return driver.mappings(conn, _UNVERIFIED, {"peer": peer, "limit": limit})


# Run with many parameter sets: a proof batch marks up to 64 envelopes at a time.
_MARK_VERIFIED = (
    update(envelopes)
    .where(envelopes.c.id == bindparam("target_id"), envelopes.c.verified_at.is_(None))
    .values(verified_at=bindparam("v_at"), verified_size=bindparam("v_size"), peer_proof=bindparam("v_proof"))
)


def mark_verified(conn: Connection, size: int, at: str, proven: Sequence[tuple[str, Sequence[bytes]]]) -> None:
    """Record that each (envelope id, inclusion proof) of `proven` was proven in the peer's log of `size`.

    The proof is kept (hex). An envelope already marked keeps its first proof.
    """
    if proven:
        rows = [
            {"target_id": envelope_id, "v_at": at, "v_size": size, "v_proof": json.dumps([p.hex() for p in proof])}
            for envelope_id, proof in proven
        ]
        driver.executemany(conn, _MARK_VERIFIED, rows)
