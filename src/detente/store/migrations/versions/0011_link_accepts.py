"""Each link keeps what its peer last said it accepts beyond the first release: `links.accepts`.

The features a peer names in `detente-accepts` (`core.wire.ACCEPTS`), space-separated; "" for a
peer that named none (an earlier release); NULL for a peer never heard from. A node kept this in
memory only: restarted while a peer of an earlier release was unreachable, it took that peer to
run this release and let an operator queue a translation the peer would refuse, holding its
channel. Existing rows get NULL: what their peers said before the upgrade was never kept.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("accepts")
