"""Projection tables of the workflows (migration 0003) and the queries on them.

One table per workflow kind (`cases`, `clarifications`, `actions`, `consultations`), each row the
JSON state of one workflow object (`core.workflow_json`) with the columns lists filter on; the
canonical-order key of the last envelope folded into it (`updated_at`, `last_id`), so the node
knows whether the next envelope may simply be applied or the workflow must be re-folded;
`workflow_offices`, the offices whose envelopes a workflow holds (who may read it); and
`workflow_conflicts`, the envelopes a workflow refused. Every row is derived from the log and is
rebuilt by `detente rebuild`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    or_,
    select,
    update,
)

from detente.store.tables import envelopes, metadata


def _workflow_table(name: str, *extra: Column[Any]) -> Table:
    table = Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),  # the id of the opening envelope
        Column("case_id", String(36)),
        Column("status", String(24), nullable=False),
        Column("opened_by", String(48), nullable=False),  # office
        Column("counterpart", String(48), nullable=False),  # office the opener was addressed to
        Column("created", String(32), nullable=False),
        Column("updated_at", String(32), nullable=False),  # `created` of the last envelope folded in
        Column("last_id", String(36), nullable=False),  # ... and its id: the canonical-order key
        Column("state", Text, nullable=False),  # JSON, core.workflow_json
        *extra,
    )
    Index(f"ix_{name}_status", table.c.status)
    Index(f"ix_{name}_case", table.c.case_id)
    return table


cases = _workflow_table("cases")
clarifications = _workflow_table("clarifications", Column("deadline", String(32)))
actions = _workflow_table("actions", Column("unilateral", Boolean, nullable=False, server_default="0"))
consultations = _workflow_table("consultations", Column("start", String(32)))
TABLES: dict[str, Table] = {
    "case": cases,
    "clarification": clarifications,
    "action": actions,
    "consultation": consultations,
}

workflow_offices = Table(
    "workflow_offices",
    metadata,
    Column("workflow", String(16), primary_key=True),
    Column("id", String(36), primary_key=True),
    Column("office", String(48), primary_key=True),
)
Index("ix_workflow_offices_office", workflow_offices.c.office, workflow_offices.c.workflow)

workflow_conflicts = Table(
    "workflow_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("envelope_id", String(36), nullable=False),
    Column("type", String(64), nullable=False),
    Column("workflow", String(16), nullable=False),
    Column("target", String(36), nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("envelope_id", "workflow", "target", name="ux_workflow_conflicts"),
)
Index("ix_workflow_conflicts_target", workflow_conflicts.c.workflow, workflow_conflicts.c.target)
# A case's envelopes are found by their `case` member (`workflow_raws`).
Index("ix_envelopes_case", envelopes.c.case_id)


@dataclass(frozen=True)
class Row:
    """One workflow object as stored: its columns and JSON state."""

    kind: str
    id: str
    case_id: str | None
    status: str
    opened_by: str
    counterpart: str
    created: str
    updated_at: str
    last_id: str
    state: dict[str, Any]
    extra: tuple[tuple[str, Any], ...] = ()  # deadline, unilateral, start

    def values(self) -> dict[str, Any]:
        """Return the column values of this row."""
        return {
            "id": self.id, "case_id": self.case_id, "status": self.status, "opened_by": self.opened_by,
            "counterpart": self.counterpart, "created": self.created, "updated_at": self.updated_at,
            "last_id": self.last_id, "state": json.dumps(self.state, ensure_ascii=False, sort_keys=True),
            **dict(self.extra),
        }  # fmt: skip


def _row(kind: str, mapping: RowMapping) -> Row:
    extra = tuple((c, mapping[c]) for c in ("deadline", "unilateral", "start") if c in mapping)
    return Row(
        kind, mapping["id"], mapping["case_id"], mapping["status"], mapping["opened_by"], mapping["counterpart"],
        mapping["created"], mapping["updated_at"], mapping["last_id"], json.loads(mapping["state"]), extra,
    )  # fmt: skip


def get(conn: Connection, kind: str, target: str) -> Row | None:
    """Return the stored workflow object, or None."""
    table = TABLES[kind]
    found = conn.execute(select(table).where(table.c.id == target)).mappings().first()
    return None if found is None else _row(kind, found)


def put(conn: Connection, row: Row) -> None:
    """Insert or replace one workflow object."""
    table = TABLES[row.kind]
    values = row.values()
    if conn.execute(update(table).where(table.c.id == row.id).values(**values)).rowcount == 0:
        conn.execute(insert(table).values(**values))


def listing(
    conn: Connection,
    kind: str,
    *,
    offices: Sequence[str] | None,
    status: str | None = None,
    case_id: str | None = None,
    unilateral: bool | None = None,
    statuses: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    limit: int = 200,
) -> list[Row]:
    """Return workflow objects, newest first, limited to those holding envelopes of `offices` (None: all).

    `status` keeps one status, `statuses` any of several; `ids` keeps only those objects.
    """
    table = TABLES[kind]
    query = select(table)
    if offices is not None:
        members = select(workflow_offices.c.id).where(
            workflow_offices.c.workflow == kind, workflow_offices.c.office.in_(offices)
        )
        query = query.where(table.c.id.in_(members))
    if status:
        query = query.where(table.c.status == status)
    if statuses is not None:
        query = query.where(table.c.status.in_(statuses))
    if ids is not None:
        query = query.where(table.c.id.in_(ids))
    if case_id:
        query = query.where(table.c.case_id == case_id)
    if unilateral is not None and kind == "action":
        query = query.where(table.c.unilateral.is_(unilateral))
    query = query.order_by(table.c.created.desc(), table.c.id.desc()).limit(limit)
    return [_row(kind, m) for m in conn.execute(query).mappings()]


def all_rows(conn: Connection, kind: str) -> dict[str, Row]:
    """Return every stored object of `kind` by id."""
    return {m["id"]: _row(kind, m) for m in conn.execute(select(TABLES[kind])).mappings()}


def offices_of(conn: Connection, kind: str, target: str) -> set[str]:
    """Return the offices that may read this workflow object."""
    key = (workflow_offices.c.workflow == kind, workflow_offices.c.id == target)
    query = select(workflow_offices.c.office).where(*key)
    return {str(r[0]) for r in conn.execute(query)}


def add_offices(conn: Connection, kind: str, target: str, offices: Iterable[str]) -> None:
    """Record that `offices` may read this workflow object (those already recorded are kept)."""
    missing = set(offices) - offices_of(conn, kind, target)
    for office in sorted(missing):
        conn.execute(insert(workflow_offices).values(workflow=kind, id=target, office=office))


def set_offices(conn: Connection, kind: str, target: str, offices: Iterable[str]) -> None:
    """Replace the offices that may read this workflow object (after it is re-folded)."""
    conn.execute(delete(workflow_offices).where(workflow_offices.c.workflow == kind, workflow_offices.c.id == target))
    for office in sorted(set(offices)):
        conn.execute(insert(workflow_offices).values(workflow=kind, id=target, office=office))


def all_offices(conn: Connection) -> set[tuple[str, str, str]]:
    """Return every (workflow, id, office) row."""
    return {(str(a), str(b), str(c)) for a, b, c in conn.execute(select(workflow_offices))}


def conflicts_of(conn: Connection, kind: str | None = None, target: str | None = None) -> list[RowMapping]:
    """Return the recorded conflicts (of one workflow object, if given), in the order recorded."""
    query = select(workflow_conflicts)
    if kind is not None:
        query = query.where(workflow_conflicts.c.workflow == kind)
    if target is not None:
        query = query.where(workflow_conflicts.c.target == target)
    return list(conn.execute(query.order_by(workflow_conflicts.c.id)).mappings())


def add_conflict(conn: Connection, envelope_id: str, type_: str, kind: str, target: str, reason: str) -> None:
    """Record that workflow object (kind, target) refused an envelope (once per envelope and object)."""
    key = (
        workflow_conflicts.c.envelope_id == envelope_id,
        workflow_conflicts.c.workflow == kind,
        workflow_conflicts.c.target == target,
    )
    if conn.execute(select(workflow_conflicts.c.id).where(*key)).first() is None:
        conn.execute(
            insert(workflow_conflicts).values(
                envelope_id=envelope_id, type=type_, workflow=kind, target=target, reason=reason[:2000]
            )
        )


def clear_conflicts(conn: Connection, kind: str, target: str) -> None:
    """Forget the conflicts of one workflow object (before it is re-folded)."""
    key = (workflow_conflicts.c.workflow == kind, workflow_conflicts.c.target == target)
    conn.execute(delete(workflow_conflicts).where(*key))


def workflow_raws(conn: Connection, target: str) -> list[bytes]:
    """Return the raw envelopes that may belong to the workflow object `target`.

    These are the envelope with that id, those whose first ref is it and those naming it as their
    case: a superset of the envelopes `core.workflows.targets` assigns to it (callers filter).
    """
    query = select(envelopes.c.raw).where(
        or_(envelopes.c.id == target, envelopes.c.ref == target, envelopes.c.case_id == target)
    )
    return [bytes(r[0]) for r in conn.execute(query.order_by(envelopes.c.log_index))]


def replace_all(conn: Connection, rows: Iterable[Row], offices: Iterable[tuple[str, str, str]],
                conflicts: Iterable[tuple[str, str, str, str, str]]) -> None:  # fmt: skip
    """Replace every projection row (for `detente rebuild --write`), inside the caller's transaction.

    `conflicts` are (envelope id, type, workflow, target, reason).
    """
    for table in (*TABLES.values(), workflow_offices, workflow_conflicts):
        conn.execute(delete(table))
    for row in rows:
        conn.execute(insert(TABLES[row.kind]).values(**row.values()))
    for kind, target, office in sorted(set(offices)):
        conn.execute(insert(workflow_offices).values(workflow=kind, id=target, office=office))
    for envelope_id, type_, kind, target, reason in conflicts:
        add_conflict(conn, envelope_id, type_, kind, target, reason)
