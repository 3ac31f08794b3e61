"""`detente backup` and `detente restore`: a node's files and SQLite database, copied and put back.

A node is its data directory (node.toml, the node key, the TLS pair, the agreement in force and
the agreements it ratified before) and its database. `backup` copies the files as they are; a
SQLite database is copied with SQLite's online backup (one read transaction, so the copy is the
database at one moment, while the node keeps writing), to OUT/node.db, switched to a rollback
journal so that it is one self-contained file (no -wal or -shm beside it), and synced to disk. A
PostgreSQL database is the server's to back up (`pg_dump`): the copy then holds the files only,
and says so. OUT must be new or empty, outside the data directory (symlinks and `..` resolved),
and is made readable by its owner only: it holds the node's private key. If anything fails, what
was written into OUT is removed again.

`restore` puts such a copy back into DIR, with no node serving from it (it holds DIR/serve.lock
meanwhile): only a backup of the same node (party and node key), or into an empty or new DIR.
Everything is checked before anything is replaced: every file is there, and the database copy
opens and passes `PRAGMA integrity_check`. Each file is written under a temporary name, synced
and renamed over the old one. The SQLite files the old database left beside it (-wal, -shm,
-journal) are removed first: SQLite would otherwise apply them to the restored file, which
corrupts it or silently brings back the newer state. A PostgreSQL database is never touched.

A copy restores the node exactly only if the node did nothing after it was taken (before an
upgrade or a move). Its log and its channels' sequence numbers stop where the copy was taken; the
peers witnessed and stored what the node did after it, so a node restored to an older state signs
a log its witnesses refuse as a fork and reuses sequence numbers the peers hold. `backup` reports
the log's size and the copy's time, so that an operator can tell how far a copy is behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, NotFound, Unavailable
from detente.node.config import NODE_DB, NodeConfig, absolute, load_config, toml_string
from detente.node.database import node_engine, shown, sqlite_files
from detente.node.serving import LOCK_NAME, running
from detente.store.db import sqlite_url

FILES = ("node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml")
KEPT_AGREEMENTS = "agreements"
STAGED = ".restoring"  # a file is written under .NAME.restoring and synced, then renamed to NAME


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
    # Resolved, so that neither `..` nor a symlink can lead back into the data directory.
    if _within(out, config.data):
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


def _within(path: Path, directory: Path) -> bool:
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
        _sync(target)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot copy the database {source}: {exc}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot write {target}: {exc.strerror or exc}") from exc
    return int(size)


def _sync(path: Path) -> None:
    """fsync a file or a directory. Raises `OSError`."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class Restored:
    """What `restore` put back."""

    data: Path
    source: Path
    files: list[str]  # relative to `data`
    database: Path | None  # the SQLite file restored; None for PostgreSQL (the server's to restore)
    database_url: str  # shown without its password
    log_size: int | None  # entries in the restored log (None: PostgreSQL)
    removed: list[str]  # what the old SQLite database had left beside it, removed before the rename


def restore(data: Path, source: Path) -> Restored:
    """Put the backup in `source` back into the data directory `data` (made if new); return what was restored.

    Raises `NotFound` if `source` is not a directory; `Conflict` if a node serves from `data`, if
    `data` is another node (party or node key) or a directory of other files, or if `source` is
    inside `data`; `Invalid` if `source` is not a complete backup (a file missing, a database of
    another kind than the node's, or one that does not open, fails the integrity check or holds no
    log); what `load_config`, `NodeConfig.signer` and `node_engine` raise for either directory;
    and `BadRequest` if a file cannot be read or written. `data` is as it was when it raises,
    unless renaming the checked files into place itself fails.
    """
    data, source = absolute(data), absolute(source)
    if not source.is_dir():
        raise NotFound(f"{source} is not a directory: give the directory `detente backup` wrote")
    if _within(source, data):
        raise Conflict(f"{source} is inside {data}: restore from a backup kept elsewhere")
    if data.exists() and not data.is_dir():
        raise Conflict(f"{data} is not a directory: restore into a node's data directory or a new one")
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise Invalid(f"{source} is not a complete backup of a node: it has no {', '.join(missing)}")
    copy = load_config(source)
    if sqlite_files(copy.db) and not (source / NODE_DB).is_file():
        raise Invalid(f"{source} is not a complete backup of a node: it has no {NODE_DB} (the node's is SQLite)")
    key = copy.signer().public
    if data.is_dir() and not (data / "node.toml").exists():
        found = sorted(p.name for p in data.iterdir() if p.name != LOCK_NAME)
        if found:
            raise Conflict(
                f"{data} holds {', '.join(found[:3])}{', …' if len(found) > 3 else ''} but no node.toml: restore "
                "into this node's data directory or an empty one"
            )
    made = not data.exists()
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"cannot create {data}: {exc.strerror or exc}") from exc
    try:
        with _held(data):
            return _put_back(data, source, copy, _target_database(data, copy, key))
    except BaseException:
        if made:
            shutil.rmtree(data, ignore_errors=True)
        raise


@contextmanager
def _held(data: Path) -> Iterator[None]:
    """Hold DIR/serve.lock, as `serve` does, so that no node starts from DIR while its files are replaced.

    Raises `Conflict` if a node serves from DIR, `BadRequest` if the lock file cannot be created.
    """
    path = data / LOCK_NAME
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BadRequest(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        for attempt in range(2):
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                serving = running(data)
                if attempt == 0 and (serving is None or serving.pid is None):
                    time.sleep(0.2)  # another command looks at the lock for a moment, or a node is starting
                    continue
                pid = f" (pid {serving.pid})" if serving is not None and serving.pid else ""
                raise Conflict(
                    f"a node serves from {data}{pid}; stop it first: a restore replaces its files and database"
                ) from None
        yield
    finally:
        os.close(descriptor)


def _target_database(data: Path, copy: NodeConfig, key: bytes) -> str:
    """Return the database URL of the restored node: DIR's own, or for an empty DIR the backup's (SQLite: DIR/node.db).

    Raises `Conflict` if DIR is another node, `Invalid` if its database is of another kind than
    the backup's, and what `load_config` and `node_engine` raise for DIR.
    """
    if not (data / "node.toml").exists():  # `restore` has checked that DIR is empty
        return sqlite_url(data / NODE_DB) if sqlite_files(copy.db) else copy.db
    config = load_config(data)
    if config.party != copy.party:
        raise Conflict(
            f"{copy.data} is a backup of node {copy.party}, not of {config.party} in {data}: restore a node from "
            "its own backups"
        )
    try:
        own = config.signer().public
    except (NotFound, BadRequest):
        own = key  # the node lost or damaged its key: the backup brings it back
    if own != key:
        raise Conflict(
            f"{copy.data} is a backup of another node {copy.party} (its node key is not the one in {data}): restore "
            "a node from its own backups"
        )
    if bool(sqlite_files(config.db)) != bool(sqlite_files(copy.db)):
        kinds = ("SQLite" if sqlite_files(url) else "PostgreSQL" for url in (copy.db, config.db))
        raise Invalid(
            "{} was taken of the node on {}, and its database is {} now: restore from a backup taken since".format(
                copy.data, *kinds
            )
        )
    try:
        node_engine(config).dispose()  # the checks `serve` makes of the database named
    except NotFound:
        pass  # the database is lost: what a restore is for
    return config.db


def _put_back(data: Path, source: Path, copy: NodeConfig, target: str) -> Restored:
    """Check and write every file under a temporary name, then remove the stale SQLite files and rename.

    Raises `Invalid` for a database that cannot be restored and `BadRequest` if a file cannot be
    read or written; removes what it staged when it raises.
    """
    staged: list[tuple[Path, Path]] = []  # (temporary, final), in the order they are renamed
    made_kept = False
    try:
        for name in FILES:
            content: bytes | Path = source / name
            if name == "node.toml" and copy.db != target:
                # The backup names the database where it was; the restored node keeps using its own.
                text = f"party = {toml_string(copy.party)}\nhost = {toml_string(copy.host)}\nport = {copy.port}\n"
                content = (text + f"db = {toml_string(target)}\n").encode("utf-8")
            staged.append((_stage(data / name, content, _mode(source / name)), data / name))
        kept = source / KEPT_AGREEMENTS
        if kept.is_dir():
            if not (data / KEPT_AGREEMENTS).exists():
                (data / KEPT_AGREEMENTS).mkdir()
                made_kept = True
            for path in sorted(kept.glob("*.toml")):
                final = data / KEPT_AGREEMENTS / path.name
                staged.append((_stage(final, path, _mode(path)), final))
        files = sqlite_files(target)
        database, size, removed = None, None, []
        if files:
            database = files[0]
            mode = _mode(database if database.exists() else source / NODE_DB)
            staged.append((_stage(database, source / NODE_DB, mode), database))
            size = _check_database(staged[-1][0], source / NODE_DB)
            # Removed before the rename: a -wal or -journal beside the restored file would be applied
            # to it on the next open (another database's pages: corruption, or the newer state back).
            for side in files[1:]:
                if side.exists():
                    side.unlink()
                    removed.append(side.name)
        for temporary, final in staged:
            os.replace(temporary, final)
        for directory in dict.fromkeys(final.parent for _, final in staged):
            _sync(directory)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise BadRequest(f"cannot restore {source} into {data}: {where}{exc.strerror or exc}") from exc
    finally:
        for temporary, _ in staged:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        if made_kept and not any((data / KEPT_AGREEMENTS).iterdir()):
            (data / KEPT_AGREEMENTS).rmdir()
    names = [str(final.relative_to(data)) for _, final in staged if final != database]
    return Restored(data, source, names, database, shown(target), size, removed)


def _mode(path: Path) -> int:
    """Return a file's permission bits. Raises `OSError`."""
    return stat.S_IMODE(path.stat().st_mode)


def _private(path: str, flags: int) -> int:
    """Open a new file readable by its owner only, until `_stage` gives it its own permissions."""
    return os.open(path, flags, 0o600)


def _stage(final: Path, content: bytes | Path, mode: int) -> Path:
    """Write `content` (or the file it names) to .FINAL.restoring with `mode`, synced; return that path.

    Raises `OSError`.
    """
    temporary = final.with_name(f".{final.name}{STAGED}")
    temporary.unlink(missing_ok=True)  # left by a restore that was interrupted
    with open(temporary, "xb", opener=_private) as file:
        if isinstance(content, bytes):
            file.write(content)
        else:
            with content.open("rb") as read:
                shutil.copyfileobj(read, file, 1 << 20)
        file.flush()
        os.fchmod(file.fileno(), mode)
        os.fsync(file.fileno())
    return temporary


def _check_database(staged: Path, backup: Path) -> int:
    """Check the staged copy of the database: it opens, passes `PRAGMA integrity_check` and holds a log.

    Leaves it with a rollback journal (nothing beside it) and synced; returns the log's size.
    Raises `Invalid` naming `backup` if it cannot be restored, `OSError` if it cannot be synced.
    """
    try:
        db = sqlite3.connect(f"{staged.as_uri()}?mode=rw", uri=True)
        try:
            found = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
            if found != ["ok"]:
                raise Invalid(f"{backup} fails SQLite's integrity check ({found[0]}): it cannot be restored")
            try:
                (size,) = db.execute("SELECT count(*) FROM log").fetchone()
            except sqlite3.OperationalError:
                raise Invalid(f"{backup} is not a node's database: it has no log") from None
            db.execute("PRAGMA journal_mode=DELETE")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise Invalid(f"{backup} cannot be restored: {exc}") from exc
    _sync(staged)
    return int(size)
