"""The offices given action items by a consultation's minutes may read the consultation.

`node.workflow.envelope_readers` now records them in `workflow_offices` as minutes arrive; this
adds them for the minutes a node recorded before, so that an owner office sees its items at once
after the upgrade (as `detente rebuild --write` would, without stopping to run it). Minutes the
consultation refused (a `workflow_conflicts` row) give no one anything.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

envelopes = sa.table("envelopes", sa.column("id", sa.String), sa.column("type", sa.String),
                     sa.column("raw", sa.LargeBinary))  # fmt: skip
consultations = sa.table("consultations", sa.column("id", sa.String))
workflow_offices = sa.table(
    "workflow_offices", sa.column("workflow", sa.String), sa.column("id", sa.String), sa.column("office", sa.String)
)
workflow_conflicts = sa.table(
    "workflow_conflicts", sa.column("envelope_id", sa.String), sa.column("workflow", sa.String),
    sa.column("target", sa.String),
)  # fmt: skip


def _owners(raw: bytes) -> tuple[str, set[str]]:
    """Return the consultation a stored minutes envelope belongs to and its items' owners ("" if unreadable)."""
    try:
        envelope: Any = json.loads(bytes(raw))
    except ValueError:  # every stored envelope was checked on the way in; never let one stop an upgrade
        return "", set()
    refs, body = envelope.get("refs"), envelope.get("body")
    if not isinstance(refs, list) or not refs or not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return "", set()
    owners = {i["owner"] for i in body["items"] if isinstance(i, dict) and isinstance(i.get("owner"), str)}
    return str(refs[0]), owners


def upgrade() -> None:
    conn = op.get_bind()
    known = {str(r[0]) for r in conn.execute(sa.select(consultations.c.id))}
    refused = {
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            sa.select(workflow_conflicts.c.envelope_id, workflow_conflicts.c.target).where(
                workflow_conflicts.c.workflow == "consultation"
            )
        )
    }
    have = {
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            sa.select(workflow_offices.c.id, workflow_offices.c.office).where(
                workflow_offices.c.workflow == "consultation"
            )
        )
    }
    query = sa.select(envelopes.c.id, envelopes.c.raw).where(envelopes.c.type == "consultation.minutes")
    for envelope_id, raw in conn.execute(query).all():
        target, owners = _owners(raw)
        if target not in known or (str(envelope_id), target) in refused:
            continue
        for office in sorted(owners):
            if (target, office) not in have:
                conn.execute(sa.insert(workflow_offices).values(workflow="consultation", id=target, office=office))
                have.add((target, office))


def downgrade() -> None:
    # The rows added are what the projection derives from the log: an older release keeps them harmlessly
    # (`detente rebuild` on it would call them extra, and `--write` would remove them).
    pass
