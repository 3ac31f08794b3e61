"""`detente rebuild`: derive every workflow projection from the log and compare it with the tables.

The log is the truth (DESIGN §2.1): the projection tables (`store.workflow`) must equal what
`core.workflows.fold` derives from the envelopes in the log (`node.workflow.derive`). `rebuild`
reads the log and the tables in one transaction, lists every difference, and with `write`
replaces the tables by what the log says, in that same transaction. Writing needs the node
stopped (`Conflict` otherwise); comparing does not.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from detente.core import envelope as envelope_mod
from detente.core.agreement import Agreement
from detente.core.envelope import Envelope
from detente.errors import Conflict
from detente.node.config import NodeConfig, load_config
from detente.node.database import node_database
from detente.node.serving import running
from detente.node.workflow import Derived, derive
from detente.store import workflow as store
from detente.store.tables import log

MAX_LISTED = 200  # differences listed in full; the rest are counted


@dataclass
class Report:
    """What `rebuild` found: the counts the log gives, the differences, whether it wrote."""

    envelopes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def matches(self) -> bool:
        """Whether the tables held exactly what the log says."""
        return not self.differences


def is_running(config: NodeConfig) -> bool:
    """Return whether a node serves from this directory (its serve.lock) or answers on its address."""
    if running(config.data) is not None:
        return True
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    try:
        with socket.create_connection((host, config.port), timeout=0.5):
            return True
    except OSError:
        return False


def log_envelopes(conn: Connection) -> list[Envelope]:
    """Return every envelope in the log, in log order."""
    return [envelope_mod.parse(bytes(r[0])) for r in conn.execute(select(log.c.leaf).order_by(log.c.idx))]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _state_diff(kind: str, target: str, stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(expected))
    return [
        f"{kind} {target}: state.{k} is {json.dumps(stored.get(k), ensure_ascii=False)[:200]}, "
        f"the log says {json.dumps(expected.get(k), ensure_ascii=False)[:200]}"
        for k in keys
        if stored.get(k) != expected.get(k)
    ]


def differences(conn: Connection, derived: Derived) -> list[str]:
    """Return every difference between the tables and the rows derived from the log."""
    out: list[str] = []
    for kind in store.TABLES:
        stored = store.all_rows(conn, kind)
        expected = {t: row for (k, t), row in derived.rows.items() if k == kind}
        for target in sorted(set(stored) | set(expected)):
            have, want = stored.get(target), expected.get(target)
            if have is None and want is not None:
                out.append(f"{kind} {target}: missing from the table (the log says {want.status})")
            elif want is None and have is not None:
                out.append(f"{kind} {target}: in the table ({have.status}) but not in the log")
            elif have is not None and want is not None:
                have_values, want_values = _plain(have.values()), _plain(want.values())
                for column in sorted(set(have_values) | set(want_values)):
                    if column == "state":
                        out += _state_diff(kind, target, have.state, _plain(want.state))
                    elif have_values.get(column) != want_values.get(column):
                        out.append(f"{kind} {target}: {column} is {have_values.get(column)!r}, "
                                   f"the log says {want_values.get(column)!r}")  # fmt: skip
    offices = store.all_offices(conn)
    out += [f"{k} {t}: office {o} may read it, but the log gives it no envelope" for k, t, o in
            sorted(offices - derived.offices)]  # fmt: skip
    out += [f"{k} {t}: office {o} is missing from its readers" for k, t, o in sorted(derived.offices - offices)]
    have_conflicts = {
        (c["envelope_id"], c["type"], c["workflow"], c["target"], c["reason"]) for c in store.conflicts_of(conn)
    }
    want_conflicts = {(c.envelope, c.type, c.workflow, c.target, c.reason) for c in derived.conflicts}
    out += [f"conflict recorded but not in the log: {c[1]} {c[0]} on {c[2]} {c[3]}: {c[4]}" for c in
            sorted(have_conflicts - want_conflicts)]  # fmt: skip
    out += [f"conflict missing: {c[1]} {c[0]} on {c[2]} {c[3]}: {c[4]}" for c in
            sorted(want_conflicts - have_conflicts)]  # fmt: skip
    return out


def rebuild_connection(conn: Connection, agreement: Agreement, *, write: bool) -> Report:
    """Compare (and with `write`, replace) the projections on an open transaction."""
    envs = log_envelopes(conn)
    derived = derive(envs, agreement)
    report = Report(envelopes=len(envs))
    for kind in store.TABLES:
        report.counts[kind] = sum(1 for k, _ in derived.rows if k == kind)
    report.counts["conflict"] = len(derived.conflicts)
    report.differences = differences(conn, derived)
    if write and report.differences:
        conflicts = [(c.envelope, c.type, c.workflow, c.target, c.reason) for c in derived.conflicts]
        store.replace_all(conn, derived.rows.values(), derived.offices, conflicts)
        report.written = True
    return report


def rebuild(data: Path, *, write: bool = False) -> Report:
    """Rebuild the projections of the node in `data` from its log; see the module docstring.

    Raises `Conflict` when asked to write while the node is running, `NotFound` for a directory
    that holds no node.
    """
    config = load_config(data)
    agreement = config.agreement()
    if write and is_running(config):
        raise Conflict(f"the node answers on {config.url}: stop it before `detente rebuild --write`")
    with node_database(config, migrated=True) as engine:
        options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
        with engine.connect().execution_options(**options) as conn, conn.begin():
            return rebuild_connection(conn, agreement, write=write)
