"""`detente restore`: a copy `detente backup` made, put back into a node's data directory.

`restore` puts such a copy back into DIR, with no node serving from it (it holds DIR/serve.lock
meanwhile): only a backup of the same node (party and node key, across key rotations:
`keyring.same_node`), or into an empty or new DIR. No key is lost: a key of DIR that the backup
would overwrite with another (a copy taken before a rotation) is kept in DIR/retired-keys/.
Everything is checked before anything is replaced: every file is there, and the database copy
opens and passes `PRAGMA integrity_check`. Each file is written under a temporary name, synced
and renamed over the old one. The SQLite files the old database left beside it (-wal, -shm,
-journal) are removed first: SQLite would otherwise apply them to the restored file, which
corrupts it or silently brings back the newer state. A PostgreSQL database is never touched.

Evidence files go back into DIR/evidence/ the same way, each checked against its name as it is
staged (one DIR holds with the right bytes is kept). Every file the restored database lists as
stored must then be there: one the backup lacks (an earlier release's has no evidence/) or holds
damaged, with no sound copy in DIR, makes the restore refuse, naming it, unless the loss is
accepted; it is then `missing` in the restored database, fetched again from a peer
(`node.restore_evidence`). A PostgreSQL node's list is in the dump, which restore does not read:
only a file damaged in the backup is known lost, and the node itself marks what its database
lists but DIR lacks when it starts (`node.evidence.mark_absent`). The database is written 0600
and a new or empty DIR made 0700, as `init` makes them.

Why a copy restores the node exactly only if the node did nothing after it was taken: `node.backup`.
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

from detente.errors import BadRequest, Conflict, Invalid, NotFound
from detente.node import keyring
from detente.node.backup import FILES, KEPT_AGREEMENTS, stored_evidence, within
from detente.node.config import NODE_DB, RETIRED_KEYS, NodeConfig, absolute, load_config, sync, toml_string
from detente.node.database import node_engine, shown, sqlite_files
from detente.node.evidence import DIRECTORY as EVIDENCE
from detente.node.restore_evidence import (
    PG_LOST,
    STAGED,
    Staged,
    holders,
    lost_evidence,
    make_directory,
    mark_lost,
    private,
    refusal,
    stage_evidence,
)
from detente.node.serving import LOCK_NAME, running
from detente.store.db import sqlite_url


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
    kept: list[str]  # keys of DIR the backup would have overwritten with others, kept in retired-keys/
    evidence: int  # evidence files DIR holds of the backup's and of those the database lists, each SHA-256 checked
    put_back: int  # of which copied from the backup (the others DIR held already)
    lost: dict[str, str]  # a file the database lists as stored that neither had sound -> what was done (accepted)
    damaged: list[str]  # files damaged in the backup that the database does not list: not put back
    backup_evidence: bool  # the backup has evidence/ (one of an earlier release has none)


def restore(data: Path, source: Path, *, accept_lost_evidence: bool = False) -> Restored:
    """Put the backup in `source` back into the data directory `data` (made if new); return what was restored.

    Raises `NotFound` if `source` is not a directory; `Conflict` if a node serves from `data`, if
    `data` is another node (party, or node key across rotations) or a directory of other files, or if `source` is
    inside `data`; `Invalid` if `source` is not a complete backup (a file missing, a database of
    another kind than the node's, or one that does not open, fails the integrity check or holds no
    log); `Invalid` too, unless `accept_lost_evidence`, if an evidence file the database lists as
    stored is neither in the backup nor in `data` with the right bytes; what `load_config`,
    `NodeConfig.signer` and `node_engine` raise for either directory; and `BadRequest` if a file
    cannot be read or written. `data` is as it was when it raises, unless renaming the checked
    files into place itself fails.
    """
    data, source = absolute(data), absolute(source)
    if not source.is_dir():
        raise NotFound(f"{source} is not a directory: give the directory `detente backup` wrote")
    if within(source, data):
        raise Conflict(f"{source} is inside {data}: restore from a backup kept elsewhere")
    if data.exists() and not data.is_dir():
        raise Conflict(f"{data} is not a directory: restore into a node's data directory or a new one")
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise Invalid(f"{source} is not a complete backup of a node: it has no {', '.join(missing)}")
    copy = load_config(source)
    if sqlite_files(copy.db) and not (source / NODE_DB).is_file():
        raise Invalid(f"{source} is not a complete backup of a node: it has no {NODE_DB} (the node's is SQLite)")
    copy.signer()  # a backup whose key is missing or unusable cannot restore the node
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
            return _put_back(data, source, copy, _target_database(data, copy), accept_lost_evidence)
    except BaseException:
        if made:
            shutil.rmtree(data, ignore_errors=True)
        raise


@contextmanager
def _held(data: Path) -> Iterator[None]:
    """Hold DIR/serve.lock, as `serve` does, so that no node starts from DIR while its files are replaced.

    A lock file it made is removed again if the restore raises. Raises `Conflict` if a node serves
    from DIR, `BadRequest` if the lock file cannot be created.
    """
    path = data / LOCK_NAME
    made = not path.exists()
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
        try:
            yield
        except BaseException:
            if made:  # a refusal changes nothing, so it leaves no lock file either; unlinked while held
                path.unlink(missing_ok=True)
            raise
    finally:
        os.close(descriptor)


def _target_database(data: Path, copy: NodeConfig) -> str:
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
    # The same key, or one retired by a rotation on either side; a node that lost or damaged its
    # key is taken to be the backup's, whose key the restore brings back.
    if not keyring.same_node(data, copy.data):
        raise Conflict(
            f"{copy.data} is a backup of another node {copy.party} (its node key is neither the one in {data} nor "
            "one a key rotation retired on either side): restore a node from its own backups"
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


def _put_back(data: Path, source: Path, copy: NodeConfig, target: str, accept: bool) -> Restored:
    """Check and write every file under a temporary name, then remove the stale SQLite files and rename.

    Raises `Invalid` for a database that cannot be restored or evidence it would lose (unless
    `accept`), and `BadRequest` if a file cannot be read or written; removes what it staged when it
    raises.
    """
    staged: Staged = []
    fresh = not (data / "node.toml").exists()
    made: list[Path] = []  # directories made for the agreements and keys, removed again if left empty
    kept_keys = keyring.displaced(data, source, copy.key_name)
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
            make_directory(data / KEPT_AGREEMENTS, None, made)
            for path in sorted(kept.glob("*.toml")):
                final = data / KEPT_AGREEMENTS / path.name
                staged.append((_stage(final, path, _mode(path)), final))
        # The backup's next and retired keys, and each key of DIR it would overwrite with another.
        keys: list[tuple[Path, Path | bytes]] = [(key, source / key) for key in keyring.key_files(source)]
        for key, key_content in [*keys, *kept_keys]:
            if key.parent == Path(RETIRED_KEYS):
                make_directory(data / RETIRED_KEYS, 0o700, made)
            staged.append((_stage(data / key, key_content, 0o600), data / key))
        first = len(staged)
        on_hand, damaged = stage_evidence(data / EVIDENCE, source / EVIDENCE, staged, made)
        put_back = len(staged) - first
        files = sqlite_files(target)
        database, size, removed, listed = None, None, [], None
        if files:  # staged last, so renamed last: every file it lists is in place before it
            database = files[0]
            # The node's own, as `init` leaves it: every message, and the hashes of passwords and tokens.
            staged.append((_stage(database, source / NODE_DB, 0o600), database))
            size = _check_database(staged[-1][0], source / NODE_DB)
            listed = stored_evidence(staged[-1][0])
        lost, here = lost_evidence(data, source, listed, on_hand, damaged)
        if lost and not accept:
            raise Invalid(refusal(source, data, lost, holders(staged[-1][0] if database else None, sorted(lost))))
        if lost and database is not None:
            lost = mark_lost(staged[-1][0], source, lost)
        elif lost:  # the server's database is not ours to mark: the node marks it when it starts
            lost = {sha256: f"{why}; not put back: {PG_LOST}" for sha256, why in lost.items()}
        if fresh:  # the node's own directory from now on, private as `init` makes it
            os.chmod(data, 0o700)
        # Removed before the rename: a -wal or -journal beside the restored file would be applied
        # to it on the next open (another database's pages: corruption, or the newer state back).
        for side in files[1:]:
            if side.exists():
                side.unlink()
                removed.append(side.name)
        for temporary, final in staged:
            os.replace(temporary, final)
        for directory in dict.fromkeys(final.parent for _, final in staged):
            sync(directory)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise BadRequest(f"cannot restore {source} into {data}: {where}{exc.strerror or exc}") from exc
    finally:
        for temporary, _ in staged:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        for directory in made:
            if not any(directory.iterdir()):
                directory.rmdir()
    names = [str(f.relative_to(data)) for _, f in staged if f != database and f.parent != data / EVIDENCE]
    kept_names = [str(name) for name, _ in kept_keys]
    rest = sorted(set(damaged) - set(lost))
    return Restored(data, source, names, database, shown(target), size, removed, kept_names,
                    len(on_hand | here), put_back, lost, rest, (source / EVIDENCE).is_dir())  # fmt: skip


def _mode(path: Path) -> int:
    """Return a file's permission bits. Raises `OSError`."""
    return stat.S_IMODE(path.stat().st_mode)


def _stage(final: Path, content: bytes | Path, mode: int) -> Path:
    """Write `content` (or the file it names) to .FINAL.restoring with `mode`, synced; return that path.

    Raises `OSError`.
    """
    temporary = final.with_name(f".{final.name}{STAGED}")
    temporary.unlink(missing_ok=True)  # left by a restore that was interrupted
    with open(temporary, "xb", opener=private) as file:
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
    sync(staged)
    return int(size)
