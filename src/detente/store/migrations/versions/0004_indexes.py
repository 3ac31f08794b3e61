"""Partial indexes for the pending-deadline and unverified-delivery queries.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PENDING = "needs_ack IS {true} AND response_id IS NULL AND overdue_at IS NULL"
UNVERIFIED = "direction = 'out' AND receipt IS NOT NULL AND verified_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_envelopes_pending_deadline",
            ["deadline"],
            sqlite_where=sa.text(PENDING.format(true="1")),
            postgresql_where=sa.text(PENDING.format(true="TRUE")),
        )
        batch_op.create_index(
            "ix_envelopes_unverified",
            ["peer", "log_index"],
            sqlite_where=sa.text(UNVERIFIED),
            postgresql_where=sa.text(UNVERIFIED),
        )


def downgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index("ix_envelopes_unverified")
        batch_op.drop_index("ix_envelopes_pending_deadline")
