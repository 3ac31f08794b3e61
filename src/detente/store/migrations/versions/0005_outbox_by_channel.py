"""The outbox is read channel by channel in sequence order: index (peer, channel, seq).

It replaces (peer, id): no query reads the outbox in insertion order any more, and the old read
sorted a peer's whole queue for every delivery batch.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_peer_channel_seq", ["peer", "channel", "seq"], unique=False)
        batch_op.drop_index("ix_outbox_peer")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_peer", ["peer", "id"], unique=False)
        batch_op.drop_index("ix_outbox_peer_channel_seq")
