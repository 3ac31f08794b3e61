"""Each envelope keeps the words it is found by: `envelopes.words`.

A search (`GET /api/v1/messages?q=`, the console's Find, `detente inbox --find`) matches the values
of a message's body, folded (`core.search.words_of`), not the JSON it is stored as. The node writes
them with every envelope it stores; this fills them for the envelopes an earlier release stored,
from each row's canonical envelope (`raw`), a page of rows at a time, in the upgrade's transaction.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from detente.core.search import words_of

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PAGE = 1000  # rows read and written at a time: the upgrade of a log of millions keeps little in memory

envelopes = sa.table(
    "envelopes",
    sa.column("id", sa.String),
    sa.column("log_index", sa.Integer),
    sa.column("raw", sa.LargeBinary),
    sa.column("words", sa.Text),
)


def _words(raw: bytes) -> str:
    """Return the words of a stored envelope; "" if it cannot be read (never stop an upgrade)."""
    try:
        envelope = json.loads(raw)
    except (ValueError, UnicodeDecodeError):  # every stored envelope was checked on the way in
        return ""
    return words_of(envelope) if isinstance(envelope, dict) else ""


def upgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("words", sa.Text(), nullable=True))
    conn = op.get_bind()
    read = (
        sa.select(envelopes.c.id, envelopes.c.log_index, envelopes.c.raw)
        .where(envelopes.c.log_index > sa.bindparam("after", type_=sa.Integer))
        .order_by(envelopes.c.log_index)
        .limit(PAGE)
    )
    write = sa.update(envelopes).where(envelopes.c.id == sa.bindparam("target")).values(words=sa.bindparam("found"))
    after = -1
    while True:
        rows = conn.execute(read, {"after": after}).all()
        if not rows:
            break
        conn.execute(write, [{"target": row.id, "found": _words(bytes(row.raw))} for row in rows])
        after = int(rows[-1].log_index)


def downgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_column("words")
