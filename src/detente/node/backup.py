"""`detente backup`: a node's files and SQLite database, copied (`node.restore` puts them back).

A node is its data directory (node.toml, the node key, the next and retired node keys of a key
rotation, the TLS pair, the agreement in force and the agreements it ratified before) and its
database. `backup` copies the files as they are; a SQLite database is copied with SQLite's online
backup (one read transaction, so the copy is the database at one moment, while the node keeps
writing), to OUT/node.db, switched to a rollback journal so that it is one self-contained file (no
-wal or -shm beside it), and synced to disk. A PostgreSQL database is the server's to back up
(`pg_dump`): the copy then holds the files only, and says so. OUT must be new or empty, outside
the data directory (symlinks and `..` resolved), and is made readable by its owner only: it holds
the node's private keys. If anything fails, what was written into OUT is removed again.

The evidence files (DATA/evidence/<sha256>) are copied into OUT/evidence/ after the database, each
checked against its name as it is copied. A file is written under its name before its row says
`stored` and is never removed (`node.evidence`), so every file the database copy lists as stored is
on disk by the time the files are copied; one uploaded meanwhile is copied too, which is harmless.
For PostgreSQL the list is read from the server before the files are copied: a `pg_dump` taken
before `backup` lists no stored file the copy lacks. A file the list names that is missing from
the node or damaged there (its bytes do not hash to its name) is not copied, and `BackedUp.lost`
names it: the copy is written, the best one there is, and a restore refuses it unless the loss is
accepted. OUT/evidence/ is made even when empty: a backup without it is of an earlier release.

A copy restores the node exactly only if the node did nothing after it was taken (before an
upgrade or a move). Its log and its channels' sequence numbers stop where the copy was taken; the
peers witnessed and stored what the node did after it, so a node restored to an older state signs
a log its witnesses refuse as a fork and reuses sequence numbers the peers hold. `backup` reports
the log's size and the copy's time, so that an operator can tell how far a copy is behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, Unavailable
from detente.node import keyring
from detente.node.config import NODE_DB, NodeConfig, load_config, sync
from detente.node.database import node_database, node_engine, shown, sqlite_files
from detente.node.evidence import DIRECTORY as EVIDENCE
from detente.node.evidence import is_name
from detente.store import evidence as evidence_db
from detente.store.db import sqlite_url

FILES = ("node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml")
KEPT_AGREEMENTS = "agreements"
Opener = Callable[[str, int], int]  # `open(..., opener=)`


@dataclass(frozen=True)
class BackedUp:
    """What `backup` wrote."""

    out: Path
    files: list[str]  # relative to `out`
    database: str | None  # NODE_DB for SQLite; None for PostgreSQL (the server's to back up)
    database_url: str  # shown without its password
    log_size: int | None  # entries in the copied log (None: PostgreSQL)
    taken: str
    evidence: int  # evidence files copied into OUT/evidence, each checked against its SHA-256
    checked: str | None  # why the files were not checked against the database's list (None: they were)
    lost: dict[str, str]  # a file the database lists as stored but the copy lacks -> why


def backup(data: Path, out: Path) -> BackedUp:
    """Copy the node at `data` into the new or empty directory `out`; return what was written.

    Raises what `load_config` and `node_engine` raise, `Conflict` if `out` is not new or empty or is
    the data directory itself, `BadRequest` if a file cannot be read or written, `Unavailable` if
    the SQLite database cannot be read and `Invalid` if its copy's evidence cannot. Leaves nothing
    in `out` when it raises. An evidence file missing or damaged on the node does not raise: the
    copy is written without it and names it.
    """
    config = load_config(data)
    node_engine(config).dispose()  # the same checks `serve` makes of the database named
    out = out.absolute()
    # Resolved, so that neither `..` nor a symlink can lead back into the data directory.
    if within(out, config.data):
        raise Conflict(f"{out} is inside the node's data directory; put the backup elsewhere")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not a new or empty directory; a backup goes into one")
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
        for key in keyring.key_files(config.data):  # node.key.next, retired-keys/*.key
            if not (out / key).parent.exists():
                (out / key).parent.mkdir(mode=0o700)
                written.append((out / key).parent)
            written.append(_copy(config.data / key, out / key))
        taken = format_time(now())
        database, size = None, None
        files = sqlite_files(config.db)
        if files:
            written.append(out / NODE_DB)
            size = _copy_sqlite(files[0], out / NODE_DB)
            database = NODE_DB
            listed, checked = stored_evidence(out / NODE_DB), None
        else:
            listed, checked = _listed_by_server(config)
        written.append(out / EVIDENCE)
        copied, damaged = _copy_evidence(config.data / EVIDENCE, out / EVIDENCE)
        written.extend(out / EVIDENCE / name for name in copied)
    except BaseException:
        for path in reversed(written):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    names = [str(p.relative_to(out)) for p in written if p.is_file() and p.parent != out / EVIDENCE]
    lost = {sha256: damaged.get(sha256, "missing from the node") for sha256 in listed if sha256 not in copied}
    return BackedUp(out, names, database, shown(config.db), size, taken, len(copied), checked, lost)


def _copy(source: Path, target: Path) -> Path:
    """Copy one file with its permissions. Raises `BadRequest` naming the file that failed."""
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        raise Invalid(f"{source} is missing: it is part of the node") from None
    except OSError as exc:
        raise BadRequest(f"cannot copy {source} to {target}: {exc.strerror or exc}") from exc
    return target


def within(path: Path, directory: Path) -> bool:
    """Return whether `path` is `directory` or inside it, once both are resolved (symlinks, `..`)."""
    path, directory = path.resolve(), directory.resolve()
    return path == directory or directory in path.parents


def _copy_sqlite(source: Path, target: Path) -> int:
    """Copy a live SQLite database with the online backup API; return its log size. Raises `Unavailable`."""
    try:
        # Read-write (never created: mode=rw), so that on a stopped node the last connection to close
        # removes the -wal and -shm it opens the database with; read-only would leave them behind.
        src = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # all pages in one step: one read transaction, one moment
                (size,) = dst.execute("SELECT count(*) FROM log").fetchone()
                # The pages copied say WAL: a rollback journal makes the copy one file, which
                # opening it later (a check, a restore) never gives a -wal or -shm beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
        sync(target)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot copy the database {source}: {exc}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot write {target}: {exc.strerror or exc}") from exc
    return int(size)


def file_engine(db_file: Path) -> Engine:
    """Return a plain engine of a copied SQLite database file, one connection at a time (dispose of it)."""
    # Not `store.db.make_engine`, which switches the file to WAL: a copy stays one file, nothing beside it.
    return create_engine(sqlite_url(db_file), poolclass=NullPool)


def stored_evidence(db_file: Path) -> list[str]:
    """Return the evidence files a SQLite database file lists as stored. Raises `Invalid` if it cannot be read."""
    engine = file_engine(db_file)
    try:
        with engine.connect() as conn:
            return evidence_db.stored(conn)
    except SQLAlchemyError as exc:
        raise Invalid(f"cannot read the evidence {db_file} lists: {exc}") from exc
    finally:
        engine.dispose()


def _listed_by_server(config: NodeConfig) -> tuple[list[str], str | None]:
    """Return the files a PostgreSQL database lists as stored now, or none and why it could not be asked."""
    try:
        with node_database(config) as engine, engine.connect() as conn:
            return evidence_db.stored(conn), None
    except Unavailable as exc:  # the files are still worth copying: they are all copied
        return [], exc.detail


def _copy_evidence(source: Path, target: Path) -> tuple[list[str], dict[str, str]]:
    """Copy every evidence file of `source` into the new directory `target`, each synced and checked.

    Returns the names copied and, for each file whose bytes do not hash to its name, why it was
    not copied. Raises `BadRequest` if a file cannot be read or written.
    """
    target.mkdir(mode=0o700)
    copied: list[str] = []
    damaged: dict[str, str] = {}
    try:
        names = sorted(name for name in os.listdir(source) if is_name(name))
    except FileNotFoundError:
        names = []  # nothing uploaded or fetched yet
    except OSError as exc:
        raise BadRequest(f"cannot read {source}: {exc.strerror or exc}") from exc
    for name in names:
        if not (source / name).is_file():
            continue  # a directory of that name, a dangling link: no file this node wrote
        try:
            digest = copy_hashed(source / name, target / name)
        except OSError as exc:
            raise BadRequest(f"cannot copy {source / name} to {target}: {exc.strerror or exc}") from exc
        if digest == name:
            copied.append(name)
        else:
            (target / name).unlink()
            damaged[name] = "damaged on the node: its bytes do not hash to its name"
    sync(target)
    return copied, damaged


def copy_hashed(source: Path, target: Path, opener: Opener | None = None) -> str:
    """Copy a file to the new file `target` (its permissions too), synced; return the hex SHA-256 copied.

    The hash is of the bytes written, read once. Raises `OSError`.
    """
    digest = hashlib.sha256()
    with source.open("rb") as read:
        with open(target, "xb", opener=opener) as write:
            while chunk := read.read(1 << 20):
                digest.update(chunk)
                write.write(chunk)
            write.flush()
            os.fchmod(write.fileno(), stat.S_IMODE(os.fstat(read.fileno()).st_mode))
            os.fsync(write.fileno())
    return digest.hexdigest()
