"""transparency log: stored hashes, checkpoints, cosignatures, witness state, alarms

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from detente.core.merkle import stored_hash_count
from detente.core.merkle_memory import MemoryHashStore

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tree_hashes",
        sa.Column("idx", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "cosignatures",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=8), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness"),
    )
    op.create_table(
        "witness_state",
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )
    op.create_table(
        "witnessed",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("cosignature", sa.Text(), nullable=False),
        sa.Column("cosigned_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("witnessed", schema=None) as batch_op:
        batch_op.create_index("ix_witnessed_origin", ["origin", "size"], unique=False)
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _backfill_tree_hashes()
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_at", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("verified_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("peer_proof", sa.Text(), nullable=True))


def _backfill_tree_hashes() -> None:
    """Store the Merkle hashes of a log written before this revision (idempotent on an empty log)."""
    bind = op.get_bind()
    log = sa.table("log", sa.column("idx", sa.Integer()), sa.column("leaf", sa.LargeBinary()))
    tree = sa.table("tree_hashes", sa.column("idx", sa.Integer()), sa.column("hash", sa.LargeBinary()))
    store = MemoryHashStore()
    batch: list[dict[str, object]] = []
    written = 0
    for idx, leaf in bind.execute(sa.select(log.c.idx, log.c.leaf).order_by(log.c.idx)):
        if idx != store.size:
            raise RuntimeError(f"log index {idx} follows {store.size - 1}: the log has a gap")
        store.append(bytes(leaf))
        hashes = store.read_hashes(range(written, stored_hash_count(store.size)))
        batch.extend({"idx": written + i, "hash": h} for i, h in enumerate(hashes))
        written += len(hashes)
        if len(batch) >= 5000:
            bind.execute(sa.insert(tree), batch)
            batch = []
    if batch:
        bind.execute(sa.insert(tree), batch)


def downgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_column("peer_proof")
        batch_op.drop_column("verified_size")
        batch_op.drop_column("verified_at")
    op.drop_table("alarms")
    with op.batch_alter_table("witnessed", schema=None) as batch_op:
        batch_op.drop_index("ix_witnessed_origin")
    op.drop_table("witnessed")
    op.drop_table("witness_state")
    op.drop_table("cosignatures")
    op.drop_table("checkpoints")
    op.drop_table("tree_hashes")
