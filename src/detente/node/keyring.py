"""A node's key files: the key in force, the next key a rotation switches to, and the retired keys.

    DIR/node.key              the key in force: what the node signs with (`NodeConfig.signer`)
    DIR/node.key.next         made by `detente key new`, waiting for an amended agreement to pin it
    DIR/retired-keys/ID.key   a key that was in force before a rotation (ID: the key id in its vkey)

A key rotation is an amendment of the agreement (DESIGN.md §5). `key new` makes the next key and
prints its vkey for the amended agreement. `agreement ratify` signs with the key the agreement
pins, whichever file holds it (`find`), and once its ratification is stored switches (`switch`):
node.key's key is retired and the pinned key becomes node.key. A running node never reads node.key.next.

Retired keys are kept so that going back (ratifying the earlier agreement again, with --replace)
finds its key. An operator whose old key was compromised deletes retired-keys/ once every peer is
on the amended agreement.

Every key file is PKCS#8 PEM, mode 0600 from its creation (as `init` makes node.key), written under
a temporary name, synced, then renamed or linked into place: no reader meets half a key. `backup`
and `restore` carry the next and retired keys too (`key_files`, `same_node`, `displaced`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.errors import BadRequest, Conflict, Error, Invalid, MalformedError, NotFound
from detente.node.config import NEXT_KEY, RETIRED_KEYS, NodeConfig, load_config, sync

NODE_KEY = "node.key"


@dataclass(frozen=True)
class KeyFile:
    """A key file of this node and the key it holds."""

    path: Path
    signer: Signer

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()


def load(path: Path, name: str) -> Signer:
    """Load the key in a key file under the note name `name`.

    Raises `NotFound` if the file is missing, `BadRequest` if it cannot be read or holds no Ed25519 key.
    """
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path} is missing") from None
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return Signer.from_pem(name, pem)
    except MalformedError as exc:
        raise BadRequest(f"{path} is damaged: {exc.detail}") from exc


def next_key(config: NodeConfig) -> KeyFile | None:
    """Return the next key (DIR/node.key.next), or None if there is none. Raises `BadRequest` if it is unusable."""
    try:
        return KeyFile(config.next_key_path, load(config.next_key_path, config.key_name))
    except NotFound:
        return None


def retired_keys(config: NodeConfig) -> list[KeyFile]:
    """Return the retired keys in the order of their file names. Raises `BadRequest` if one is unusable."""
    return [KeyFile(path, load(path, config.key_name)) for path in _retired_paths(config.data)]


def _retired_paths(data: Path) -> list[Path]:
    # glob finds nothing in a directory that does not exist (no retired key yet).
    return sorted(path for path in (data / RETIRED_KEYS).glob("*.key") if path.is_file())


def find(config: NodeConfig, vkey: str) -> KeyFile | None:
    """Return the key file that holds the key `vkey` names: node.key, node.key.next or a retired key; None if none.

    node.key is looked at first, the others only if it is not the one. Raises what `NodeConfig.signer`
    raises, and `BadRequest` if the next key or a retired key is unusable (it could be the one sought).
    """
    current = KeyFile(config.key_path, config.signer())
    if current.vkey == vkey:
        return current
    waiting = next_key(config)
    others = ([waiting] if waiting is not None else []) + retired_keys(config)
    return next((key for key in others if key.vkey == vkey), None)


@dataclass(frozen=True)
class NewKey:
    """What `key new` made: the next key, and the vkey of the next key it replaced (--replace), if any."""

    key: KeyFile
    replaced: str | None


def new_key(data: Path, *, replace: bool = False) -> NewKey:
    """Make a new node key as DIR/node.key.next (mode 0600) and return it.

    Changes nothing the node uses: a running node never reads node.key.next. Raises what
    `load_config` raises, `Conflict` if a next key exists already and `replace` is not given, or
    if the installed agreement pins it (the file is then left as it was), and `BadRequest` if the
    key cannot be written.
    """
    config = load_config(data)
    path = config.next_key_path
    try:
        waiting = next_key(config)
        earlier = waiting.vkey if waiting is not None else None
    except BadRequest as exc:
        earlier = f"a damaged key ({exc.detail})"
    if earlier is not None and earlier == _pinned(config):
        # A switch that was interrupted: replacing the key would lose the one the agreement pins.
        raise Conflict(
            f"{path} holds the key the installed agreement pins for {config.party}, {earlier}: "
            f"`detente agreement ratify --data {config.data}` makes it node.key"
        )
    if earlier is not None and not replace:
        raise Conflict(
            f"{path} holds a next key already, {earlier}: put its vkey in the amended agreement, or give --replace "
            "to make another in its place (this node can then never ratify an agreement that pins the one replaced)"
        )
    signer = Signer.generate(config.key_name)
    _write(path, signer.to_pem(), replace=replace)
    return NewKey(KeyFile(path, signer), earlier)


@dataclass(frozen=True)
class Switched:
    """A key switch: the key now in force and the file it came from (gone now), the key it replaced and where
    that one is kept."""

    vkey: str
    source: Path
    retired_vkey: str
    retired: Path


def switch(config: NodeConfig, chosen: KeyFile) -> Switched:
    """Make `chosen` (the next key or a retired key) the key in force.

    node.key's key is kept in retired-keys/ first, then `chosen` is renamed over node.key: stopped
    anywhere, the old key is still in node.key or kept, and `ratify` again finishes the switch.
    Raises what `NodeConfig.signer` raises and `BadRequest` if a file cannot be written (node.key
    then holds the old key still).
    """
    current = config.signer()
    kept = retire(config, current)
    try:
        os.chmod(chosen.path, 0o600)
        os.replace(chosen.path, config.key_path)
        for directory in dict.fromkeys((config.data, chosen.path.parent)):
            sync(directory)
    except OSError as exc:
        raise BadRequest(f"cannot make {chosen.path} the node key {config.key_path}: {exc.strerror or exc}") from exc
    return Switched(chosen.vkey, chosen.path, current.verifier.vkey(), kept)


def retire(config: NodeConfig, signer: Signer) -> Path:
    """Keep `signer` in DIR/retired-keys/ (mode 0700) unless a retired key file holds it already; return that file.

    The file is named by the key id in its vkey (-2, -3, ... after it, should two keys share one).
    Raises `BadRequest` if it cannot be written.
    """
    directory = config.retired_keys_path
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask, and the directory may be older
    except OSError as exc:
        raise BadRequest(f"cannot create {directory}: {exc.strerror or exc}") from exc
    for path in _retired_paths(config.data):
        if _public(path) == signer.public:
            return path
    path = _free_name(directory, signer.verifier.key_id.hex(), set())
    _write(path, signer.to_pem(), replace=False)
    return path


def _free_name(directory: Path, stem: str, taken: set[str]) -> Path:
    """Return DIRECTORY/STEM.key, or STEM-2.key, STEM-3.key, ... if that name is in use or in `taken`."""
    path, count = directory / f"{stem}.key", 1
    while path.exists() or path.name in taken:
        count += 1
        path = directory / f"{stem}-{count}.key"
    return path


def _write(path: Path, pem: bytes, *, replace: bool) -> None:
    """Write a key file: a new file, mode 0600 from its creation and synced, renamed over `path` if
    `replace`, else linked to it, which never overwrites a key.

    Raises `Conflict` if `path` exists and not `replace`, `BadRequest` if it cannot be written.
    """
    spare = path.with_name(f".{path.name}.new")
    try:
        spare.unlink(missing_ok=True)  # left by a write that was interrupted
        descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(spare, path)
        else:
            os.link(spare, path)
        sync(path.parent)
    except FileExistsError:
        raise Conflict(f"{path} exists already: another command wrote it meanwhile") from None
    except OSError as exc:
        raise BadRequest(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            spare.unlink(missing_ok=True)


def _pinned(config: NodeConfig) -> str | None:
    """Return the vkey the installed agreement pins for this node, or None if it pins none or cannot be read."""
    try:
        parties = config.agreement().parties
    except Error:
        return None
    return parties[config.party].vkey if config.party in parties else None


def _public(path: Path) -> bytes | None:
    """Return the public key in a key file, or None if it is missing or unusable."""
    try:
        return load(path, "key").public  # the note name plays no part in the public key
    except Error:
        return None


def check_in_force(config: NodeConfig, agreement: Agreement, signer: Signer) -> None:
    """Refuse to serve with a node key that is not the one the agreement pins for this party.

    Peers would refuse everything it signs. Raises `Invalid` naming the key the agreement pins and
    the file of this node that holds it, if one does. An agreement that pins no key yet is left to
    `Node.check_ready`.
    """
    pinned = agreement.parties[config.party].vkey
    if not pinned or signer.verifier.vkey() == pinned:
        return
    holder = next(
        (
            path
            for path in (config.next_key_path, *_retired_paths(config.data))
            if _vkey(path, config.key_name) == pinned
        ),
        None,
    )
    if holder is not None:
        how = (
            f"{holder.relative_to(config.data)} holds it: `detente agreement ratify --data {config.data}` "
            "makes it node.key"
        )
    else:
        how = "no key file of this node holds it: restore node.key from a backup of this node"
    raise Invalid(f"{config.key_path} is not the key the agreement pins for {config.party} ({pinned}); {how}")


def _vkey(path: Path, name: str) -> str | None:
    try:
        return load(path, name).verifier.vkey()
    except Error:
        return None


@dataclass(frozen=True)
class KeyStatus:
    """What `key show` prints: the key in force, the installed agreement's pin, the next and retired keys."""

    config: NodeConfig
    current: KeyFile
    next: KeyFile | None
    retired: list[KeyFile]
    agreement: Agreement | None
    agreement_error: str | None  # why the installed agreement cannot be read
    unusable: tuple[str, ...] = ()  # a next or retired key file that cannot be read: why

    def lines(self) -> list[str]:
        """Return the lines `key show` prints."""
        config, party = self.config, self.config.party
        out = [f"key in force   {self.current.vkey}  ({NODE_KEY})"]
        if self.agreement is None:
            out.append(f"agreement      cannot be read: {self.agreement_error}")
        else:
            named = f"agreement      {self.agreement.id} {self.agreement.hash[:12]}…"
            pinned = self.agreement.parties[party].vkey if party in self.agreement.parties else ""
            holder = next((k for k in (self.next, *self.retired) if k is not None and k.vkey == pinned), None)
            if not pinned:
                out.append(f"{named} pins no key for {party} yet")
            elif pinned == self.current.vkey:
                out.append(f"{named} pins this key for {party}")
            elif holder is not None:
                out.append(
                    f"{named} pins another key for {party}, {pinned}: {holder.path.relative_to(config.data)} holds "
                    f"it; `detente agreement ratify --data {config.data}` (node stopped) makes it node.key"
                )
            else:
                out.append(f"{named} pins another key for {party}, {pinned}, which no key file of this node holds")
        if self.next is None:
            out.append(f"next key       none (`detente key new --data {config.data}` makes one)")
        else:
            out.append(f"next key       {self.next.vkey}  ({NEXT_KEY}), for [parties.{party}] of an amended agreement")
        for key in self.retired:
            out.append(f"retired key    {key.vkey}  ({key.path.relative_to(config.data)})")
        if not self.retired:
            out.append("retired keys   none")
        out += [f"unusable key   {why}" for why in self.unusable]
        return out


def status(data: Path) -> KeyStatus:
    """Return the keys of the node in `data` and whether the installed agreement pins the one in force.

    Raises what `load_config` and `NodeConfig.signer` raise. An agreement that cannot be read, and
    a next or retired key file that cannot, are reported with the rest, not raised: `key show` is
    where a technician looks when something is wrong with the keys.
    """
    config = load_config(data)
    current = KeyFile(config.key_path, config.signer())
    try:
        agreement: Agreement | None = config.agreement()
        error = None
    except Error as exc:
        agreement, error = None, exc.detail
    unusable: list[str] = []
    try:
        upcoming = next_key(config)
    except Error as exc:
        upcoming = None
        unusable.append(exc.detail)
    retired = []
    for path in _retired_paths(config.data):
        try:
            retired.append(KeyFile(path, load(path, config.key_name)))
        except Error as exc:
            unusable.append(exc.detail)
    return KeyStatus(config, current, upcoming, retired, agreement, error, tuple(unusable))


# --- backup and restore ---------------------------------------------------------------------------


def key_files(data: Path) -> list[Path]:
    """Return the next and retired key files in the data directory (or backup) `data`, relative to it."""
    found = [Path(NEXT_KEY)] if (data / NEXT_KEY).is_file() else []
    return found + [path.relative_to(data) for path in _retired_paths(data)]


def same_node(data: Path, source: Path) -> bool:
    """Return whether the backup in `source` is of the node in `data`, across key rotations.

    It is if both node.keys hold the same key, if the backup's is retired here (it was taken
    before a rotation) or if this node's is retired in the backup (taken after one, and this node
    went back or was restored to before it). A node whose node.key is missing or unusable is taken
    to be the backup's: the backup brings its key back. Raises nothing.
    """
    own, theirs = _public(data / NODE_KEY), _public(source / NODE_KEY)
    if own is None or own == theirs:
        return True
    retired_here = {_public(path) for path in _retired_paths(data)}
    retired_there = {_public(path) for path in _retired_paths(source)}
    return (theirs is not None and theirs in retired_here) or own in retired_there


def displaced(data: Path, source: Path, name: str) -> list[tuple[Path, bytes]]:
    """Return (file relative to `data`, PEM) for each key of `data` that restoring `source` would overwrite with
    another key and keep nowhere else: where in retired-keys/ to keep it, so that a restore loses no key.

    `name` is the node key's note name (the key id names the file). Raises nothing: an unusable key file is left out.
    """
    written = [Path(NODE_KEY), *key_files(source)]
    kept_after = {_public(source / path) for path in written}
    kept_after |= {_public(data / path) for path in (Path(NODE_KEY), *key_files(data)) if path not in written}
    taken = {path.name for path in written if path.parent == Path(RETIRED_KEYS)}
    found: list[tuple[Path, bytes]] = []
    for path in (Path(NODE_KEY), *key_files(data)):
        if path not in written:
            continue
        try:
            signer = load(data / path, name)
        except Error:
            continue  # unusable: no key is lost by overwriting it
        if signer.public in kept_after:
            continue
        target = _free_name(data / RETIRED_KEYS, signer.verifier.key_id.hex(), taken)
        taken.add(target.name)
        kept_after.add(signer.public)
        found.append((target.relative_to(data), signer.to_pem()))
    return found
