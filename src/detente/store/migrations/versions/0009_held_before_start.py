"""A consultation stored by an earlier release says whether it was held before its scheduled start.

`Consultation.to_json` now adds `held_before_start` (derived from `held_at` and `start`), and the
node stores that JSON. A consultation an earlier release stored, and no envelope touched since,
lacked it: the API, the CLI and the console left the member out, and `detente rebuild` reported
`state.held_before_start is null, the log says false` on every upgraded node (QA). This adds it to
those states, as `detente rebuild --write` would, without stopping to run it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

consultations = sa.table("consultations", sa.column("id", sa.String), sa.column("state", sa.Text))


def _with_flag(text: str) -> str | None:
    """Return the stored state with `held_before_start` added, or None if it has it or cannot be read."""
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or "held_before_start" in state:
            return None
        held, start = state.get("held_at"), state["start"]
        early = held is not None and datetime.fromisoformat(held) < datetime.fromisoformat(start)
    except (ValueError, TypeError, KeyError):  # every stored state was written by a node; never stop an upgrade
        return None
    state["held_before_start"] = early
    return json.dumps(state, ensure_ascii=False, sort_keys=True)


def upgrade() -> None:
    conn = op.get_bind()
    for target, text in conn.execute(sa.select(consultations.c.id, consultations.c.state)).all():
        updated = _with_flag(str(text))
        if updated is not None:
            conn.execute(sa.update(consultations).where(consultations.c.id == target).values(state=updated))


def downgrade() -> None:
    # An earlier release ignores a member its state does not declare (`core.workflow_json`).
    pass
