"""A node's data directory and its configuration file.

DIR/node.toml       party, listen address, database URL
DIR/node.key        the Ed25519 node key in force (PKCS#8 PEM, mode 0600)
DIR/node.key.next   the next node key, made by `detente key new` for a key rotation (`node.keyring`)
DIR/retired-keys/   the keys in force before a rotation, kept for going back (`node.keyring`)
DIR/tls.key tls.crt the self-signed TLS certificate the agreement pins by fingerprint
DIR/agreement.toml  the agreement in force (installed by `init` and `agreement ratify`)
DIR/node.db         the SQLite database (unless `db` names PostgreSQL or another file)
DIR/serve.lock      held by a running `detente serve`: its pid and agreement (`node.serving`)

`init` writes the SQLite database's absolute path into node.toml, so that every command finds it
from any working directory. Earlier releases wrote the data directory as it was typed, relative
to the directory `init` ran in (`sqlite:///adm/n1/node.db` for `--data adm/n1`); such a path is
read against the data directory (`_sqlite_file`), never against the current directory.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.errors import BadRequest, Error, MalformedError, NotFound
from detente.store.db import sqlite_url

NODE_DB = "node.db"
NEXT_KEY = "node.key.next"
RETIRED_KEYS = "retired-keys"
T = TypeVar("T")


def absolute(path: Path) -> Path:
    """Return `path` made absolute against the current directory, `..` removed, symlinks kept."""
    return Path(os.path.abspath(path))


def agreement_text(path: Path) -> str:
    """Return the text of an agreement file.

    Raises `NotFound` if it does not exist, `BadRequest` if it cannot be read and
    `MalformedError` if it is not UTF-8 text.
    """
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path} is missing: it holds the agreement (installed by `detente init`)") from None
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{path} is not UTF-8 text (byte {exc.start}): an agreement is TOML") from None


@dataclass(frozen=True)
class NodeConfig:
    """What `detente init` wrote into DIR/node.toml; `db` is ready for `store.db.make_engine`."""

    data: Path
    party: str
    host: str
    port: int
    db: str

    @property
    def key_path(self) -> Path:
        return self.data / "node.key"

    @property
    def next_key_path(self) -> Path:
        return self.data / NEXT_KEY

    @property
    def retired_keys_path(self) -> Path:
        return self.data / RETIRED_KEYS

    @property
    def cert_path(self) -> Path:
        return self.data / "tls.crt"

    @property
    def tls_key_path(self) -> Path:
        return self.data / "tls.key"

    @property
    def agreement_path(self) -> Path:
        return self.data / "agreement.toml"

    def kept_agreement_path(self, agreement_hash: str) -> Path:
        """Where `ratify` keeps a copy of an agreement this node ratified: DIR/agreements/<hash>.toml."""
        return self.data / "agreements" / f"{agreement_hash}.toml"

    def earlier_agreements(self, ratified: Iterable[str], in_force: str) -> dict[str, Agreement]:
        """Return hash -> agreement for each agreement in `ratified` but `in_force` whose copy is kept.

        A copy that is missing, unreadable or not the agreement its name says is left out: the
        envelopes sealed under it are then refused, as before amendments were kept. Raises nothing.
        """
        found: dict[str, Agreement] = {}
        for agreement_hash in sorted(set(ratified) - {in_force}):
            try:
                doc = agreement_mod.load(agreement_text(self.kept_agreement_path(agreement_hash)), strict=False)
            except Error:
                continue
            if doc.hash == agreement_hash:
                found[agreement_hash] = doc
        return found

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def key_name(self) -> str:
        return f"{self.party}.detente/log"

    def signer(self) -> Signer:
        """Load the node key. Raises `NotFound` if node.key is missing, `BadRequest` if it is unusable."""
        try:
            pem = self.key_path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.key_path} is missing: it holds the node key (made by `detente init`)") from None
        except OSError as exc:
            raise BadRequest(f"cannot read {self.key_path}: {exc.strerror or exc}") from exc
        try:
            return Signer.from_pem(self.key_name, pem)
        except MalformedError as exc:
            raise BadRequest(f"{self.key_path} is damaged: {exc.detail}") from exc

    def agreement(self) -> Agreement:
        """Load and validate the agreement in force (its vocabulary too).

        Raises what `agreement_text` raises (naming DIR/agreement.toml), `MalformedError` and `Invalid`.
        """
        doc = agreement_mod.load(agreement_text(self.agreement_path), strict=False)
        notifications.check_agreement(doc)
        return doc


def toml_string(value: str) -> str:
    """Return `value` as a TOML basic string (JSON's escapes are TOML's, except for DEL)."""
    return json.dumps(value).replace("\x7f", "\\u007f")


def write_config(data: Path, party: str, host: str, port: int, db_url: str) -> NodeConfig:
    """Write DIR/node.toml and return the configuration. Raises `OSError` if it cannot be written."""
    text = f"party = {toml_string(party)}\nhost = {toml_string(host)}\nport = {port}\ndb = {toml_string(db_url)}\n"
    (data / "node.toml").write_text(text, encoding="utf-8")
    return NodeConfig(data, party, host, port, db_url)


def load_config(data: Path) -> NodeConfig:
    """Read DIR/node.toml.

    Raises `NotFound` if DIR is not a node's data directory, and `BadRequest` naming the file and
    the setting if node.toml cannot be read, is not TOML, or lacks or mistypes a setting.
    """
    path = data / "node.toml"
    if not path.exists():
        raise NotFound(f"{data} is not a node data directory (run `detente init` first)")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise BadRequest(f"{path} is damaged: it is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"{path} is damaged: {exc}") from exc
    party = _setting(raw, "party", str, path)
    host = _setting(raw, "host", str, path)
    port = _setting(raw, "port", int, path)
    if not 0 < port < 65536:
        raise BadRequest(f"{path} is damaged: port must be 1-65535, not {port}")
    return NodeConfig(data, party, host, port, _database_url(_setting(raw, "db", str, path), data))


def _setting(raw: dict[str, object], key: str, kind: type[T], path: Path) -> T:
    if key not in raw:
        raise BadRequest(f"{path} is damaged: it has no {key!r} setting (node.toml sets party, host, port and db)")
    value = raw[key]
    # bool is an int to Python, not a port number to anyone.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(f"{path} is damaged: {key!r} must be a {'number' if kind is int else 'string'}")
    return value


def _database_url(url: str, data: Path) -> str:
    # Only a SQLite path can depend on the current directory; anything else is returned as written
    # and checked where the database is opened (`node.database`).
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    return sqlite_url(_sqlite_file(parsed.database, data))


def _sqlite_file(database: str, data: Path) -> Path:
    path = Path(database)
    if path.is_absolute():
        return path
    # A relative path comes from an earlier release's `init`: the data directory as typed, then
    # node.db, relative to a directory no later command knows. Read against the data directory
    # itself: the path as written if it names a file there, otherwise the file of that name in the
    # data directory, where `init` put it. `node.database` refuses the choice if both exist.
    written, beside = absolute(data / path), absolute(data / path.name)
    return beside if not written.exists() and beside.exists() else written


def sync(path: Path) -> None:
    """fsync a file or a directory (so that a rename or a new name in it survives a crash). Raises `OSError`."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
