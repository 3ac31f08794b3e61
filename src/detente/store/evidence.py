"""Evidence files (migration 0003): what the node holds or still has to fetch, and who refers to it.

The bytes live on disk, content-addressed (`DATA/evidence/<sha256>`, see `node.evidence`); these
tables say what each file is (`evidence`: media type, size, name, whether it is `stored` or still
`missing` and which peer to fetch it from) and which envelopes refer to it (`evidence_refs`), which
is what decides who may read it. A file a restore could not bring back (`node.restore`), or that
the node finds absent or damaged on its disk (`node.evidence.mark_absent`, `read_file`), is
`missing` again, to be fetched from a peer that holds it or uploaded again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    update,
)

from detente.store.tables import envelopes, metadata

evidence = Table(
    "evidence",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("media_type", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("state", String(10), nullable=False),  # stored | missing
    Column("peer", String(8)),  # where a missing file is fetched from
    Column("uploaded_by", String(64)),  # operator id, for files uploaded here
    Column("created", String(32), nullable=False),
    Column("stored_at", String(32)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
)
Index("ix_evidence_state", evidence.c.state)

evidence_refs = Table(
    "evidence_refs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("envelope_id", String(36), primary_key=True),
)
Index("ix_evidence_refs_envelope", evidence_refs.c.envelope_id)


def get(conn: Connection, sha256: str) -> RowMapping | None:
    """Return the evidence row of a file, or None."""
    return conn.execute(select(evidence).where(evidence.c.sha256 == sha256)).mappings().first()


def add(conn: Connection, **values: Any) -> None:
    """Insert an evidence row (see `evidence` for the columns)."""
    conn.execute(insert(evidence).values(**values))


def set_values(conn: Connection, sha256: str, **values: Any) -> None:
    """Update columns of one evidence row."""
    conn.execute(update(evidence).where(evidence.c.sha256 == sha256).values(**values))


def add_ref(conn: Connection, sha256: str, envelope_id: str) -> None:
    """Record that an envelope refers to a file (idempotent)."""
    key = (evidence_refs.c.sha256 == sha256, evidence_refs.c.envelope_id == envelope_id)
    if conn.execute(select(evidence_refs.c.sha256).where(*key)).first() is None:
        conn.execute(insert(evidence_refs).values(sha256=sha256, envelope_id=envelope_id))


def missing(conn: Connection, peer: str, limit: int = 20) -> list[RowMapping]:
    """Return files still to fetch from `peer`, least tried first."""
    query = (
        select(evidence)
        .where(evidence.c.state == "missing", evidence.c.peer == peer)
        .order_by(evidence.c.attempts, evidence.c.created)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def referring(conn: Connection, sha256: str) -> list[RowMapping]:
    """Return the envelope rows that refer to a file."""
    query = (
        select(envelopes)
        .join(evidence_refs, evidence_refs.c.envelope_id == envelopes.c.id)
        .where(evidence_refs.c.sha256 == sha256)
    )
    return list(conn.execute(query).mappings())


def stored(conn: Connection) -> list[str]:
    """Return the SHA-256 of every file the database says this node holds, sorted.

    A database older than the evidence table (migration 0003) holds none.
    """
    if not inspect(conn).has_table("evidence"):
        return []
    query = select(evidence.c.sha256).where(evidence.c.state == "stored").order_by(evidence.c.sha256)
    return [str(sha256) for sha256 in conn.execute(query).scalars()]


def stored_sizes(conn: Connection) -> dict[str, int]:
    """Return the size of every file the database says this node holds, by SHA-256."""
    query = select(evidence.c.sha256, evidence.c.size).where(evidence.c.state == "stored")
    return {str(sha256): int(size) for sha256, size in conn.execute(query)}


def holder(conn: Connection, sha256: str) -> str | None:
    """Return the peer that holds a file too: the one it came from or, for a file uploaded here, one
    that exchanged an envelope referring to it (which fetched it then); None if no peer ever had it.

    Only the columns of migration 0003 are read, so that a database of an earlier release can be
    asked before `serve` migrates it.
    """
    peer = conn.execute(select(evidence.c.peer).where(evidence.c.sha256 == sha256)).scalar()
    if peer is None:
        query = (
            select(envelopes.c.peer)
            .join(evidence_refs, evidence_refs.c.envelope_id == envelopes.c.id)
            .where(evidence_refs.c.sha256 == sha256)
            .order_by(envelopes.c.peer)
            .limit(1)
        )
        peer = conn.execute(query).scalar()
    return None if peer is None else str(peer)


def mark_lost(conn: Connection, sha256: str, note: str) -> str | None:
    """Record that a stored file is no longer on this node: `missing`, with `note` as its last error.

    It is fetched again from the peer that holds it (`holder`), which it returns; None if no peer
    ever had it (it can only be uploaded again). Only the columns of migration 0003 are written.
    """
    peer = holder(conn, sha256)
    values = {"state": "missing", "peer": peer, "stored_at": None, "attempts": 0, "last_error": note[:500]}
    conn.execute(update(evidence).where(evidence.c.sha256 == sha256).values(**values))
    return peer
