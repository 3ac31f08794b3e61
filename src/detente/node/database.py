"""A node's database as the administration commands and `serve` open it, with errors a person can read.

`store.db` makes engines and migrates; this module decides whether a URL may be a node's
database and turns what the driver says into one line of our own errors:

    check_url        SQLite file or PostgreSQL, with a driver we have   (BadRequest)
    init_url         the URL `init` writes: a SQLite path made absolute  (BadRequest)
    check_new        `init` refuses a database that exists or holds a node's tables
                                                                        (Conflict, Unavailable)
    node_database    open an existing node's database; a missing SQLite file is an
                     error, never a new empty database                   (NotFound, Conflict, ...)
    database_errors  any driver error inside becomes `Unavailable`, password hidden
    RepeatedWarnings a running node's log says a warning that repeats word for word (a
                     database that is down) once, then every `REPEAT_EVERY` seconds

A URL is shown with its password replaced by `***`, and the driver's message is cut to one line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from detente.errors import BadRequest, Conflict, NotFound, Unavailable
from detente.node.config import NODE_DB, NodeConfig, absolute
from detente.store.db import make_engine, migrate, sqlite_url
from detente.store.tables import metadata

FORMS = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DBNAME"
SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")  # the database file and what SQLite writes beside it
REPEAT_EVERY = 30.0  # seconds between two log lines of a warning that keeps repeating word for word
_REMEMBERED = 256  # distinct warnings `RepeatedWarnings` remembers before it forgets the old ones


def shown(url: str) -> str:
    """Return `url` fit to print: its password replaced by `***` (the URL itself if it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a URL that does not parse)"


def check_url(url: str) -> URL:
    """Parse a database URL and check that a node can use it.

    Raises `BadRequest` for a URL that does not parse, names another database than SQLite or
    PostgreSQL, a driver that is not installed, or SQLite without a file.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadRequest(f"the database URL does not parse; give {FORMS}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BadRequest(f"{shown(url)}: a node's database is SQLite or PostgreSQL ({FORMS})")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # what `store.db.make_engine` does
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise BadRequest(f"{shown(url)}: no driver {parsed.get_driver_name()!r} here; give {FORMS}") from None
    if backend == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise BadRequest(f"{shown(url)}: a node's SQLite database is a file ({FORMS})")
    return parsed


def init_url(db: str | None, data: Path) -> str:
    """Return the database URL `init` writes into node.toml: DIR/node.db unless `db` names another.

    A relative SQLite path in `db` is read against the current directory, where the person typed
    it, and written absolute. Raises what `check_url` raises.
    """
    if db is None:
        return sqlite_url(absolute(data / NODE_DB))
    parsed = check_url(db)
    if parsed.get_backend_name() == "sqlite":
        return sqlite_url(absolute(Path(str(parsed.database))))
    return db


def sqlite_files(url: str) -> list[Path]:
    """Return the files a SQLite database at `url` consists of (none for PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    return [Path(parsed.database + suffix) for suffix in SQLITE_SIDECARS]


def check_new(url: str) -> None:
    """Refuse a database for a new node that is not new: a SQLite file that exists, or a PostgreSQL
    database holding a node's tables (two nodes in one database would mix their logs).

    Raises `Conflict` for either and `Unavailable` if PostgreSQL cannot be reached.
    """
    files = sqlite_files(url)
    if files:
        if files[0].exists():
            raise Conflict(f"{files[0]} exists already; a new node needs a new database file")
        return
    engine = make_engine(url)
    try:
        with database_errors(url, "reach"), engine.connect() as conn:
            found = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    ours = found & ({"alembic_version"} | set(metadata.tables))
    if ours:
        raise Conflict(f"the database {shown(url)} already holds a node's tables; give an empty database")


def _cause(exc: DBAPIError, url: str) -> str:
    """Return what the driver said, as one line, without the URL's password."""
    text = " ".join(line.strip() for line in str(exc.orig).splitlines() if line.strip()) or type(exc.orig).__name__
    password = make_url(url).password
    return text.replace(str(password), "***") if password else text


@contextmanager
def database_errors(url: str, doing: str = "use") -> Iterator[None]:
    """Turn a driver error inside the block into `Unavailable`: cannot DOING the database URL: cause."""
    try:
        yield
    except DBAPIError as exc:
        raise Unavailable(f"cannot {doing} the database {shown(url)}: {_cause(exc, url)}") from exc


def node_engine(config: NodeConfig) -> Engine:
    """Open the engine of an existing node's database (not migrated yet).

    Raises what `check_url` raises, `NotFound` if its SQLite file is missing (SQLite would make a
    new, empty one), and `Conflict` if node.toml names another SQLite file than DIR/node.db while
    DIR/node.db exists: the directory was moved or copied, and using the file named would mix
    this node with another one.
    """
    check_url(config.db)
    files = sqlite_files(config.db)
    if files:
        named, own = files[0], config.data / NODE_DB
        if own.exists() and not (named.exists() and os.path.samefile(named, own)):
            raise Conflict(
                f"{config.data / 'node.toml'} names the database {named}, but {config.data} holds its own "
                f"{NODE_DB}: was the directory moved or copied? Set db in node.toml to the one this node uses"
            )
        if not named.exists():
            raise NotFound(
                f"the database {named} named in {config.data / 'node.toml'} is missing: was the data directory "
                "moved? Set db in node.toml to where node.db is"
            )
    return make_engine(config.db)


@contextmanager
def node_database(config: NodeConfig, *, migrated: bool = False) -> Iterator[Engine]:
    """Open an existing node's database (`migrated`: brought to the newest schema first); dispose of
    it after the block.

    Raises what `node_engine` raises, and `Unavailable` for any driver error, inside the block too
    (a damaged file, a server that is down).
    """
    engine = node_engine(config)
    try:
        with database_errors(config.db):
            if migrated:
                migrate(engine)
            yield engine
    finally:
        engine.dispose()


class RepeatedWarnings(logging.Filter):
    """Lets a warning through once, then once every `REPEAT_EVERY` seconds while it repeats word for word.

    While the database was down, the scheduler logged the same line at every tick (0.5 s), and so
    did every other duty at its own pace. The line let through after a pause says how many were
    held back. The record `store.db` logs when a database that was down answers again (marked
    `recovered`) goes through and clears what was remembered: the next failure is logged at once.
    """

    def __init__(self, every: float = REPEAT_EVERY) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # when let through, how many held back since
        self._lock = threading.Lock()  # warnings come from the writer's and other threads too
        self._loggers: list[logging.Logger] = []

    def attach(self) -> None:
        """Filter the warnings of every `detente` logger that exists now (each module makes its own at import)."""
        manager = logging.getLogger().manager
        names = [n for n in list(manager.loggerDict) if n == "detente" or n.startswith("detente.")]
        self._loggers = [logging.getLogger(n) for n in sorted(names)]
        for logger in self._loggers:
            logger.addFilter(self)

    def detach(self) -> None:
        """Stop filtering (the node stopped)."""
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers = []

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether to log `record`; a warning let through after a pause says how many were held back."""
        if getattr(record, "recovered", False):
            with self._lock:
                self._seen.clear()
            return True
        if record.levelno != logging.WARNING:
            return True
        # Another node's filter in the same process (tests) may have reworded the record: its key stays.
        key: tuple[str, str] | None = getattr(record, "repeat_key", None)
        if key is None:
            try:
                key = (record.name, record.getMessage())
            except Exception:  # a record that does not format is the handler's to report
                return True
            record.repeat_key = key
        moment = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and moment - seen[0] < self.every:
                self._seen[key] = (seen[0], seen[1] + 1)
                return False
            if len(self._seen) >= _REMEMBERED:
                self._seen = {k: v for k, v in self._seen.items() if moment - v[0] < self.every}
                if len(self._seen) >= _REMEMBERED:
                    self._seen.clear()
            self._seen[key] = (moment, 0)
        if seen is not None and seen[1]:
            record.msg = "%s (%d more times in the last %d s)"
            record.args = (key[1], seen[1], round(moment - seen[0]))
        return True
