"""Each answered message keeps the office that answered it: `envelopes.response_office`.

An ack or decline is sealed from the addressed office; when an alternate answers a message that
went overdue (escalation), its body names the alternate office, and both sides show it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_office", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_column("response_office")
