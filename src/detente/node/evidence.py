"""Evidence files: uploaded by operators, referenced by SHA-256 in envelopes, fetched by the peer.

    DATA/evidence/<sha256>    the file's bytes, written once (temporary file, fsync, rename)

An operator uploads a file (`POST /api/v1/evidence`); the node checks its size and that its bytes
look like the declared media type, stores it under its SHA-256 and records it in `evidence`. An
`action.report` (or `action.verify`, `action.dispute`) may then list it; the sending node refuses
an envelope that lists a file it does not hold. The receiving node stores the envelope at once,
records the file as `missing`, and `EvidenceFetcher` fetches it from the sender
(`GET /federation/v1/evidence/<sha256>`, a signed request), checks its hash and size, and stores
it. A file is served to the peer that exchanged an envelope referring to it and to the operators
who can see such an envelope (or who uploaded it). `detente backup` copies the files and `restore`
puts them back, each checked against its name; a file a restore could not bring back is `missing`
again, fetched from a peer as above or, with no peer to ask, uploaded again. So is a file the
database lists as stored that is absent or of another size when the node starts (`mark_absent`:
a PostgreSQL database restored by the server's tools, a lost disk), or whose bytes do not hash to
its name when it is served (`read_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from detente.core.envelope import Envelope
from detente.core.precedence import format_time, now
from detente.core.workflow_bodies import EVIDENCE_MEDIA_TYPES, MAX_EVIDENCE_BYTES
from detente.errors import Error, Invalid, NotFound, TooLarge, VerificationError
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.node.peers import PeerClient
from detente.store import evidence as db
from detente.store import workflow as workflow_db
from detente.store.db import read_connection

log = logging.getLogger("detente.evidence")
DIRECTORY = "evidence"  # DATA/evidence, and the same in a backup
EVIDENCE_TYPES = ("action.report", "action.verify", "action.dispute")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAGIC: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "image/png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "application/pdf": lambda b: b.startswith(b"%PDF-"),
    "video/mp4": lambda b: b[4:8] == b"ftyp",
    "text/plain": lambda b: _is_text(b),
}
RETRY_SECONDS = 2.0


def _is_text(data: bytes) -> bool:
    try:
        return "\x00" not in data.decode("utf-8")
    except UnicodeDecodeError:
        return False


def directory(ctx: NodeContext) -> Path:
    """Return the node's evidence directory."""
    return ctx.config.data / DIRECTORY


def is_name(name: str) -> bool:
    """Return whether `name` is an evidence file's name (a SHA-256), not a temporary file beside them."""
    return _SHA256.match(name) is not None


def file_sha256(path: Path) -> str | None:
    """Return the hex SHA-256 of a file's bytes, None if there is no such file. Raises `OSError`."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def path_of(ctx: NodeContext, sha256: str) -> Path:
    """Return where a file is kept. Raises `NotFound` for something that is not a SHA-256."""
    if not _SHA256.match(sha256):
        raise NotFound("evidence is named by its SHA-256: 64 lower-case hex digits")
    return directory(ctx) / sha256


def check_file(content: bytes, media_type: str) -> str:
    """Check a file's size and that it looks like `media_type`; return its hex SHA-256.

    Raises `TooLarge` past the limit and `Invalid` for an empty file, a media type evidence may
    not have, or bytes that are not of that type.
    """
    if len(content) > MAX_EVIDENCE_BYTES:
        raise TooLarge(f"evidence files are at most {MAX_EVIDENCE_BYTES} bytes; this one is {len(content)}")
    if not content:
        raise Invalid("the evidence file is empty", fields={"file": "empty"})
    if media_type not in EVIDENCE_MEDIA_TYPES:
        allowed = ", ".join(EVIDENCE_MEDIA_TYPES)
        raise Invalid(f"media type {media_type!r} is not allowed for evidence; allowed: {allowed}",
                      fields={"media_type": f"one of {allowed}"})  # fmt: skip
    if not _MAGIC[media_type](content):
        raise Invalid(f"the file's bytes are not {media_type}", fields={"file": f"not {media_type}"})
    return hashlib.sha256(content).hexdigest()


def write_file(ctx: NodeContext, sha256: str, content: bytes) -> None:
    """Write a file under its hash durably (temporary file, fsync, rename); idempotent."""
    target = path_of(ctx, sha256)
    # By hash, not size: a damaged file left there (a restore that could not replace it) is replaced.
    if file_sha256(target) == sha256:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
    with temp.open("wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(ctx: NodeContext, sha256: str) -> bytes:
    """Return a stored file's bytes, checked against its name; call it off the event loop.

    Raises `NotFound` if it is not on disk or its bytes do not hash to its name: such a file is
    marked `missing` then (one writer job, waited for), so that it is fetched again from a peer.
    """
    target = path_of(ctx, sha256)
    try:
        content = target.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"evidence {sha256} is not on this node") from None
    # The bytes are in memory anyway (20 MB at most: milliseconds to hash), so every file served is
    # checked here, which is what lets `mark_absent` check only sizes at each start.
    if hashlib.sha256(content).hexdigest() == sha256:
        return content
    why = "its bytes on this node's disk do not hash to its name"
    try:
        fate = ctx.writer.run_sync(_lost_job({sha256: why})).get(sha256, "")
    except Exception as exc:  # the database down, say: the file is still not served
        fate = f"not marked missing yet ({exc})"
    log.warning("evidence %s is damaged: %s; %s", sha256, why, fate)
    raise NotFound(f"evidence {sha256} is damaged on this node ({why}): {fate}")


async def mark_absent(ctx: NodeContext) -> dict[str, str]:
    """Mark `missing` each file the database lists as stored whose file is absent or of another size.

    For the node's start, before its fetcher: a PostgreSQL database restored by the server's own
    tools, or a disk that lost or truncated files, would otherwise leave rows saying `stored` whose
    file answers 404 and is never fetched again. Marked in one writer job, each named in a warning;
    returns what was done for each. Only existence and size are checked, a `stat` per file: hashing
    every file at each start would read the whole evidence set (gigabytes) before the node serves;
    bytes damaged at the same size are caught when the file is served (`read_file`). Raises what
    `Writer.run` and reading the database raise.
    """
    found = await asyncio.to_thread(_absent, ctx)
    if not found:
        return {}
    done = await ctx.writer.run(_lost_job(found))
    for sha256, fate in done.items():
        log.warning("evidence %s is listed as stored but %s: %s", sha256, found[sha256], fate)
    return done


def _absent(ctx: NodeContext) -> dict[str, str]:
    with read_connection(ctx.engine) as conn:
        sizes = db.stored_sizes(conn)
    found: dict[str, str] = {}
    for sha256, size in sizes.items():
        path = directory(ctx) / sha256
        try:
            held = path.stat()
        except FileNotFoundError:
            found[sha256] = f"{path} is not there"
            continue
        except OSError as exc:  # it cannot be served either
            found[sha256] = f"{path} cannot be read: {exc.strerror or exc}"
            continue
        if not path.is_file():
            found[sha256] = f"{path} is not a file"
        elif held.st_size != size:
            found[sha256] = f"{path} holds {held.st_size} bytes, not {size}"
    return found


def _lost_job(found: dict[str, str]) -> Callable[[Connection], dict[str, str]]:
    """Return the writer job marking each file still `stored` missing; it answers what happens to each."""

    def job(conn: Connection) -> dict[str, str]:
        done: dict[str, str] = {}
        for sha256, why in found.items():
            row = db.get(conn, sha256)
            if row is None or row["state"] != "stored":
                continue  # fetched, or marked, meanwhile
            peer = db.mark_lost(conn, sha256, f"lost on this node: {why}")
            done[sha256] = f"marked missing, fetched again from {peer}" if peer else (
                "marked missing; no peer has it: upload it again")  # fmt: skip
        return done

    return job


def clean_name(name: str | None) -> str:
    """Return a file name fit to record: no path, no control characters, at most 200 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or "evidence"


def upload_job(
    sha256: str, size: int, media_type: str, name: str, operator_id: str
) -> Callable[[Connection], dict[str, Any]]:
    """Return the writer job that records a file already written to disk; answers the evidence item."""

    def job(conn: Connection) -> dict[str, Any]:
        row = db.get(conn, sha256)
        at = format_time(now())
        if row is None:
            db.add(conn, sha256=sha256, media_type=media_type, size=size, name=name, state="stored",
                   uploaded_by=operator_id, created=at, stored_at=at)  # fmt: skip
        elif row["state"] != "stored":
            db.set_values(conn, sha256, state="stored", stored_at=at, last_error=None)
        item = {"sha256": sha256, "name": name, "media_type": media_type, "size": size}
        return {"evidence": item, "state": "stored", "duplicate": row is not None}

    return job


def items(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the evidence items a body lists (empty for types that carry none)."""
    listed = body.get("evidence") if kind in EVIDENCE_TYPES else None
    return [i for i in listed if isinstance(i, dict)] if isinstance(listed, list) else []


def require_stored(conn: Connection, kind: str, body: dict[str, Any]) -> None:
    """Refuse to send a body listing a file this node does not hold, or describes wrongly.

    Raises `Invalid` naming the item (`evidence.0.sha256`).
    """
    errors: dict[str, str] = {}
    for index, item in enumerate(items(kind, body)):
        row = db.get(conn, str(item.get("sha256")))
        where = f"evidence.{index}"
        if row is None or row["state"] != "stored":
            errors[f"{where}.sha256"] = "no such file on this node: upload it first (POST /api/v1/evidence)"
        elif row["size"] != item.get("size"):
            errors[f"{where}.size"] = f"the file is {row['size']} bytes, not {item.get('size')}"
        elif row["media_type"] != item.get("media_type"):
            errors[f"{where}.media_type"] = f"the file was uploaded as {row['media_type']}"
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)


def link_outgoing(conn: Connection, envelope: Envelope) -> None:
    """Record which files an envelope this node sent refers to."""
    for item in items(envelope.type, envelope.body):
        db.add_ref(conn, item["sha256"], envelope.id)


def note_incoming(conn: Connection, envelope: Envelope, peer: str) -> list[Event]:
    """Record the files a received envelope refers to; those not held here become `missing`."""
    events = []
    for item in items(envelope.type, envelope.body):
        sha256 = item["sha256"]
        db.add_ref(conn, sha256, envelope.id)
        if db.get(conn, sha256) is None:
            db.add(conn, sha256=sha256, media_type=item["media_type"], size=item["size"], state="missing",
                   name=clean_name(item.get("name")), peer=peer, created=format_time(now()))  # fmt: skip
            data = {"sha256": sha256, "state": "missing", "peer": peer, "envelope": envelope.id}
            events.append(Event("evidence", sha256, (envelope.recipient,), data))
    return events


def _may_read(conn: Connection, sha256: str, offices: set[str]) -> bool:
    referring = db.referring(conn, sha256)
    if any({r["from_office"], r["to_office"]} & offices for r in referring):
        return True
    # The readers of the action a report belongs to (the liaison offices that verify it) may read it too.
    actions = {r["ref"] for r in referring if r["type"] in EVIDENCE_TYPES and r["ref"]}
    return any(workflow_db.offices_of(conn, "action", a) & offices for a in actions)


def readable(conn: Connection, sha256: str, offices: list[str] | None, operator_id: str) -> Any:
    """Return the evidence row if the operator may read the file (None offices: any office).

    They may if they uploaded it, or one of their offices sent or received an envelope referring
    to it, or may read the action such an envelope belongs to. Raises `NotFound` if there is no
    such file for them, or it has not arrived yet.
    """
    row = db.get(conn, sha256)
    if row is not None and offices is not None and row["uploaded_by"] != operator_id:
        if not _may_read(conn, sha256, set(offices)):
            row = None
    if row is None:
        raise NotFound(f"no evidence {sha256} for your offices")
    if row["state"] != "stored" and row["peer"] is None:  # lost by a restore, and no peer ever had it
        raise NotFound(f"evidence {sha256} is not on this node ({row['last_error']}): upload it again")
    if row["state"] != "stored":
        raise NotFound(f"evidence {sha256} has not arrived from {row['peer']} yet")
    return row


def servable_to_peer(conn: Connection, sha256: str, peer: str) -> Any:
    """Return the evidence row if `peer` exchanged an envelope referring to it. Raises `NotFound`."""
    row = db.get(conn, sha256)
    if row is None or row["state"] != "stored" or not any(r["peer"] == peer for r in db.referring(conn, sha256)):
        raise NotFound(f"no evidence {sha256} for {peer}")
    return row


class EvidenceFetcher:
    """Fetches missing files from the peers that referred to them, until every one is stored."""

    def __init__(self, ctx: NodeContext, clients: dict[str, PeerClient]) -> None:
        self.ctx = ctx
        self.clients = clients

    async def run(self) -> None:
        """Fetch until cancelled: at once when a file goes missing, else every few seconds."""
        # Only evidence events: waking for every message and receipt cost 1.4% of a busy node's CPU.
        queue = self.ctx.bus.subscribe(frozenset({"evidence"}))
        try:
            while True:
                for peer, client in self.clients.items():
                    try:
                        await self.fetch_from(peer, client)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # this node's database down, say: tried again later (QA)
                        said = exc.detail if isinstance(exc, Error) else f"{type(exc).__name__}: {exc}"
                        log.warning("fetching evidence from %s failed: %s", peer, said.splitlines()[0])
                # asyncio.timeout, not wait_for: see `events.wait_set`.
                with contextlib.suppress(TimeoutError):
                    while True:
                        async with asyncio.timeout(RETRY_SECONDS):
                            event = await queue.get()
                        if event.kind == "evidence" and event.data.get("state") == "missing":
                            break
        finally:
            self.ctx.bus.unsubscribe(queue)

    async def fetch_from(self, peer: str, client: PeerClient) -> None:
        """Fetch every file missing from `peer` once; failures are counted and retried later."""
        rows = await asyncio.to_thread(self._missing, peer)
        for row in rows:
            sha256 = str(row["sha256"])
            try:
                content = await self._download(client, sha256, int(row["size"]))
                await asyncio.to_thread(write_file, self.ctx, sha256, content)
            except Error as exc:
                log.warning("evidence %s from %s: %s", sha256, peer, exc.detail)
                await self.ctx.writer.run(_failed_job(sha256, exc.diagnostics()))
                continue
            offices = await self.ctx.writer.run(_stored_job(sha256))
            data = {"sha256": sha256, "state": "stored", "peer": peer, "size": len(content)}
            self.ctx.bus.publish(Event("evidence", sha256, offices, data))

    def _missing(self, peer: str) -> list[Any]:
        with read_connection(self.ctx.engine) as conn:
            return db.missing(conn, peer)

    async def _download(self, client: PeerClient, sha256: str, size: int) -> bytes:
        response = await client.request("GET", f"/federation/v1/evidence/{sha256}")
        if response.status_code != 200:
            raise NotFound(f"the peer answered {response.status_code}: {response.text[:200]}")
        content = response.content
        if len(content) != size or hashlib.sha256(content).hexdigest() != sha256:
            raise VerificationError(f"the peer's file does not match its SHA-256 {sha256} and size {size}")
        return content


def _stored_job(sha256: str) -> Callable[[Connection], tuple[str, ...]]:
    def job(conn: Connection) -> tuple[str, ...]:
        db.set_values(conn, sha256, state="stored", stored_at=format_time(now()), last_error=None)
        return tuple(sorted({o for r in db.referring(conn, sha256) for o in (r["from_office"], r["to_office"])}))

    return job


def _failed_job(sha256: str, error: str) -> Callable[[Connection], None]:
    def job(conn: Connection) -> None:
        row = db.get(conn, sha256)
        if row is not None:
            db.set_values(conn, sha256, attempts=int(row["attempts"]) + 1, last_error=error[:500])

    return job
