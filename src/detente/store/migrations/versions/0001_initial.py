"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:14:26.818092
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "envelopes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=5), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("from_office", sa.String(length=48), nullable=False),
        sa.Column("to_office", sa.String(length=48), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("precedence", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.Column("ref", sa.String(length=36), nullable=True),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("needs_ack", sa.Boolean(), nullable=False),
        sa.Column("deadline", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.String(length=32), nullable=True),
        sa.Column("response_id", sa.String(length=36), nullable=True),
        sa.Column("response_type", sa.String(length=16), nullable=True),
        sa.Column("response_at", sa.String(length=32), nullable=True),
        sa.Column("response_by", sa.String(length=64), nullable=True),
        sa.Column("response_note", sa.Text(), nullable=True),
        sa.Column("overdue_at", sa.String(length=32), nullable=True),
        sa.Column("recorded_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("log_index"),
    )
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index("ix_envelopes_box", ["direction", "state"], unique=False)
        batch_op.create_index("ix_envelopes_deadline", ["deadline"], unique=False)
        batch_op.create_index("ix_envelopes_ref", ["ref"], unique=False)
        batch_op.create_index(
            "ux_envelopes_seq",
            ["direction", "peer", "channel", "seq"],
            unique=True,
            sqlite_where=sa.text("seq > 0"),
            postgresql_where=sa.text("seq > 0"),
        )

    op.create_table(
        "link_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "links",
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("since", sa.String(length=32), nullable=False),
        sa.Column("last_test_at", sa.String(length=32), nullable=True),
        sa.Column("last_ok_at", sa.String(length=32), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rtt_ms", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("peer_status", sa.String(length=24), nullable=True),
        sa.Column("peer_status_note", sa.Text(), nullable=True),
        sa.Column("peer_status_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("peer"),
    )
    op.create_table(
        "log",
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    op.create_table(
        "operators",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("offices", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=3), server_default="en", nullable=False),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=36), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("envelope_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_peer", ["peer", "id"], unique=False)

    op.create_table(
        "ratifications",
        sa.Column("party", sa.String(length=8), nullable=False),
        sa.Column("agreement_hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("party", "agreement_hash"),
    )
    op.create_table(
        "sequences",
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("direction", "peer", "channel"),
    )


def downgrade() -> None:

    op.drop_table("sequences")
    op.drop_table("ratifications")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_peer")

    op.drop_table("outbox")
    op.drop_table("operators")
    op.drop_table("log")
    op.drop_table("links")
    op.drop_table("link_events")
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index("ux_envelopes_seq", sqlite_where=sa.text("seq > 0"), postgresql_where=sa.text("seq > 0"))
        batch_op.drop_index("ix_envelopes_ref")
        batch_op.drop_index("ix_envelopes_deadline")
        batch_op.drop_index("ix_envelopes_box")

    op.drop_table("envelopes")
