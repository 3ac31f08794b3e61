"""The log's tail: appends are numbered and hashed at once, and their rows written together.

Appending an entry adds one `log` row and the `tree_hashes` rows it completes (Go-tlog layout of
`core.merkle`). Issuing those as two statements per entry costs far more than the hashing, so
`append` keeps the rows of consecutive appends on the connection and writes them with one
`executemany` per table at the first moment anything else could see them:

- before any statement that names the `log` or `tree_hashes` table runs on the connection (so a
  read in the same transaction always finds the entry); statements on other tables do not wait
  for them, which lets a writer batch of many messages write its log rows together;
- before a SAVEPOINT is opened or released, and before COMMIT;
- never after a ROLLBACK (TO SAVEPOINT): the pending rows are dropped with the transaction.

The index the next entry takes and the right edge of the tree are kept per engine, and trusted
only when the size the database reports at the transaction's first append agrees; after a
rollback, a restart or a change behind our back they are read again from the tables.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, event, func, select

from detente.core import merkle
from detente.errors import Error
from detente.store import driver
from detente.store.tables import log, tree_hashes

# SQLite allows 32766 bound parameters per statement; stay well below for any backend.
CHUNK = 5000
_KEY = "detente.logtail"
# Driver-level statements (`store.driver`, no compilation), in the two placeholder styles of our drivers.
_SQL = {
    style: (
        f"INSERT INTO {log.name} (idx, leaf, envelope_id) VALUES ({mark}, {mark}, {mark})",
        f"INSERT INTO {tree_hashes.name} (idx, hash) VALUES ({mark}, {mark})",
    )
    for style, mark in (("qmark", "?"), ("format", "%s"))
}


@dataclass
class _Tail:
    """The log's size and the hashes on the tree's right edge (stored index -> hash)."""

    size: int
    edge: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Pending:
    """Rows appended in the current transaction and not yet written."""

    tail: _Tail
    log_rows: list[tuple[int, bytes, str]] = field(default_factory=list)
    hash_rows: list[tuple[int, bytes]] = field(default_factory=list)
    flushing: bool = False


# Statements that can see pending rows: those naming the tables (a false match only writes the rows
# early), and SAVEPOINT and RELEASE, since a rollback to a savepoint drops every pending row.
_SEES_PENDING = re.compile(
    rf"\b({re.escape(log.name)}|{re.escape(tree_hashes.name)})\b|^\s*(SAVEPOINT|RELEASE)\b", re.IGNORECASE
)
_LOG_MAX = select(func.max(log.c.idx))
_READ_HASHES = select(tree_hashes.c.idx, tree_hashes.c.hash).where(
    tree_hashes.c.idx.in_(bindparam("idxs", expanding=True))
)
_tails: weakref.WeakKeyDictionary[Engine, _Tail] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_installed: weakref.WeakSet[Engine] = weakref.WeakSet()


class TableHashReader:
    """A `merkle.HashReader` over the `tree_hashes` table, read through `conn`.

    `cache` (stored index -> hash) is consulted first and filled with what is read. Its
    `read_hashes` raises `Error` if a stored hash is missing (a tree larger than the table).
    """

    def __init__(self, conn: Connection, cache: dict[int, bytes] | None = None) -> None:
        self.conn = conn
        self.cache = {} if cache is None else cache

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the stored hashes at `indexes`, in order. Raises `Error` if one is missing."""
        missing = sorted({i for i in indexes if i not in self.cache})
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            rows = self.conn.execute(_READ_HASHES, {"idxs": chunk})
            for idx, value in rows:
                self.cache[int(idx)] = bytes(value)
        try:
            return [self.cache[i] for i in indexes]
        except KeyError as exc:
            raise Error(f"stored Merkle hash {exc.args[0]} is missing: the tree_hashes table is damaged") from None


def install(engine: Engine) -> None:
    """Hook `engine`'s transactions so that pending appends are written or dropped with them."""
    if engine in _installed:
        return
    _installed.add(engine)
    # SAVEPOINT and RELEASE are statements: `before_cursor_execute` writes the rows before them.
    # COMMIT is not (it is the driver's `commit()`), hence its own hook.
    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "commit", _commit)
    event.listen(engine, "rollback", _drop)
    event.listen(engine, "rollback_savepoint", lambda conn, _name, _ctx: _drop(conn))


def append(conn: Connection, leaf: bytes, envelope_id: str) -> int:
    """Append `leaf` (for `envelope_id`) to the log in `conn`'s transaction; return its index.

    The rows are written before the next statement or the commit (see the module). Raises
    `Error` if the stored hashes the append needs are missing, and whatever the database raises.
    """
    install(conn.engine)
    pending: _Pending | None = conn.info.get(_KEY)
    if pending is None:
        pending = _Pending(_current_tail(conn))
        conn.info[_KEY] = pending
    tail = pending.tail
    index = tail.size
    try:
        hashes = merkle.stored_hashes_for_append(index, merkle.leaf_hash(leaf), TableHashReader(conn, tail.edge))
    except BaseException:
        forget(conn.engine)
        raise
    start = merkle.stored_hash_count(index)
    pending.log_rows.append((index, leaf, envelope_id))
    pending.hash_rows.extend((start + i, h) for i, h in enumerate(hashes))
    # The m subtrees merged by this append leave the edge; the new root of height m joins it.
    m = len(hashes) - 1
    for level in range(m):
        tail.edge.pop(merkle.stored_hash_index(level, (index >> level) - 1), None)
    tail.edge[merkle.stored_hash_index(m, index >> m)] = hashes[-1]
    tail.size = index + 1
    return index


def flush(conn: Connection) -> None:
    """Write the rows appended on `conn` and not yet written (a no-op when there are none)."""
    pending: _Pending | None = conn.info.get(_KEY)
    if pending is None or pending.flushing or not pending.log_rows:
        return
    log_rows, hash_rows = pending.log_rows, pending.hash_rows
    pending.log_rows, pending.hash_rows = [], []
    insert_log, insert_hash = _SQL["qmark" if conn.dialect.paramstyle == "qmark" else "format"]
    pending.flushing = True
    try:
        for i in range(0, len(log_rows), CHUNK):
            driver.execute_sql(conn, insert_log, log_rows[i : i + CHUNK], many=True)
        for i in range(0, len(hash_rows), CHUNK):
            driver.execute_sql(conn, insert_hash, hash_rows[i : i + CHUNK], many=True)
    except BaseException:
        _drop(conn)
        raise
    finally:
        pending.flushing = False


def forget(engine: Engine) -> None:
    """Drop what is known of `engine`'s tail; the next append reads it from the tables."""
    with _lock:
        _tails.pop(engine, None)


def log_size(conn: Connection) -> int:
    """Return the number of entries in the log as `conn` sees it (pending appends written first)."""
    value = driver.scalar(conn, _LOG_MAX, {})
    return 0 if value is None else int(value) + 1


def _current_tail(conn: Connection) -> _Tail:
    """Return the engine's tail if it agrees with the log size in this transaction, else a new one."""
    size = log_size(conn)
    with _lock:
        tail = _tails.get(conn.engine)
        if tail is None or tail.size != size:
            tail = _Tail(size)
            _tails[conn.engine] = tail
        return tail


def _commit(conn: Connection) -> None:
    flush(conn)
    conn.info.pop(_KEY, None)


def _drop(conn: Connection) -> None:
    # Rows appended in a rolled-back scope never reach the table, and the tail ran ahead of it.
    # A connection the server dropped took its pending rows (and its `info`) with it.
    if conn.invalidated or conn.info.pop(_KEY, None) is not None:
        forget(conn.engine)


@functools.lru_cache(maxsize=1024)
def _sees_pending(statement: str) -> bool:
    return _SEES_PENDING.search(statement) is not None


def _before_execute(conn: Connection, _cursor: Any, statement: Any, _params: Any, _context: Any, _many: bool) -> None:
    if _KEY in conn.info and _sees_pending(str(statement)):
        flush(conn)
