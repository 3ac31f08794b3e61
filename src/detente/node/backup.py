"""`detente backup`: a consistent copy of a node's files and SQLite database, taken while it runs.

A node is its data directory (node.toml, the node key, the TLS pair, the agreement in force and
the agreements it ratified before) and its database. The files are copied as they are; a SQLite
database is copied with SQLite's online backup (one read transaction, so the copy is the database
at one moment, while the node keeps writing), to OUT/node.db, and synced to disk. A PostgreSQL
database is the server's to back up (`pg_dump`): the copy then holds the files only, and says so.

OUT must be new or empty, and is made readable by its owner only: it holds the node's private key.
If anything fails, what was written into OUT is removed again.

A copy restores the node exactly only if the node did nothing after it was taken (before an
upgrade or a move). Its log and its channels' sequence numbers stop where the copy was taken; the
peers witnessed and stored what the node did after it, so a node restored to an older state signs
a log its witnesses refuse as a fork and reuses sequence numbers the peers hold. `backup` reports
the log's size and the copy's time, so that an operator can tell how far a copy is behind.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, Unavailable
from detente.node.config import NODE_DB, load_config
from detente.node.database import node_engine, shown, sqlite_files

FILES = ("node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml")
KEPT_AGREEMENTS = "agreements"


@dataclass(frozen=True)
class BackedUp:
    """What `backup` wrote."""

    out: Path
    files: list[str]  # relative to `out`
    database: str | None  # NODE_DB for SQLite; None for PostgreSQL (the server's to back up)
    database_url: str  # shown without its password
    log_size: int | None  # entries in the copied log (None: PostgreSQL)
    taken: str


def backup(data: Path, out: Path) -> BackedUp:
    """Copy the node at `data` into the new or empty directory `out`; return what was written.

    Raises what `load_config` and `node_engine` raise, `Conflict` if `out` is not new or empty or is
    the data directory itself, `BadRequest` if a file cannot be read or written, and `Unavailable`
    if the database cannot be read. Leaves nothing in `out` when it raises.
    """
    config = load_config(data)
    node_engine(config).dispose()  # the same checks `serve` makes of the database named
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not a new or empty directory; a backup goes into one")
    if out == config.data.absolute() or config.data.absolute() in out.parents:
        raise Conflict(f"{out} is inside the node's data directory; put the backup elsewhere")
    made = not out.exists()
    written: list[Path] = []
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(out, 0o700)
        for name in FILES:
            written.append(_copy(config.data / name, out / name))
        kept = config.data / KEPT_AGREEMENTS
        if kept.is_dir():
            (out / KEPT_AGREEMENTS).mkdir()
            written.append(out / KEPT_AGREEMENTS)
            for path in sorted(kept.glob("*.toml")):
                written.append(_copy(path, out / KEPT_AGREEMENTS / path.name))
        taken = format_time(now())
        database, size = None, None
        files = sqlite_files(config.db)
        if files:
            written.append(out / NODE_DB)
            size = _copy_sqlite(files[0], out / NODE_DB)
            database = NODE_DB
    except BaseException:
        for path in reversed(written):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    names = [str(p.relative_to(out)) for p in written if p.is_file()]
    return BackedUp(out, names, database, shown(config.db), size, taken)


def _copy(source: Path, target: Path) -> Path:
    """Copy one file with its permissions. Raises `BadRequest` naming the file that failed."""
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        raise Invalid(f"{source} is missing: it is part of the node") from None
    except OSError as exc:
        raise BadRequest(f"cannot copy {source} to {target}: {exc.strerror or exc}") from exc
    return target


def _copy_sqlite(source: Path, target: Path) -> int:
    """Copy a live SQLite database with the online backup API; return its log size. Raises `Unavailable`."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # all pages in one step: one read transaction, one moment
                (size,) = dst.execute("SELECT count(*) FROM log").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
        descriptor = os.open(target, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot copy the database {source}: {exc}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot write {target}: {exc.strerror or exc}") from exc
    return int(size)
