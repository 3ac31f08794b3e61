"""The log over federation: tlog-witness `add-checkpoint`, the checkpoint, tlog-tiles and proofs.

    POST /federation/v1/add-checkpoint                 c2sp.org/tlog-witness (peers only)
    GET  /federation/v1/log/checkpoint                 newest checkpoint, with its cosignatures
    GET  /federation/v1/log/tile/<L>/<N>[.p/<W>]       c2sp.org/tlog-tiles hash tile
    GET  /federation/v1/log/tile/entries/<N>[.p/<W>]   c2sp.org/tlog-tiles entry bundle
    GET  /federation/v1/log/proof/inclusion?index=|hash=|id=…&size=…   {"index","size","proof"}
    POST /federation/v1/log/proof/inclusions {"size","indexes"}        {"size","proofs":[...]}
    GET  /federation/v1/log/proof/consistency?old=…&size=…             {"old","size","proof"}

`add-checkpoint` takes only requests signed by a peer node (`web.federation.authenticate`). The
read endpoints also serve an auditor of this node: `Authorization: Bearer <token>` of an operator
holding the `auditor` role. Tiles exist for the newest checkpoint's tree (and any older partial
tile of it); everything but the checkpoint is immutable and is served with a long cache lifetime.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection

from detente.core import envelope, merkle, tiles
from detente.core.checkpoint import MAX_SIZE
from detente.errors import BadRequest, Forbidden, MalformedError, NotFound, Unauthorized
from detente.node import checkpoints, witness
from detente.node.runtime import Node
from detente.store import messages as db
from detente.store import tlog
from detente.web.deps import NodeDep, operator_from_token
from detente.web.federation import authenticate

router = APIRouter(prefix="/federation/v1", tags=["federation"])
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
TEXT = "text/plain; charset=utf-8"


async def authenticate_reader(request: Request, node: Node) -> str:
    """Admit a signed peer request or an auditor's bearer token; return who it is.

    Raises `Unauthorized` without credentials and `Forbidden` for an operator who is no auditor.
    """
    if request.headers.get("detente-party"):
        party, _ = await authenticate(request, node)
        return party
    authorization = request.headers.get("authorization", "")
    if not authorization:
        raise Unauthorized("sign the request as a peer node, or send an auditor's 'Authorization: Bearer <token>'")
    operator = await operator_from_token(node, authorization)
    if not operator.has("auditor"):
        raise Forbidden("reading the log needs the auditor role")
    return f"operator:{operator.name}"


@router.post("/add-checkpoint")
async def add_checkpoint(request: Request, node: NodeDep) -> Response:
    """Cosign a peer's checkpoint if it is consistent with what this node cosigned before (tlog-witness)."""
    party, body = await authenticate(request, node)
    submission = witness.check_submission(node.ctx, party, body)
    answer = await node.run(witness.add_checkpoint_job(node.ctx, submission))
    if answer.alarm is not None:
        node.ctx.bus.publish(answer.alarm)
    if answer.status == 200 and node.record is not None:
        node.record.cosigned(submission.log_party)
    if answer.status == 422:
        content: dict[str, Any] = {"error": "VerificationError", "detail": answer.detail}
        if answer.alarm is not None:
            content["alarm"] = answer.alarm.id
        return JSONResponse(content, status_code=422)
    # Given as a header, not as `media_type`, so that no charset is appended to text/x.tlog.size.
    return Response(answer.body, status_code=answer.status, headers={"Content-Type": answer.media_type})


@router.get("/log/checkpoint")
async def get_checkpoint(request: Request, node: NodeDep) -> Response:
    """Return this node's newest checkpoint with every cosignature it holds for it."""
    await authenticate_reader(request, node)
    found = await node.aread(checkpoints.latest_cosigned_note)
    if found is None:
        raise NotFound("this node has not signed a checkpoint yet")
    return Response(found[1], media_type=TEXT, headers={"Cache-Control": "no-cache"})


def _published_size(conn: Connection) -> int:
    row = tlog.latest_checkpoint(conn)
    return 0 if row is None else int(row["size"])


@router.get("/log/tile/{path:path}")
async def get_tile(path: str, request: Request, node: NodeDep) -> Response:
    """Return a hash tile or an entry bundle of the newest checkpoint's tree (c2sp.org/tlog-tiles)."""
    reader = await authenticate_reader(request, node)
    try:
        level, n, width, is_entries = tiles.parse_tile_path("tile/" + path)
    except MalformedError as exc:
        raise NotFound("no such tile") from exc

    def read(conn: Connection) -> bytes:
        size = _published_size(conn)
        if tiles.tile_width(level, n, size) < width:
            raise NotFound("no such tile in the published tree")
        if is_entries:
            start = n * tiles.TILE_WIDTH
            leaves = db.read_leaves(conn, start, start + width)
            if not reader.startswith("operator:"):
                _only_its_own(reader, start, leaves)
            return tiles.entry_bundle(leaves)
        return tiles.read_tile(level, n, width, tlog.TableHashReader(conn))

    data: bytes = await node.aread(read)
    return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)


def _only_its_own(peer: str, start: int, leaves: list[bytes]) -> None:
    """Refuse a peer an entry bundle holding an envelope it did not exchange with this node.

    In a group of states a node's log also holds its messages with the others; a peer witnesses
    them by their hashes (the hash tiles, the proofs), and reads the envelopes of its own exchanges
    only. Between two parties every entry is one of the peer's. Raises `Forbidden`, naming them.
    """
    foreign = [start + i for i, leaf in enumerate(leaves) if peer not in _parties(leaf)]
    if foreign:
        shown = ", ".join(map(str, foreign[:5])) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise Forbidden(
            f"entries {shown} of this bundle were not exchanged with {peer}: a peer reads the entries of its "
            "own exchanges only; their hashes are in the hash tiles and the proofs"
        )


def _parties(leaf: bytes) -> tuple[str, str]:
    found = envelope.stored(leaf)
    return found.sender_party, found.recipient_party


def _leaf_index(conn: Connection, index: int | None, leaf_hash: str | None, envelope_id: str | None) -> int:
    """Find the log index asked for by index, leaf hash (base64 or hex) or envelope id. Raises NotFound."""
    if sum(x is not None for x in (index, leaf_hash, envelope_id)) != 1:
        raise BadRequest("give exactly one of index, hash and id")
    if index is not None:
        return index
    if envelope_id is not None:
        row = db.get_envelope(conn, envelope_id)
        if row is None:
            raise NotFound(f"no envelope {envelope_id} in this log")
        return int(row["log_index"])
    assert leaf_hash is not None
    try:
        wanted = bytes.fromhex(leaf_hash) if len(leaf_hash) == 64 else base64.b64decode(leaf_hash, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("hash must be 32 bytes in hex or base64") from exc
    found = tlog.leaf_index_of(conn, wanted)
    if found is None:
        raise NotFound("no entry with this leaf hash")
    return found


@router.get("/log/proof/inclusion")
async def inclusion_proof(
    request: Request,
    node: NodeDep,
    size: int = Query(ge=1, le=MAX_SIZE),
    index: int | None = Query(default=None, ge=0, le=MAX_SIZE),
    hash: str | None = Query(default=None, max_length=100),
    id: str | None = Query(default=None, max_length=36),
) -> dict[str, Any]:
    """Return the RFC 6962 inclusion proof of one entry in the tree of `size` (base64 hashes, leaf sibling first)."""
    await authenticate_reader(request, node)

    def read(conn: Connection) -> dict[str, Any]:
        if size > _published_size(conn):
            raise NotFound(f"no checkpoint of size {size} or larger yet")
        leaf = _leaf_index(conn, index, hash, id)
        if leaf >= size:
            raise NotFound(f"entry {leaf} is not in the tree of size {size}")
        proof = merkle.prove_inclusion(leaf, size, tlog.TableHashReader(conn))
        return {"index": leaf, "size": size, "proof": [base64.b64encode(p).decode() for p in proof]}

    result: dict[str, Any] = await node.aread(read)
    return result


MAX_PROOFS = 256


@router.post("/log/proof/inclusions")
async def inclusion_proofs(request: Request, node: NodeDep) -> JSONResponse:
    """Return the inclusion proofs of many entries in the tree of one size, in one answer.

    The body is `{"size": S, "indexes": [i, ...]}` (at most 256); the answer
    `{"size": S, "proofs": [{"index": i, "proof": [base64 hash, ...]}, ...]}` in the same order.
    A sender proving its deliveries asks once per batch instead of once per envelope.
    """
    await authenticate_reader(request, node)
    try:
        doc = json.loads(await request.body())
        size, indexes = doc["size"], doc["indexes"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise MalformedError('the body must be {"size": S, "indexes": [...]}') from exc
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE:
        raise BadRequest("size must be a positive integer")
    if not isinstance(indexes, list) or not 1 <= len(indexes) <= MAX_PROOFS:
        raise BadRequest(f"indexes must list 1 to {MAX_PROOFS} entries")
    if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < size for i in indexes):
        raise NotFound(f"every index must be an entry of the tree of size {size}")

    def read(conn: Connection) -> dict[str, Any]:
        if size > _published_size(conn):
            raise NotFound(f"no checkpoint of size {size} or larger yet")
        paths = merkle.prove_inclusions(indexes, size, tlog.TableHashReader(conn))  # one read for the batch
        proofs = [
            {"index": i, "proof": [base64.b64encode(p).decode() for p in path]}
            for i, path in zip(indexes, paths, strict=True)
        ]
        return {"size": size, "proofs": proofs}

    return JSONResponse(await node.aread(read))  # plain JSON already: no generic encoder


@router.get("/log/proof/consistency")
async def consistency_proof(
    request: Request,
    node: NodeDep,
    old: int = Query(ge=0, le=MAX_SIZE),
    size: int = Query(ge=0, le=MAX_SIZE),
) -> dict[str, Any]:
    """Return the RFC 6962 consistency proof from the tree of `old` to the tree of `size`."""
    await authenticate_reader(request, node)
    if old > size:
        raise BadRequest("old must not be larger than size")

    def read(conn: Connection) -> dict[str, Any]:
        if size > _published_size(conn):
            raise NotFound(f"no checkpoint of size {size} or larger yet")
        proof = merkle.prove_consistency(old, size, tlog.TableHashReader(conn))
        return {"old": old, "size": size, "proof": [base64.b64encode(p).decode() for p in proof]}

    result: dict[str, Any] = await node.aread(read)
    return result
