"""The tables of a node. Alembic migrations (`store/migrations`) create and evolve them.

Every view a user sees (message states, link states) is a projection of the envelopes in `log`,
updated in the same transaction as the envelope that changes it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

# One row per envelope this node sent ("out"), received ("in") or recorded for itself ("local").
envelopes = Table(
    "envelopes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("direction", String(5), nullable=False),
    Column("peer", String(8), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("from_office", String(48), nullable=False),
    Column("to_office", String(48), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("precedence", String(10), nullable=False),
    Column("author", String(64), nullable=False),
    Column("case_id", String(36)),
    Column("ref", String(36)),  # the first ref: what an ack, decline or overdue is about
    Column("created", String(32), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("log_index", Integer, nullable=False, unique=True),
    Column("needs_ack", Boolean, nullable=False),
    Column("deadline", String(32)),
    Column("state", String(16), nullable=False),
    Column("receipt", Text),  # the peer's signed receipt (JSON), for "out"
    Column("delivered_at", String(32)),
    Column("response_id", String(36)),  # the ack or decline envelope
    Column("response_type", String(16)),
    Column("response_at", String(32)),
    Column("response_by", String(64)),
    Column("response_office", String(64)),  # the office that answered: the addressee or an alternate (0007)
    Column("response_note", Text),
    Column("overdue_at", String(32)),
    Column("recorded_at", String(32), nullable=False),
    # Proof of delivery (migration 0002): the peer's inclusion proof, verified against a checkpoint
    # of the peer's log that this node cosigned ("out" only).
    Column("verified_at", String(32)),
    Column("verified_size", Integer),
    Column("peer_proof", Text),  # JSON list of hex hashes
    # What the envelope is found by (migration 0010): its body's values, folded (`core.search.words_of`).
    Column("words", Text),
)
Index("ix_envelopes_box", envelopes.c.direction, envelopes.c.state)
Index("ix_envelopes_deadline", envelopes.c.deadline)
Index("ix_envelopes_ref", envelopes.c.ref)
# The scheduler asks for the earliest pending deadline every tick, and the proof loop for sent
# envelopes still unverified: partial indexes keep both instant on a log of millions of rows.
# (SQLite uses a partial index only when the query's terms match its WHERE, hence `IS 1`.)
Index(
    "ix_envelopes_pending_deadline",
    envelopes.c.deadline,
    sqlite_where=text("needs_ack IS 1 AND response_id IS NULL AND overdue_at IS NULL"),
    postgresql_where=text("needs_ack IS TRUE AND response_id IS NULL AND overdue_at IS NULL"),
)
Index(
    "ix_envelopes_unverified",
    envelopes.c.peer,
    envelopes.c.log_index,
    sqlite_where=text("direction = 'out' AND receipt IS NOT NULL AND verified_at IS NULL"),
    postgresql_where=text("direction = 'out' AND receipt IS NOT NULL AND verified_at IS NULL"),
)
# Sequence numbers are unique per direction, peer and channel; link tests are unsequenced (seq 0).
Index(
    "ux_envelopes_seq",
    envelopes.c.direction,
    envelopes.c.peer,
    envelopes.c.channel,
    envelopes.c.seq,
    unique=True,
    sqlite_where=text("seq > 0"),
    postgresql_where=text("seq > 0"),
)

# The append-only log: leaf i is the canonical bytes of one envelope.
log = Table(
    "log",
    metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
    Column("envelope_id", String(36), nullable=False),
)

# The transactional outbox: envelopes accepted but not yet receipted by their peer.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("envelope_id", String(36), nullable=False, unique=True),
    Column("peer", String(8), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
)
Index("ix_outbox_peer_channel_seq", outbox.c.peer, outbox.c.channel, outbox.c.seq)

# Last sequence number used ("out") or accepted ("in") per peer and channel.
sequences = Table(
    "sequences",
    metadata,
    Column("direction", String(3), primary_key=True),
    Column("peer", String(8), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("last", Integer, nullable=False),
)

operators = Table(
    "operators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("roles", Text, nullable=False),  # JSON list
    Column("offices", Text, nullable=False),  # JSON list
    Column("lang", String(3), nullable=False, server_default="en"),
    Column("created", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default="0"),
)

ratifications = Table(
    "ratifications",
    metadata,
    Column("party", String(8), primary_key=True),
    Column("agreement_hash", String(64), primary_key=True),
    Column("signature", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("peer", String(8), primary_key=True),
    Column("state", String(10), nullable=False),
    Column("since", String(32), nullable=False),
    Column("last_test_at", String(32)),
    Column("last_ok_at", String(32)),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("rtt_ms", Float),
    Column("clock_offset_ms", Float),  # the peer's clock minus ours, at the last link test (migration 0006)
    Column("last_error", Text),
    Column("peer_status", String(24)),  # the peer's last `status` code and note
    Column("peer_status_note", Text),
    Column("peer_status_at", String(32)),
    # What the peer last said it accepts (`core.wire.ACCEPTS`), space-separated; "" for nothing
    # beyond the first release, NULL if never heard from (migration 0011).
    Column("accepts", Text),
)

# Link state changes, kept so that outages can be reported afterwards (drills, audits).
link_events = Table(
    "link_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("peer", String(8), nullable=False),
    Column("state", String(10), nullable=False),
    Column("at", String(32), nullable=False),
    Column("reason", Text),
)


# --- The transparency log (migration 0002) ---

# Go-tlog stored-hash layout (core/merkle.py): filled in the transaction of each log append.
# About two stored hashes per entry: the index is 64-bit on PostgreSQL (SQLite's INTEGER already is,
# and stays the rowid).
tree_hashes = Table(
    "tree_hashes",
    metadata,
    Column("idx", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

# This node's own signed checkpoints, one per tree size it signed.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),  # the signed note, without cosignatures
    Column("created", String(32), nullable=False),
)

# Cosignatures that peers (as witnesses) returned on this node's checkpoints.
cosignatures = Table(
    "cosignatures",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("witness", String(8), primary_key=True),  # the peer party
    Column("name", Text, nullable=False),  # the witness key name
    Column("line", Text, nullable=False),  # the signature line, without the newline
    Column("received_at", String(32), nullable=False),
)

# Witness state: the latest checkpoint of each peer's log that this node cosigned.
witness_state = Table(
    "witness_state",
    metadata,
    Column("origin", Text, primary_key=True),
    Column("peer", String(8), nullable=False),
    Column("size", Integer, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),  # the peer's note as submitted
    Column("updated_at", String(32), nullable=False),
)

# History of the peer checkpoints this node cosigned.
witnessed = Table(
    "witnessed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False),
    Column("peer", String(8), nullable=False),
    Column("size", Integer, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("cosignature", Text, nullable=False),  # our signature line
    Column("cosigned_at", String(32), nullable=False),
)
Index("ix_witnessed_origin", witnessed.c.origin, witnessed.c.size)

# Alarms (fork alarms): evidence is JSON that stands on its own (both notes and the proof).
alarms = Table(
    "alarms",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("peer", String(8), nullable=False),
    Column("origin", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("created", String(32), nullable=False),
)
