"""The statements of the hot path, built with SQLAlchemy and run on the driver's own cursor.

SQLAlchemy Core spends about 45 µs of Python around each statement (its execution context, result
set-up, events) where SQLite itself takes about 5 µs for the same indexed read (measured in-process,
2026-11-27). A FLASH message crosses about fifteen statements on its two nodes, so those few
statements, still written as SQLAlchemy expressions, are compiled once per dialect (and per set of
parameter names) and then handed to the DBAPI cursor directly.

What `conn.execute` would do is kept: bound values and result values go through their types'
processors for the dialect, the engine's `before_cursor_execute` listeners run first (the log's
pending rows are written there, `store.logtail`), and a driver error is raised as SQLAlchemy's
exception of the same kind (an `IntegrityError` stays one). A statement SQLAlchemy can only finish
at execution time (expanding `IN` lists, parameters rendered as literals) is refused when compiled:
its callers use `conn.execute`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None
_GIVEN = object()  # a parameter the caller gives


@dataclass(frozen=True)
class _Compiled:
    """One statement compiled for one dialect: its SQL, how to bind its parameters, its result types."""

    sql: str
    positional: bool
    names: tuple[str, ...]  # parameter names, in the order a positional driver wants them
    binds: tuple[Processor, ...]  # the processor of each parameter (None: passed as is)
    values: tuple[Any, ...]  # the value of a parameter the statement carries itself, else _GIVEN
    results: tuple[Processor, ...]  # the processor of each result column
    keys: tuple[str, ...]  # the result columns' names


_compiled: dict[tuple[int, str, frozenset[str]], tuple[ClauseElement, _Compiled]] = {}
_lock = threading.Lock()


def compiled(stmt: ClauseElement, dialect: Dialect, names: Iterable[str] = ()) -> _Compiled:
    """Return `stmt` compiled for `dialect` (for INSERT and UPDATE: with the columns `names` set).

    Cached per statement object, dialect and set of names: the statements of the hot path are
    built once at import. Raises `ValueError` for a statement that needs work at execution time.
    """
    key = (id(stmt), dialect.name + "+" + str(dialect.driver), frozenset(names))
    hit = _compiled.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    out = _compile(stmt, dialect, sorted(key[2]))
    with _lock:  # the statement is kept with its entry, so its id cannot be reused meanwhile
        _compiled[key] = (stmt, out)
    return out


def _compile(stmt: ClauseElement, dialect: Dialect, names: list[str]) -> _Compiled:
    done = stmt.compile(dialect=dialect, column_keys=names or None)
    assert isinstance(done, SQLCompiler)  # a statement, not a DDL element
    sql = str(done)
    if "POSTCOMPILE" in sql or done.literal_execute_params or done.post_compile_params:
        raise ValueError(f"statement needs SQLAlchemy at execution time: {sql[:80]}")
    positional = bool(done.positional)
    order = tuple(done.positiontup or ()) if positional else tuple(done.binds)
    params = [done.binds[n] for n in order]
    binds = tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in params)
    # A literal in the statement (`last + 1`) is a parameter too, which the caller does not give.
    values = tuple(_GIVEN if b.key in names or b.value is None else b.effective_value for b in params)
    columns = getattr(stmt, "column_descriptions", None) or getattr(stmt, "returning_column_descriptions", None) or []
    results = tuple(c["type"].dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    keys = tuple(str(c["name"]) for c in columns)
    return _Compiled(sql, positional, order, binds, values, results, keys)


def _bound(c: _Compiled, params: Mapping[str, Any]) -> Any:
    values = []
    for name, processor, own in zip(c.names, c.binds, c.values, strict=True):
        value = params[name] if own is _GIVEN else own
        values.append(value if processor is None else processor(value))
    return tuple(values) if c.positional else dict(zip(c.names, values, strict=True))


def connection_lost(dialect: Dialect, error: BaseException, dbapi_connection: Any = None, cursor: Any = None) -> bool:
    """Return whether the driver's `error` says the connection is lost, not that its statement failed.

    SQLAlchemy's own test comes first (`is_disconnect`: for psycopg, a connection it sees closed or
    broken). On PostgreSQL, an OperationalError without a SQLSTATE or of the classes 08 (connection
    exception) and 57P (the server shut down or cannot take connections now) counts too: the
    connection may not know yet that it is dead. A server shutting down during an `executemany`,
    which psycopg sends as a pipeline, leaves "cannot exit pipeline mode while busy" on a connection
    that still looks open, and that then cannot even roll back. A statement's own OperationalError
    (a deadlock, a cancelled query) has a SQLSTATE of another class and does not count.
    """
    dbapi = dialect.loaded_dbapi
    if not isinstance(error, dbapi.Error):
        return False
    if dialect.is_disconnect(error, dbapi_connection, cursor):
        return True
    if dialect.name != "postgresql" or not isinstance(error, dbapi.OperationalError):
        return False
    state = getattr(error, "sqlstate", None)
    return state is None or str(state).startswith(("08", "57P"))


def _run(conn: Connection, sql: str, args: Any, many: bool) -> Any:
    """Execute on the connection's DBAPI cursor, as `conn.execute` would; return the cursor."""
    cursor = conn.connection.cursor()
    dbapi = conn.dialect.loaded_dbapi
    try:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        elif args is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, args)
    except dbapi.Error as exc:
        # A connection the server dropped is invalidated, as SQLAlchemy would (`store.db` teaches
        # SQLAlchemy the same test): the pool replaces it instead of handing it out again, or of
        # rolling it back when it is returned (it pings only connections that rested, `store.db`).
        dropped = connection_lost(conn.dialect, exc, conn.connection.dbapi_connection, cursor)
        cursor.close()
        if dropped:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, args, exc, dbapi.Error, dialect=conn.dialect, connection_invalidated=dropped
        ) from exc
    except BaseException:
        cursor.close()
        raise
    return cursor


def execute_sql(conn: Connection, sql: str, args: Any = None, *, many: bool = False) -> None:
    """Run SQL written for this connection's driver (its own parameter style), with `args` as is."""
    _run(conn, sql, args, many).close()


def _row(c: _Compiled, row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if p is None else p(v) for v, p in zip(row, c.results, strict=True))


def execute(conn: Connection, stmt: ClauseElement, params: Mapping[str, Any]) -> int:
    """Run a statement that returns no rows; return its row count."""
    c = compiled(stmt, conn.dialect, params)
    cursor = _run(conn, c.sql, _bound(c, params), False)
    count: int = cursor.rowcount
    cursor.close()
    return count


def executemany(conn: Connection, stmt: ClauseElement, params: Sequence[Mapping[str, Any]]) -> None:
    """Run a statement once per parameter set (all with the same names), in one driver call."""
    if not params:
        return
    c = compiled(stmt, conn.dialect, params[0])
    _run(conn, c.sql, [_bound(c, p) for p in params], True).close()


def rows(conn: Connection, stmt: ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run a query (or a statement with RETURNING); return its rows as tuples."""
    c = compiled(stmt, conn.dialect, params)
    cursor = _run(conn, c.sql, _bound(c, params), False)
    fetched = cursor.fetchall()
    cursor.close()
    return [_row(c, r) for r in fetched]


def mappings(conn: Connection, stmt: ClauseElement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a query; return its rows as dicts by column name."""
    c = compiled(stmt, conn.dialect, params)
    return [dict(zip(c.keys, r, strict=True)) for r in rows(conn, stmt, params)]


def scalar(conn: Connection, stmt: ClauseElement, params: Mapping[str, Any]) -> Any:
    """Run a query (or a statement with RETURNING); return the first column of its first row, or None."""
    found = rows(conn, stmt, params)
    return found[0][0] if found else None
