"""Engines and migrations for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before the node answers
"accepted". PostgreSQL is chosen with a `postgresql+psycopg://` URL.

On PostgreSQL every statement is a round trip to another process, so the engine spends as few as it
can: reads (`read_connection`) run in autocommit, without the BEGIN and ROLLBACK around them, and a
pooled connection is pinged only when it has been idle for `PING_IDLE` seconds, not at every
checkout. The ROLLBACK mattered most: psycopg forgets its prepared statements at every ROLLBACK
(`DEALLOCATE ALL`), so the server parsed and planned the hot statements again each time.

A PostgreSQL server that cannot be reached (restarting, stopped, a connection it dropped) is waited
out: a read (`read`), a connection (`connect`, `read_connection`) and the writer's batch before its
COMMIT (`store.writer`) are tried again after 0.05 s, 0.1 s, 0.2 s ... for about `RETRY_FOR` seconds
in all (`Retries`), and then fail with `Unavailable` naming the database, without its password. Once
they have, the engine counts as down: the next callers try once and do not wait, until a connection
succeeds again ("available again" in the log). SQLite is not retried beyond the one try on a new
connection that `read` always made.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from detente.errors import CommitInDoubt, Unavailable
from detente.store import driver, logtail

log = logging.getLogger("detente.database")
MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
PING_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before it is pinged at checkout
RETRY_FOR = 2.0  # seconds a read or a write batch waits out a PostgreSQL server it cannot reach
LOCK_TIMEOUT = 1.0  # seconds a PostgreSQL statement waits for a lock another session holds
FIRST_WAIT = 0.05  # seconds before the second try; each next wait is twice the one before
# The engines whose server could not be reached after all the tries: their callers no longer wait.
_down: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


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
        # A lock held by someone else (an administrator's VACUUM FULL or LOCK TABLE) is waited for
        # LOCK_TIMEOUT seconds at most: a read on the event loop that waited behind it, while the
        # writer's open transaction waited for the loop, froze the node for good (QA). The wait
        # then counts as the database unavailable: tried again, then answered 503.
        given = make_url(url).query.get("options")
        options = {} if given else {"options": f"-c lock_timeout={int(LOCK_TIMEOUT * 1000)}"}
        engine = create_engine(url, pool_size=8, max_overflow=8, pool_use_lifo=True, connect_args=options)
        _ping_when_idle(engine)
        _invalidate_when_lost(engine)
    logtail.install(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    # A connection the server dropped (a restart, an idle timeout) is found by a ping and replaced
    # before anyone uses it. Pinging at every checkout (`pool_pre_ping`) cost a round trip per read
    # and per writer batch; a connection used less than PING_IDLE seconds ago is taken as alive, and
    # one that died meanwhile fails its statement and is invalidated there (`store.driver`).
    # Once one connection was found dropped, the others returned before that are pinged too: a
    # restart of the server dropped them all, and each would otherwise fail one caller's statement.
    dropped = [0.0]  # when a connection of this engine was last found dropped (monotonic)

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info["rested_since"] = time.monotonic()
        if _down.pop(engine, False):
            log.warning("the database %s is available again", shown_url(engine), extra={"recovered": True})

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "invalidate")
    def _invalidated(_dbapi_conn: Any, _record: Any, _exc: Any) -> None:
        dropped[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        rested_since = record.info.get("rested_since", 0.0)
        if time.monotonic() - rested_since < PING_IDLE and rested_since > dropped[0]:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection dropped by the server: {exc}") from exc  # the pool reconnects


def _invalidate_when_lost(engine: Engine) -> None:
    # SQLAlchemy invalidates a connection only on the errors it knows as disconnects; a statement
    # run through `conn.execute` gets the wider test of `store.driver` too, so that a connection the
    # server dropped is never handed back to the pool, which would fail to roll it back.
    @event.listens_for(engine, "handle_error")
    def _lost(context: ExceptionContext) -> None:
        error = context.original_exception
        if error is not None and not context.is_disconnect and driver.connection_lost(engine.dialect, error):
            context.is_disconnect = True


def shown_url(engine: Engine) -> str:
    """Return the engine's URL fit to print: without its password (not even `***`)."""
    url = engine.url  # `URL.set(password=None)` would keep the password: None there means "unchanged"
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=True)


def connection_failed(engine: Engine, exc: BaseException) -> bool:
    """Return whether `exc` says the connection to the database failed, not the statement: worth another try.

    On PostgreSQL: a connection the server dropped (invalidated), or a driver error that says the
    connection was lost or could not be made (`driver.connection_lost`: connecting refused, the
    server shutting down or starting up), or a lock waited for `LOCK_TIMEOUT` in vain; not a
    statement's own OperationalError (a deadlock, a cancelled query). On SQLite: only a connection
    SQLAlchemy invalidated, as before.
    """
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if engine.dialect.name != "postgresql" or invalidated:
        return invalidated
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if orig is None:
        return False
    # 55P03: a lock waited for LOCK_TIMEOUT (an administrator's LOCK TABLE): nothing was written.
    return driver.connection_lost(engine.dialect, orig) or getattr(orig, "sqlstate", None) == "55P03"


def unavailable(engine: Engine, exc: BaseException) -> Unavailable:
    """Return the `Unavailable` a connection failure `exc` is answered with: the database named, its
    password left out, and what the driver said on one line."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    said = " ".join(line.strip() for line in str(orig).splitlines() if line.strip()) or type(orig).__name__
    password = engine.url.password
    if password:
        said = said.replace(str(password), "***")
    return Unavailable(f"the database {shown_url(engine)} is unavailable: {said}")


def in_doubt(engine: Engine, exc: BaseException) -> CommitInDoubt:
    """Return the `CommitInDoubt` a COMMIT whose connection failed (`exc`) is answered with."""
    cause = unavailable(engine, exc).detail
    return CommitInDoubt(
        f"{cause}; it went away while this was being committed, so it may or may not be stored: "
        "look for it before sending it again"
    )


class Retries:
    """When to try again a read, a connection or a write batch whose connection failed (`connection_failed`).

    On PostgreSQL it waits `FIRST_WAIT`, then twice as long each time, for `RETRY_FOR` seconds in
    all: a restart of the server is over by then. While the engine counts as down (a caller's
    tries ran out: `gave_up`), there are no more tries, so that callers fail at once until a
    connection succeeds again. On SQLite: one more try at once, as before.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._until = time.monotonic() + RETRY_FOR
        self._wait = FIRST_WAIT
        self._left = 1  # SQLite's one more try

    def next_wait(self) -> float | None:
        """Return the seconds to wait before the next try, or None: no more tries."""
        if not self._postgresql:
            self._left -= 1
            return 0.0 if self._left >= 0 else None
        left = self._until - time.monotonic()
        if left <= 0 or _down.get(self.engine, False):
            return None
        wait = min(self._wait, left)
        self._wait *= 2
        return wait

    def gave_up(self, exc: BaseException) -> BaseException:
        """Return what to raise when the last try failed with `exc`: on PostgreSQL `Unavailable` (and
        the engine counts as down until a connection succeeds), elsewhere `exc` itself."""
        if not self._postgresql:
            return exc
        _down[self.engine] = True
        error = unavailable(self.engine, exc)
        error.__cause__ = exc
        return error


def read(engine: Engine, query: Callable[[Connection], T]) -> T:
    """Run a read-only function of a connection and return its result (`read_connection`).

    If the connection failed (the server dropped it, or cannot be reached: `connection_failed`),
    the read runs again on a new one (`Retries`): a read changes nothing, so a person sees the
    answer instead of an error. Raises `Unavailable` if PostgreSQL still cannot be reached, and
    the query's own errors.
    """
    retries: Retries | None = None
    while True:
        try:
            with _connection(engine) as conn:
                return query(conn)
        except DBAPIError as exc:
            if not connection_failed(engine, exc):
                raise
            retries = retries or Retries(engine)
            wait = retries.next_wait()
            if wait is None:
                failure = retries.gave_up(exc)
                if failure is exc:
                    raise
                raise failure from exc
            time.sleep(wait)


class ReadElsewhere(Exception):
    """A read's connection failed where it must not wait (`read_without_waiting`): run it with `read`."""


def read_without_waiting(engine: Engine, query: Callable[[Connection], T]) -> T:
    """Run a read-only function of a connection once, for a caller on the event loop.

    `read` waits out a PostgreSQL restart, which on the event loop would stop the whole node for as
    long. Raises `ReadElsewhere` if the connection failed (run the query with `read`, off the loop),
    and the query's own errors.
    """
    try:
        with _connection(engine) as conn:
            return query(conn)
    except DBAPIError as exc:
        if connection_failed(engine, exc):
            raise ReadElsewhere from exc
        raise


def connect(engine: Engine) -> Connection:
    """Open a connection; on PostgreSQL, wait out a server that cannot be reached (`Retries`).

    Raises `Unavailable` if PostgreSQL still cannot be reached, and the driver's error otherwise.
    """
    retries: Retries | None = None
    while True:
        try:
            return engine.connect()
        except DBAPIError as exc:
            if engine.dialect.name != "postgresql" or not connection_failed(engine, exc):
                raise
            retries = retries or Retries(engine)
            wait = retries.next_wait()
            if wait is None:
                raise retries.gave_up(exc) from exc
            time.sleep(wait)


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection for reads only (writes go through the writer, `store.writer`).

    On PostgreSQL it runs in autocommit: each statement sees the data committed before it, as it
    would in a READ COMMITTED transaction, without a BEGIN and a ROLLBACK around the reads. On
    SQLite it is a plain connection (its reads share one snapshot).

    Connecting waits out a PostgreSQL server that cannot be reached (`connect`); the block cannot
    be run again, so a connection that fails in it raises `Unavailable` at once (`read` runs its
    query again instead). Raises `Unavailable` for either on PostgreSQL.
    """
    postgresql = engine.dialect.name == "postgresql"
    with connect(engine) as conn:
        try:
            yield conn.execution_options(isolation_level="AUTOCOMMIT") if postgresql else conn
        except DBAPIError as exc:
            if postgresql and connection_failed(engine, exc):
                raise unavailable(engine, exc) from exc
            raise


@contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    """`read_connection` without its waits: a connection failure raises the driver's error."""
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


def migrate(engine: Engine, announce: Callable[[str, str], None] | None = None) -> None:
    """Bring the database to the newest schema (idempotent), in one transaction.

    `announce(current, newest)` is called first when a database of an earlier release is about to
    be upgraded (not a new one): filling a column from every stored message takes minutes on a
    large log, and a node that says nothing meanwhile looks hung (QA, an upgrade).
    """
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if announce is not None:
            current = MigrationContext.configure(conn).get_current_revision()
            newest = ScriptDirectory.from_config(cfg).get_current_head()
            if current is not None and newest is not None and current != newest:
                announce(current, newest)
        command.upgrade(cfg, "head")
