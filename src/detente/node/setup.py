"""Setting up a node by hand: init, ratify, operators."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from detente.core import agreement as agreement_mod
from detente.core import notifications, wire
from detente.core.agreement import Agreement
from detente.core.envelope import uuid7
from detente.core.keys import Signer
from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, MalformedError, NotFound
from detente.node.auth import ROLES, hash_password, new_token, token_hash
from detente.node.config import NodeConfig, load_config, write_config
from detente.node.tls import make_certificate
from detente.store import operators as operators_db
from detente.store.db import make_engine, migrate, read_connection, write_transaction


def agreement_text(path: Path) -> str:
    """Return the text of an agreement file.

    Raises `BadRequest` if it cannot be read and `MalformedError` if it is not UTF-8 text.
    """
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{path} is not UTF-8 text (byte {exc.start}): an agreement is TOML") from None


@dataclass(frozen=True)
class InitResult:
    config: NodeConfig
    vkey: str
    fingerprint: str


def init_node(data: Path, party: str, agreement_file: Path, host: str, port: int, db: str | None) -> InitResult:
    """Create a node: key, TLS certificate, configuration, agreement copy and migrated database.

    Raises `Invalid` if the agreement does not name `party`, and `Conflict` if DIR already holds
    a node.
    """
    doc = agreement_mod.load(agreement_text(agreement_file))
    notifications.check_agreement(doc)
    if party not in doc.parties:
        raise Invalid(f"the agreement names no party {party!r} (it names {', '.join(doc.parties)})")
    if (data / "node.toml").exists() or (data / "node.key").exists():
        raise Conflict(f"{data} already holds a node; choose an empty directory")
    data.mkdir(parents=True, exist_ok=True)
    config = write_config(data, party, host, port, db)
    signer = Signer.generate(config.key_name)
    config.key_path.write_bytes(signer.to_pem())
    config.key_path.chmod(0o600)
    fingerprint = make_certificate(f"{party}.detente", host, config.cert_path, config.tls_key_path)
    shutil.copyfile(agreement_file, config.agreement_path)
    engine = make_engine(config.db)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return InitResult(config, signer.verifier.vkey(), fingerprint)


def ratify(data: Path, agreement_file: Path | None = None) -> tuple[Agreement, str]:
    """Sign the agreement (installing `agreement_file` first, if given) and store the ratification.

    Raises `Invalid` if the agreement is incomplete or does not pin this node's own key.
    """
    config = load_config(data)
    text = agreement_text(agreement_file or config.agreement_path)
    doc = agreement_mod.load(text)
    notifications.check_agreement(doc)
    if config.party not in doc.parties:
        raise Invalid(f"the agreement names no party {config.party!r}")
    if not doc.is_complete():
        missing = [p.id for p in doc.parties.values() if not (p.url and p.vkey and p.tls_fingerprint)]
        raise Invalid(f"the agreement lacks the URL, vkey or TLS fingerprint of: {', '.join(missing)}")
    signer = config.signer()
    if doc.parties[config.party].vkey != signer.verifier.vkey():
        raise Invalid("the agreement does not pin this node's key; put the vkey `detente init` printed in it")
    signature = wire.ratify(doc, signer)
    if agreement_file is not None:
        config.agreement_path.write_text(text, encoding="utf-8")
    engine = make_engine(config.db)
    try:
        migrate(engine)
        with write_transaction(engine) as conn:
            operators_db.save_ratification(conn, config.party, doc.hash, signature, format_time(now()))
    finally:
        engine.dispose()
    return doc, signature


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
    unknown office or role, an office of another party, `BadRequest` for a password under 8
    characters, and `Conflict` if the name is taken, also by a disabled operator or with other
    letter case (`pk-dgmo` and `PK-DGMO` would be two logins no one can tell apart).
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
    if password is not None and len(password) < 8:
        raise BadRequest("passwords are at least 8 characters")
    token = new_token()
    operator_id = uuid7()
    engine = make_engine(config.db)
    try:
        with write_transaction(engine) as conn:
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
    finally:
        engine.dispose()
    return NewOperator(operator_id, name, token, tuple(offices), tuple(roles))


def set_user_enabled(data: Path, name: str, enabled: bool) -> None:
    """Enable or disable an operator (API token and console login). Raises `NotFound` for an unknown name.

    A running node stops accepting a disabled operator's token within `web.deps.TOKEN_TTL` seconds
    and refuses its console session at the next request.
    """
    _change_user(data, name, lambda conn: operators_db.set_disabled(conn, name, not enabled))


def rotate_token(data: Path, name: str) -> str:
    """Give an operator a new API token and return it (shown once); the old one stops working.

    Raises `NotFound` for an unknown name.
    """
    token = new_token()
    _change_user(data, name, lambda conn: operators_db.set_token_hash(conn, name, token_hash(token)))
    return token


def _change_user(data: Path, name: str, change: Callable[[Connection], bool]) -> None:
    engine = make_engine(load_config(data).db)
    try:
        with write_transaction(engine) as conn:
            if not change(conn):
                raise NotFound(f"no operator called {name!r}")
    finally:
        engine.dispose()


def operators_json(data: Path) -> str:
    """Return the operators of a node as JSON (names, offices, roles; no secrets)."""
    config = load_config(data)
    engine = make_engine(config.db)
    try:
        with read_connection(engine) as conn:
            rows = operators_db.all_operators(conn)
    finally:
        engine.dispose()
    return json.dumps([{"name": o.name, "offices": o.offices, "roles": o.roles} for o in rows], indent=2)
