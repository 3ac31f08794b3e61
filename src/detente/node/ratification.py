"""Ratifying the agreement, replacing the one in force, and what `agreement show` reports.

A node federates under the agreement in DIR/agreement.toml once it has signed that agreement's
hash (its ratification, stored in its database); `serve` refuses to start otherwise. `ratify`:

- the first ratification (the node holds none, as after `init`): installs the completed agreement
  and signs it;
- the agreement in force again (the same hash): signs it again, which gives the same signature,
  and keeps the ratification stored, with its time (it finishes an interrupted key switch);
- any other agreement, once the node has ratified one, is an amendment of the agreement in force.
  It is refused unless `replace` is given, and refused while a node serves from DIR, with or
  without `replace`. A running node keeps the agreement it started with and seals every message
  under it, so the files would name one agreement while the node uses another, and what it sent
  meanwhile would be refused by peers that switched. Stopping first costs nothing: a new
  agreement takes effect only when the node starts. A replacement reports the agreement it
  replaced and the envelopes still waiting in the outbox, which were sealed under that one.

The ratification is signed with the key the agreement pins for this party: node.key, or for a key
rotation the next key (`detente key new`) or a retired one (going back). Once the ratification
is stored and the agreement installed, that key becomes node.key and the one it replaces is kept
in DIR/retired-keys/ (`keyring.switch`). A switch is refused while a node serves, like an amendment.

Before anything is written, `ratify` also checks that tls.crt is the certificate the agreement
pins for this party (as `serve` does: a fingerprint copied wrong would be ratified by every party
and found only when the node starts), and it warns, without refusing, when the url the agreement
gives for this party is not where the node listens (`serving.address_warnings`).

The agreement in force is the one the running node serves under; with no node running, the
installed one if this node ratified it, else the one it ratified last (someone edited
agreement.toml by hand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from detente.core import agreement as agreement_mod
from detente.core import notifications, wire
from detente.core.agreement import Agreement
from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Error, Invalid
from detente.node import keyring
from detente.node.config import NodeConfig, agreement_text, load_config
from detente.node.database import node_database
from detente.node.serving import Serving, address_warnings, check_pinned_certificate, running
from detente.store import messages as messages_db
from detente.store import operators as operators_db
from detente.store.db import read_connection, write_transaction


@dataclass(frozen=True)
class Ratified:
    """What `ratify` did."""

    agreement: Agreement
    party: str
    signature: str
    again: bool  # the agreement was in force already: nothing changed
    replaced: str | None = None  # the hash of the agreement in force before, when this replaced it
    queued: int = 0  # envelopes waiting for delivery when it was replaced, sealed under the old one
    logged: int = 0  # entries in the log when it was replaced: an audit needs the old agreement for them
    switched: keyring.Switched | None = None  # the node key it switched to, when the agreement pins another
    warnings: tuple[str, ...] = ()  # why peers may not reach this node at its url (`address_warnings`)


def ratify(data: Path, agreement_file: Path | None = None, *, replace: bool = False) -> Ratified:
    """Sign the agreement (installing `agreement_file` first, if given) and store the ratification.

    Signs with the key the agreement pins (`keyring.find`) and, if that is not node.key, makes it
    node.key once the ratification is stored (`keyring.switch`). Raises `Invalid` if the agreement
    is incomplete, pins no key this node holds or pins another TLS certificate than tls.crt,
    `NotFound` or `BadRequest` if tls.crt is missing or unreadable, `Conflict` if it would replace
    the agreement in force without `replace`, or while a node serves from `data`, or if it would
    switch keys while a node serves, what `load_config`, `agreement_text`, `node_database` and
    `keyring.find` raise, and `BadRequest` if a file cannot be written. The warnings of
    `address_warnings` are returned, never raised. Nothing is changed when it raises before the
    ratification is stored, except that the database's schema may have been brought up to date.
    """
    config = load_config(data)
    source = agreement_file or config.agreement_path
    text = agreement_text(source)
    doc = agreement_mod.load(text)
    notifications.check_agreement(doc)
    if config.party not in doc.parties:
        raise Invalid(f"the agreement names no party {config.party!r}")
    if not doc.is_complete():
        missing = [p.id for p in doc.parties.values() if not (p.url and p.vkey and p.tls_fingerprint)]
        raise Invalid(f"the agreement lacks the URL, vkey or TLS fingerprint of: {', '.join(missing)}")
    key = _pinned_key(config, doc)
    check_pinned_certificate(config, doc)
    warnings = tuple(address_warnings(config, doc))
    switching = key.path != config.key_path
    with node_database(config, migrated=True) as engine:
        with read_connection(engine) as conn:
            held = operators_db.ratified_by(conn, config.party)
            stored = operators_db.ratifications_of(conn, doc.hash).get(config.party)
            queued = messages_db.outbox_depth(conn)
            logged = messages_db.log_size(conn)
        current = _in_force(config, held)
        replaced = current if current is not None and current != doc.hash else None
        if replaced is not None:
            _check_replacement(config, source, doc, replaced, held[replaced], replace=replace)
        if switching:
            _check_stopped(config)
        signature = wire.ratify(doc, key.signer)
        _keep_copies(config, doc, text, replaced)
        # The agreement in force, ratified again, gives the signature stored (Ed25519 is
        # deterministic): that changes nothing, the time of the ratification included.
        if current != doc.hash or signature != stored:
            with write_transaction(engine) as conn:
                operators_db.save_ratification(conn, config.party, doc.hash, signature, format_time(now()))
    # The ratification is stored before the file changes: if writing the file fails, the installed
    # agreement stays in force, ratified as before.
    if agreement_file is not None:
        _install(config.agreement_path, text)
    # Last, so that the key in force changes only once the agreement that pins the new one is
    # ratified and installed; a failure here leaves node.key as it was, and `ratify` again retries.
    switched = keyring.switch(config, key) if switching else None
    if replaced is not None:
        return Ratified(
            doc, config.party, signature, again=False, replaced=replaced, queued=queued, logged=logged,
            switched=switched, warnings=warnings,
        )  # fmt: skip
    again = current == doc.hash and not switching
    return Ratified(doc, config.party, signature, again=again, switched=switched, warnings=warnings)


def _pinned_key(config: NodeConfig, doc: Agreement) -> keyring.KeyFile:
    """Return the key file holding the key the agreement pins for this node.

    Raises `Invalid` if none does, and what `keyring.find` raises.
    """
    pinned = doc.parties[config.party].vkey
    found = keyring.find(config, pinned)
    if found is None:
        raise Invalid(
            f"the agreement does not pin this node's key: it pins {pinned} for {config.party}, which neither "
            f"{config.key_path.name} nor a next or retired key of this node holds. Put the vkey `detente key show "
            f"--data {config.data}` prints in it, or for a new key (a rotation), the one `detente key new` makes"
        )
    return found


def _check_stopped(config: NodeConfig) -> None:
    """Refuse to switch the node key while a node serves from DIR. Raises `Conflict`."""
    serving = running(config.data)
    if serving is not None:
        pid = f" (pid {serving.pid})" if serving.pid else ""
        raise Conflict(
            f"the agreement pins another key than {config.key_path}, which the node serving from {config.data}{pid} "
            "signs with until it stops: stop it, ratify, then start it again"
        )


def _in_force(config: NodeConfig, held: dict[str, str]) -> str | None:
    """Return the hash of the agreement in force: the running node's, else the installed one if
    ratified, else the one ratified last."""
    serving = running(config.data)
    if serving is not None and serving.agreement in held:
        return serving.agreement
    try:
        installed: str | None = agreement_mod.load(agreement_text(config.agreement_path), strict=False).hash
    except Error:
        installed = None  # missing or damaged: the ratifications still say what was in force
    if installed in held:
        return installed
    return max(held, key=lambda h: held[h]) if held else None


def _check_replacement(
    config: NodeConfig, source: Path, doc: Agreement, current: str, ratified_at: str, *, replace: bool
) -> None:
    """Refuse to replace the agreement in force without `replace`, or while a node serves. Raises `Conflict`."""
    serving = running(config.data)
    who = f"the node serving from {config.data}" + (f" (pid {serving.pid})" if serving and serving.pid else "")
    if not replace:
        stop = f"; stop {who} first" if serving is not None else ""
        raise Conflict(
            f"{config.data} is under agreement {current[:12]}…, ratified {ratified_at}; {source} is another "
            f"agreement ({doc.hash[:12]}…). Replacing the agreement in force is an amendment: every peer must "
            f"ratify the same agreement, and this node serves under it only once started again. Give --replace "
            f"to replace it{stop}"
        )
    if serving is not None:
        raise Conflict(
            f"{who} serves under agreement {(serving.agreement or current)[:12]}… until it stops: stop it, "
            "ratify with --replace, then start it again"
        )


def _keep_copies(config: NodeConfig, doc: Agreement, text: str, replaced: str | None) -> None:
    """Keep a copy of the agreement ratified, and of the one it replaces, in DIR/agreements/.

    After an amendment the node still accepts, from a peer, the envelopes sealed under an earlier
    agreement it ratified (`NodeContext.sealed_under`), which needs that agreement's text. A node
    of an earlier release kept none: the installed agreement.toml is the replaced one's text, if
    its hash says so. Raises `BadRequest` if a copy cannot be written.
    """
    if replaced is not None and not config.kept_agreement_path(replaced).exists():
        try:
            installed = agreement_text(config.agreement_path)
            installed_hash: str | None = agreement_mod.load(installed, strict=False).hash
        except Error:
            installed_hash = None  # missing, unreadable or edited by hand: its envelopes are refused
        if installed_hash == replaced:
            _install(config.kept_agreement_path(replaced), installed)
    _install(config.kept_agreement_path(doc.hash), text)


def _install(path: Path, text: str) -> None:
    """Write an agreement file in one step (a new file renamed over the old), so that no reader
    ever meets half of it. Raises `BadRequest` if it cannot be written."""
    spare = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(exist_ok=True)
        spare.write_bytes(text.encode("utf-8"))
        os.replace(spare, path)
    except OSError as exc:
        spare.unlink(missing_ok=True)
        raise BadRequest(f"cannot write {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class AgreementStatus:
    """The installed agreement, whether this node ratified it, and who serves from its directory."""

    data: Path
    party: str
    agreement: Agreement
    ratified_at: str | None
    serving: Serving | None

    def lines(self) -> list[str]:
        """Return the lines `agreement show` prints about ratification and the running node."""
        data, party = self.data, self.party
        out = [
            f"ratified by this node ({party}) on {self.ratified_at}"
            if self.ratified_at
            else f"NOT ratified by this node ({party}): `detente serve` refuses to start until "
            f"`detente agreement ratify --data {data} --agreement COMPLETED.toml` (the agreement with every "
            "party's url, vkey and tls_fingerprint filled in; without --agreement, the installed one)"
        ]
        serving = self.serving
        if serving is None:
            out.append(f"no node serves from {data} now")
            return out
        who = f"the node serving from {data}" + (f" (pid {serving.pid})" if serving.pid else "")
        if serving.agreement is None:
            out.append(f"{who} has not said which agreement it serves under yet")
        elif serving.agreement == self.agreement.hash:
            out.append(f"{who} serves under this agreement")
        else:
            out.append(
                f"{who} serves under agreement {serving.agreement}: a restart is pending; "
                "it serves under this one once started again"
            )
        return out


def status(data: Path) -> AgreementStatus:
    """Return the installed agreement of the node in `data` and its standing.

    Raises what `load_config`, `NodeConfig.agreement` and `node_database` raise.
    """
    config = load_config(data)
    doc = config.agreement()
    with node_database(config) as engine, read_connection(engine) as conn:
        held = operators_db.ratified_by(conn, config.party)
    return AgreementStatus(data, config.party, doc, held.get(doc.hash), running(data))
