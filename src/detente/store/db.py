"""Engines and migrations for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before the node answers
"accepted". PostgreSQL is chosen with a `postgresql+psycopg://` URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event

from detente.store import driver, logtail

MIGRATIONS = Path(__file__).parent / "migrations"


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
        engine = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    logtail.install(engine)
    return engine


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
