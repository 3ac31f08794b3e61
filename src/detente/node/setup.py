"""Setting up a node by hand: init and operators (ratification: `node.ratification`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.envelope import uuid7
from detente.core.keys import Signer
from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, NotFound
from detente.node import database
from detente.node.auth import ROLES, check_new_password, hash_password, new_token, token_hash
from detente.node.config import NodeConfig, absolute, agreement_text, load_config, write_config
from detente.node.tls import make_certificate
from detente.store import operators as operators_db
from detente.store.db import make_engine, migrate, read_connection, write_transaction

__all__ = [
    "InitResult", "NewOperator", "add_user", "agreement_text", "init_node", "operators_json", "rotate_token",
    "set_user_enabled",
]  # fmt: skip


@dataclass(frozen=True)
class InitResult:
    config: NodeConfig
    vkey: str
    fingerprint: str


def init_node(data: Path, party: str, agreement_file: Path, host: str, port: int, db: str | None) -> InitResult:
    """Create a node: key, TLS certificate, configuration, agreement copy and migrated database.

    Everything that can be checked is checked before anything is written (the agreement, the
    directory, the database URL, a PostgreSQL server), and if a later step fails, all that this
    call created is removed again: a failed `init` leaves nothing behind.

    Raises what `agreement_text` and `agreement.load` raise, `Invalid` if the agreement does not
    name `party`, `BadRequest` if DIR is a file or cannot be written or the database URL is
    unusable, `Conflict` if DIR is not empty (a node or anything else) or the database is not new,
    and `Unavailable` if the database cannot be reached or migrated.
    """
    text = agreement_text(agreement_file)
    doc = agreement_mod.load(text)
    notifications.check_agreement(doc)
    if party not in doc.parties:
        raise Invalid(f"the agreement names no party {party!r} (it names {', '.join(doc.parties)})")
    # Absolute, so that node.toml names the same files from any working directory.
    data = absolute(data)
    _check_new_directory(data)
    db_url = database.init_url(db, data)
    database.check_new(db_url)
    made = _Made()
    try:
        made.directory(data)
        # The node's own: its database holds every message, and the hashes of passwords and tokens.
        data.chmod(0o700)
        made.files.append(data / "node.toml")
        config = write_config(data, party, host, port, db_url)
        signer = Signer.generate(config.key_name)
        made.files.append(config.key_path)
        config.key_path.touch(mode=0o600)  # never readable by others, not even for a moment
        config.key_path.write_bytes(signer.to_pem())
        made.files += [config.cert_path, config.tls_key_path]
        fingerprint = make_certificate(f"{party}.detente", host, config.cert_path, config.tls_key_path)
        made.files.append(config.agreement_path)
        # The text that was checked, not the file again: it may have changed meanwhile.
        config.agreement_path.write_bytes(text.encode("utf-8"))
        made.files += database.sqlite_files(db_url)
        engine = make_engine(db_url)
        try:
            with database.database_errors(db_url, "create"):
                migrate(engine)
        finally:
            engine.dispose()
        for path in database.sqlite_files(db_url):  # readable by the node's user alone, wherever it is
            if path.exists():
                path.chmod(0o600)
    except OSError as exc:
        made.undo()
        raise BadRequest(f"cannot create {exc.filename or data}: {exc.strerror or exc}") from exc
    except BaseException:  # Ctrl-C too: nothing half-made stays behind
        made.undo()
        raise
    return InitResult(config, signer.verifier.vkey(), fingerprint)


def _check_new_directory(data: Path) -> None:
    """Refuse anything but a new or empty directory. Raises `BadRequest` or `Conflict`."""
    if data.exists() and not data.is_dir():
        raise BadRequest(f"{data} is a file, not a directory; choose a new or empty directory")
    if not data.exists():
        return
    try:
        names = sorted(entry.name for entry in data.iterdir())
    except OSError as exc:
        raise BadRequest(f"cannot read {data}: {exc.strerror or exc}") from exc
    if "node.toml" in names or "node.key" in names:
        raise Conflict(f"{data} already holds a node; choose a new or empty directory")
    if names:
        listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise Conflict(f"{data} is not empty (it holds {listed}); choose a new or empty directory")


@dataclass
class _Made:
    """What `init_node` created, so that a failure removes exactly that."""

    directories: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def directory(self, path: Path) -> None:
        # Deepest first: the order they are removed in. Noted before `mkdir`, which may create
        # some of them and then fail.
        self.directories += [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True)

    def undo(self) -> None:
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for path in self.directories:
            with contextlib.suppress(OSError):  # not empty: something else wrote there meanwhile
                path.rmdir()


@dataclass(frozen=True)
class NewOperator:
    id: str
    name: str
    token: str
    offices: tuple[str, ...]
    roles: tuple[str, ...]


def add_user(
    data: Path, name: str, offices: list[str], roles: list[str], password: str | None, lang: str = "en"
) -> NewOperator:
    """Create an operator bound to `offices` with `roles`; return it with its API token (shown once).

    Repeated offices or roles count once (in the order first given). Raises `Invalid` for an
    unknown office or role, an office of another party, `BadRequest` for a password the console
    login would refuse (`auth.check_new_password`), `Conflict` if the name is taken, also by a
    disabled operator or with other letter case (`pk-dgmo` and `PK-DGMO` would be two logins no
    one can tell apart), and what `database.node_database` raises.
    """
    offices, roles = list(dict.fromkeys(offices)), list(dict.fromkeys(roles))
    config = load_config(data)
    doc = config.agreement()
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise Invalid("operator names are 1-64 letters, digits, '-', '_' or '.'")
    for role in roles:
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not roles:
        raise Invalid("give at least one role")
    for office in offices:
        if doc.office(office).party != config.party:
            raise Invalid(f"office {office} belongs to another party")
    if lang not in doc.languages:
        raise Invalid(f"language {lang!r} is not one of the agreement's")
    if password is not None:
        check_new_password(password)
    token = new_token()
    operator_id = uuid7()
    with database.node_database(config) as engine, write_transaction(engine) as conn:
        taken = operators_db.name_taken(conn, name)
        if taken == name:
            raise Conflict(f"an operator called {name!r} exists already")
        if taken is not None:
            raise Conflict(f"an operator called {taken!r} exists already; names may not differ only in case")
        operators_db.add_operator(
            conn, operator_id=operator_id, name=name, token_hash=token_hash(token),
            password_hash=hash_password(password) if password else None, roles=roles, offices=offices,
            lang=lang, created=format_time(now()),
        )  # fmt: skip
    return NewOperator(operator_id, name, token, tuple(offices), tuple(roles))


def set_user_enabled(data: Path, name: str, enabled: bool) -> None:
    """Enable or disable an operator (API token and console login). Raises `NotFound` for an unknown name.

    A running node stops accepting a disabled operator's token within `web.deps.TOKEN_TTL` seconds
    and refuses its console session at the next request.
    """
    _change_user(data, name, lambda conn: operators_db.set_disabled(conn, name, not enabled))


def set_password(data: Path, name: str, password: str) -> None:
    """Give an operator a new console password; their console sessions end with the old one.

    A session carries a fingerprint of the password hash it was opened with, and a running node
    compares it with the stored hash on every page, refresh and live update (the stream within
    `web.deps.TOKEN_TTL` seconds), so nothing else needs to reach the node. The API token is not
    changed (`rotate_token` does that). Raises `BadRequest` for an empty password or one the
    console login would refuse (`auth.check_new_password`), `NotFound` for an unknown name, and
    what `database.node_database` raises.
    """
    if not password:
        raise BadRequest("no password on standard input: give the new password as its first line")
    check_new_password(password)
    hashed = hash_password(password)
    _change_user(data, name, lambda conn: operators_db.set_password_hash(conn, name, hashed))


def rotate_token(data: Path, name: str) -> str:
    """Give an operator a new API token and return it (shown once); the old one stops working.

    Raises `NotFound` for an unknown name.
    """
    token = new_token()
    _change_user(data, name, lambda conn: operators_db.set_token_hash(conn, name, token_hash(token)))
    return token


def _change_user(data: Path, name: str, change: Callable[[Connection], bool]) -> None:
    with database.node_database(load_config(data)) as engine, write_transaction(engine) as conn:
        if not change(conn):
            raise NotFound(f"no operator called {name!r}")


def operators_json(data: Path) -> str:
    """Return the operators of a node as JSON (name, id, offices, roles, language, disabled; no secrets).

    Raises what `load_config` and `database.node_database` raise.
    """
    with database.node_database(load_config(data)) as engine, read_connection(engine) as conn:
        rows = operators_db.all_operators(conn)
        disabled = operators_db.disabled_names(conn)
    listed = [
        # The id is what an envelope's `author` names: an auditor maps it to a person with this list.
        {
            "name": o.name,
            "id": o.id,
            "offices": o.offices,
            "roles": o.roles,
            "lang": o.lang,
            "disabled": o.name in disabled,
        }  # fmt: skip
        for o in rows
    ]
    return json.dumps(listed, indent=2, ensure_ascii=False)
