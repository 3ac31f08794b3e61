"""workflow projections (cases, clarifications, actions, consultations, conflicts) and evidence files

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00.000000

A node whose log already holds workflow envelopes when it is upgraded fills these tables with
`detente rebuild --data DIR --write` (node stopped).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WORKFLOW_TABLES: dict[str, list[sa.Column[Any]]] = {
    "cases": [],
    "clarifications": [sa.Column("deadline", sa.String(length=32), nullable=True)],
    "actions": [sa.Column("unilateral", sa.Boolean(), nullable=False, server_default="0")],
    "consultations": [sa.Column("start", sa.String(length=32), nullable=True)],
}


def upgrade() -> None:
    for name, extra in WORKFLOW_TABLES.items():
        op.create_table(
            name,
            sa.Column("id", sa.String(length=36), nullable=False),
            sa.Column("case_id", sa.String(length=36), nullable=True),
            sa.Column("status", sa.String(length=24), nullable=False),
            sa.Column("opened_by", sa.String(length=48), nullable=False),
            sa.Column("counterpart", sa.String(length=48), nullable=False),
            sa.Column("created", sa.String(length=32), nullable=False),
            sa.Column("updated_at", sa.String(length=32), nullable=False),
            sa.Column("last_id", sa.String(length=36), nullable=False),
            sa.Column("state", sa.Text(), nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.create_index(f"ix_{name}_status", ["status"], unique=False)
            batch_op.create_index(f"ix_{name}_case", ["case_id"], unique=False)
    op.create_table(
        "workflow_offices",
        sa.Column("workflow", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("office", sa.String(length=48), nullable=False),
        sa.PrimaryKeyConstraint("workflow", "id", "office"),
    )
    with op.batch_alter_table("workflow_offices", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_offices_office", ["office", "workflow"], unique=False)
    op.create_table(
        "workflow_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("workflow", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("envelope_id", "workflow", "target", name="ux_workflow_conflicts"),
    )
    with op.batch_alter_table("workflow_conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_conflicts_target", ["workflow", "target"], unique=False)
    op.create_table(
        "evidence",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("peer", sa.String(length=8), nullable=True),
        sa.Column("uploaded_by", sa.String(length=64), nullable=True),
        sa.Column("created", sa.String(length=32), nullable=False),
        sa.Column("stored_at", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_state", ["state"], unique=False)
    op.create_table(
        "evidence_refs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("envelope_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "envelope_id"),
    )
    with op.batch_alter_table("evidence_refs", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_refs_envelope", ["envelope_id"], unique=False)
    # A case's envelopes are found by their `case` member (store.workflow.workflow_raws).
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index("ix_envelopes_case", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index("ix_envelopes_case")
    op.drop_table("evidence_refs")
    op.drop_table("evidence")
    op.drop_table("workflow_conflicts")
    op.drop_table("workflow_offices")
    for name in reversed(list(WORKFLOW_TABLES)):
        op.drop_table(name)
