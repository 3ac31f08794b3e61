"""Engines and migrations for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before the node answers
"accepted". PostgreSQL is chosen with a `postgresql+psycopg://` URL.

On PostgreSQL every statement is a round trip to another process, so the engine spends as few as it
can: reads (`read_connection`) run in autocommit, without the BEGIN and ROLLBACK around them, and a
pooled connection is pinged only when it has been idle for `PING_IDLE` seconds, not at every
checkout. The ROLLBACK mattered most: psycopg forgets its prepared statements at every ROLLBACK
(`DEALLOCATE ALL`), so the server parsed and planned the hot statements again each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from detente.store import driver, logtail

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
PING_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before it is pinged at checkout


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite database file."""
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """Create an engine for `url`, with the durability settings this project relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy emit BEGIN itself, so that SAVEPOINTs work (pysqlite would otherwise
            # manage transactions on its own and break them).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers ask for BEGIN IMMEDIATE (execution option `begin`): a deferred transaction that
            # reads and then writes fails at once with "database is locked" when another process
            # writes meanwhile, instead of waiting out the busy timeout.
            mode = conn.get_execution_options().get("begin", "")
            driver.execute_sql(conn, "BEGIN IMMEDIATE" if mode == "immediate" else "BEGIN")

    else:
        if url.startswith("postgresql://"):
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        # LIFO: the connection used last is warm (its backend's caches, its prepared statements).
        engine = create_engine(url, pool_size=8, max_overflow=8, pool_use_lifo=True)
        _ping_when_idle(engine)
    logtail.install(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    # A connection the server dropped (a restart, an idle timeout) is found by a ping and replaced
    # before anyone uses it. Pinging at every checkout (`pool_pre_ping`) cost a round trip per read
    # and per writer batch; a connection used less than PING_IDLE seconds ago is taken as alive, and
    # one that died meanwhile fails its statement and is invalidated there (`store.driver`).
    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("rested_since", 0.0) < PING_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection dropped by the server: {exc}") from exc  # the pool reconnects


def read(engine: Engine, query: Callable[[Connection], T]) -> T:
    """Run a read-only function of a connection and return its result (`read_connection`).

    If the server dropped the connection under it (a restart), the read runs once more on a new
    one: a read changes nothing, so a person sees the answer instead of an error.
    """
    try:
        with read_connection(engine) as conn:
            return query(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with read_connection(engine) as conn:
        return query(conn)


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection for reads only (writes go through the writer, `store.writer`).

    On PostgreSQL it runs in autocommit: each statement sees the data committed before it, as it
    would in a READ COMMITTED transaction, without a BEGIN and a ROLLBACK around the reads. On
    SQLite it is a plain connection (its reads share one snapshot).
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Open one write transaction (BEGIN IMMEDIATE on SQLite); commit it unless the block raises."""
    with engine.connect().execution_options(begin="immediate") as conn, conn.begin():
        yield conn


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic configuration pointing at this package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
