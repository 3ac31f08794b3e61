"""A node's data directory and its configuration file.

DIR/node.toml       party, listen address, database URL, public URL
DIR/node.key        the Ed25519 node key (PKCS#8 PEM, mode 0600)
DIR/tls.key tls.crt the self-signed TLS certificate the agreement pins by fingerprint
DIR/agreement.toml  the agreement in force (installed by `init` and `agreement ratify`)
DIR/node.db         the SQLite database (unless `db` names PostgreSQL)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.errors import BadRequest, NotFound
from detente.store.db import sqlite_url


@dataclass(frozen=True)
class NodeConfig:
    """What `detente init` wrote into DIR/node.toml."""

    data: Path
    party: str
    host: str
    port: int
    db: str

    @property
    def key_path(self) -> Path:
        return self.data / "node.key"

    @property
    def cert_path(self) -> Path:
        return self.data / "tls.crt"

    @property
    def tls_key_path(self) -> Path:
        return self.data / "tls.key"

    @property
    def agreement_path(self) -> Path:
        return self.data / "agreement.toml"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def key_name(self) -> str:
        return f"{self.party}.detente/log"

    def signer(self) -> Signer:
        """Load the node key."""
        return Signer.from_pem(self.key_name, self.key_path.read_bytes())

    def agreement(self) -> Agreement:
        """Load and validate the agreement in force (its vocabulary too). Raises `Invalid`."""
        doc = agreement_mod.load(self.agreement_path.read_text(encoding="utf-8"))
        notifications.check_agreement(doc)
        return doc


def write_config(data: Path, party: str, host: str, port: int, db: str | None) -> NodeConfig:
    """Write DIR/node.toml and return the configuration."""
    db_url = db or sqlite_url(data / "node.db")
    text = f'party = "{party}"\nhost = "{host}"\nport = {port}\ndb = "{db_url}"\n'
    (data / "node.toml").write_text(text, encoding="utf-8")
    return NodeConfig(data, party, host, port, db_url)


def load_config(data: Path) -> NodeConfig:
    """Read DIR/node.toml. Raises `NotFound` if DIR is not a node's data directory."""
    path = data / "node.toml"
    if not path.exists():
        raise NotFound(f"{data} is not a node data directory (run `detente init` first)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return NodeConfig(data, str(raw["party"]), str(raw["host"]), int(raw["port"]), str(raw["db"]))
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise BadRequest(f"{path} is damaged: {exc}") from exc
