"""The evidence files of `detente restore`: staged from the backup, checked, and a loss named or marked.

Each file of the backup's evidence/ that DIR does not hold with the right bytes is staged beside
its place (.NAME.restoring), checked against its name as it is copied; `node.restore` renames it
into place with the other files. Every file the restored SQLite database lists as stored must then
be held sound: one that neither the backup nor DIR has (an earlier release's backup has no
evidence/) is lost, and the restore refuses, naming each file and who can give it back (a peer
that holds it, or no one but the operator), unless the loss is accepted; it is then `missing` in
the staged database (`store.evidence.mark_lost`), fetched again from that peer. A PostgreSQL
node's list is in the dump, which a restore does not read: only a file damaged in the backup is
known lost, and the node marks what its database lists but the disk lacks when it starts
(`node.evidence.mark_absent`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from detente.errors import Invalid
from detente.node.backup import copy_hashed, file_engine
from detente.node.config import NODE_DB, sync
from detente.node.evidence import DIRECTORY as EVIDENCE
from detente.node.evidence import file_sha256, is_name
from detente.store import evidence as evidence_db

STAGED = ".restoring"  # a file is written under .NAME.restoring and synced, then renamed to NAME
Staged = list[tuple[Path, Path]]  # (temporary, final), in the order they are renamed
NO_PEER = "no peer has it: only you can give it back"
PG_LOST = (
    "if the PostgreSQL database lists it as stored, the node marks it missing when it starts and fetches it again "
    "from a peer that holds it"
)


def stage_evidence(directory: Path, backup: Path, staged: Staged, made: list[Path]) -> tuple[set[str], dict[str, str]]:
    """Stage each evidence file of the backup that DIR does not hold with the right bytes, checked as it is copied.

    Appends what it staged to `staged`; returns the names DIR holds sound once renamed, and why
    each other file of the backup is not put back. Raises `OSError`.
    """
    on_hand: set[str] = set()
    damaged: dict[str, str] = {}
    names = sorted(name for name in os.listdir(backup) if is_name(name)) if backup.is_dir() else []
    for name in names:
        final = directory / name
        if file_sha256(final) == name:  # a name is its bytes: DIR already holds this one
            on_hand.add(name)
            continue
        if not (backup / name).is_file():
            continue
        make_directory(directory, 0o700, made)
        temporary = final.with_name(f".{name}{STAGED}")
        temporary.unlink(missing_ok=True)  # left by a restore that was interrupted
        staged.append((temporary, final))  # before it is written: removed if anything fails
        if copy_hashed(backup / name, temporary, private) == name:
            on_hand.add(name)
        else:
            staged.pop()
            temporary.unlink()
            damaged[name] = "damaged in the backup (its bytes do not hash to its name)"
    return on_hand, damaged


def lost_evidence(
    data: Path, source: Path, listed: list[str] | None, on_hand: set[str], damaged: dict[str, str]
) -> tuple[dict[str, str], set[str]]:
    """Return the files `listed` as stored that DIR would not hold sound, and why; and those DIR holds already.

    `listed` None (PostgreSQL: the list is in the dump) counts every file damaged in the backup.
    Raises `OSError`.
    """
    if listed is None:
        return dict(damaged), set()
    directory = data / EVIDENCE
    earlier = "" if (source / EVIDENCE).is_dir() else " (an earlier release's, which copied no evidence)"
    lost: dict[str, str] = {}
    here: set[str] = set()
    for sha256 in listed:
        if sha256 in on_hand:
            continue
        held = file_sha256(directory / sha256)
        if held == sha256:
            here.add(sha256)
            continue
        why = damaged.get(sha256, f"not in the backup{earlier}")
        if held is not None:
            why += f", and {data} holds a damaged copy (its bytes hash to {held[:12]}…)"
        lost[sha256] = why
    return lost, here


def holders(staged: Path | None, hashes: list[str]) -> dict[str, str | None]:
    """Return the peer that holds each file (None: no peer ever had it), read from the staged database.

    Empty for PostgreSQL (`staged` None). Raises `Invalid` if the database cannot be read.
    """
    if staged is None:
        return {}
    engine = file_engine(staged)
    try:
        with engine.connect() as conn:
            return {sha256: evidence_db.holder(conn, sha256) for sha256 in hashes}
    except SQLAlchemyError as exc:
        raise Invalid(f"cannot read the evidence {staged} lists: {exc}") from exc
    finally:
        engine.dispose()


def refusal(source: Path, data: Path, lost: dict[str, str], peers: dict[str, str | None]) -> str:
    """Return why a restore that would lose evidence is refused: every file, why, and who can give it back.

    The files no peer has come first: only the operator can give them back.
    """

    def fate(sha256: str) -> str:
        if sha256 not in peers:  # PostgreSQL: the database that knows is the server's
            return "a peer that holds it gives it back to the node once it starts"
        peer = peers[sha256]
        return NO_PEER if peer is None else f"{peer} holds it, and gives it back once the loss is accepted"

    order = sorted(lost, key=lambda sha256: (sha256 not in peers or peers[sha256] is not None, sha256))
    named = "; ".join(f"{sha256} ({lost[sha256]}: {fate(sha256)})" for sha256 in order)
    files = "file" if len(lost) == 1 else "files"
    alone = sum(1 for sha256 in lost if sha256 in peers and peers[sha256] is None)
    only = f" ({alone} of them no peer has)" if alone else ""
    if not peers:  # PostgreSQL: the list is the server's, which restore does not read
        listed, then = "the database may list as stored", "the node marks each it lists missing when it starts"
    else:
        listed, then = "its database lists as stored", "the node then lists them as missing"
    return (
        f"{source} would lose {len(lost)} evidence {files}{only} {listed}, which {data} does not hold sound "
        f"either: {named}. Put each file into {source / EVIDENCE}/ if you still have it, or accept the loss with "
        f"--accept-lost-evidence: {then} and fetches each again from the peer that holds it; one no peer has is to "
        "be uploaded again"
    )


def mark_lost(staged: Path, source: Path, lost: dict[str, str]) -> dict[str, str]:
    """Mark each lost file `missing` in the staged database, synced; return what the node will do for each.

    Raises `Invalid` if the database cannot be written, `OSError` if it cannot be synced.
    """
    done: dict[str, str] = {}
    engine = file_engine(staged)
    try:
        with engine.begin() as conn:
            for sha256, why in lost.items():
                peer = evidence_db.mark_lost(conn, sha256, f"lost by the restore from {source}: {why}")
                fate = f"fetched again from {peer}" if peer else "no peer has it: upload it again"
                done[sha256] = f"{why}; marked missing, {fate}"
    except SQLAlchemyError as exc:
        raise Invalid(f"cannot mark the lost evidence in {source / NODE_DB}: {exc}") from exc
    finally:
        engine.dispose()
    sync(staged)
    return done


def make_directory(path: Path, mode: int | None, made: list[Path]) -> None:
    """Create a directory unless it exists (with `mode`, if given); note it in `made`. Raises `OSError`."""
    if not path.exists():
        path.mkdir()
        if mode is not None:
            os.chmod(path, mode)
        made.append(path)


def private(path: str, flags: int) -> int:
    """Open a new file readable by its owner only, until it is given its own permissions."""
    return os.open(path, flags, 0o600)
