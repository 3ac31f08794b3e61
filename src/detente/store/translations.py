"""Queries on translations and their reviews, derived from the envelope rows alone.

A translation is an envelope whose first ref (the `ref` column, indexed) is the message it
translates; a review one whose first ref is the translation. Nothing else is stored for them, so
a rebuilt node shows the same translations as the one it replaces.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, RowMapping, func, select

from detente.store.tables import envelopes, operators

_IN_CHUNK = 500  # ids per IN (...) list: within every backend's limit on bound parameters


def referring_of_type(conn: Connection, ids: Sequence[str], kind: str) -> list[RowMapping]:
    """Return the envelope rows of type `kind` whose first ref is one of `ids`, in log order."""
    found: list[RowMapping] = []
    for i in range(0, len(ids), _IN_CHUNK):
        query = (
            select(envelopes)
            .where(envelopes.c.ref.in_(list(ids[i : i + _IN_CHUNK])), envelopes.c.type == kind)
            .order_by(envelopes.c.log_index)
        )
        found.extend(conn.execute(query).mappings())
    found.sort(key=lambda row: int(row["log_index"]))
    return found


def count_referring(conn: Connection, ids: Sequence[str], kind: str) -> dict[str, int]:
    """Return, for each of `ids` that has any, how many envelopes of type `kind` refer to it first."""
    counts: dict[str, int] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        query = (
            select(envelopes.c.ref, func.count())
            .where(envelopes.c.ref.in_(list(ids[i : i + _IN_CHUNK])), envelopes.c.type == kind)
            .group_by(envelopes.c.ref)
        )
        counts.update({str(ref): int(n) for ref, n in conn.execute(query)})
    return counts


def operator_names(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """Return the names of this node's operators with these ids (ids of no local operator are absent)."""
    if not ids:
        return {}
    rows = conn.execute(select(operators.c.id, operators.c.name).where(operators.c.id.in_(list(set(ids)))))
    return {str(r.id): str(r.name) for r in rows}
