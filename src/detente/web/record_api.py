"""The record in the operator API: alarms, the log's state, and offline proofs of messages.

    GET /api/v1/alarms                       fork and inclusion alarms, newest first, with evidence
    GET /api/v1/log                          own log: size, newest checkpoint, cosignatures, witness state
    GET /api/v1/messages/{id}/proof[?log=P]  a c2sp.org/tlog-proof@v1 bundle of the envelope in this
                                             node's log, or in peer P's log (checkpoint cosigned by us)

A proof bundle holds the leaf index, the inclusion proof, the checkpoint with its cosignatures and,
in its `extra` line, the envelope's bytes (canonical JSON, as logged): with the agreement's keys
anyone can check it offline (`detente log verify-proof`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Connection, RowMapping

from detente.core import merkle, merkle_verify
from detente.core.agreement import Agreement
from detente.core.checkpoint import format_proof_bundle
from detente.core.note import add_signatures, parse_note, parse_signature_lines
from detente.errors import Invalid, NotFound
from detente.node import auth, checkpoints
from detente.node.delivery_proofs import fetch_inclusion
from detente.store import messages as db
from detente.store import tlog
from detente.store.operators import Operator
from detente.web.deps import NodeDep, OperatorDep

router = APIRouter(prefix="/api/v1", tags=["record"])
PROOF_MEDIA_TYPE = "text/plain; charset=utf-8"


@router.get("/alarms")
async def list_alarms(
    node: NodeDep, operator: OperatorDep, limit: int = Query(default=100, ge=1, le=1000)
) -> dict[str, Any]:
    """List fork and inclusion alarms, newest first, each with evidence that stands on its own."""
    alarms = await node.aread(lambda conn: tlog.list_alarms(conn, limit))
    return {"alarms": alarms}


@router.get("/log")
async def log_state(node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return this node's log size, newest checkpoint and its cosignatures, and what it witnessed of each peer."""

    def read(conn: Connection) -> dict[str, Any]:
        latest = checkpoints.latest_cosigned_note(conn)
        peers = {}
        for party in node.ctx.agreement.peers(node.ctx.party):
            state = tlog.get_witness_state(conn, party.log_origin)
            peers[party.id] = {
                "origin": party.log_origin,
                "cosigned_size": None if state is None else int(state["size"]),
                "cosigned_root": None if state is None else base64.b64encode(bytes(state["root"])).decode(),
                "cosigned_at": None if state is None else state["updated_at"],
                "our_size_cosigned": tlog.last_cosigned_size(conn, party.id),
            }
        return {
            "origin": checkpoints.origin(node.ctx),
            "size": db.log_size(conn),
            "checkpoint": None if latest is None else {"size": latest[0], "note": latest[1].decode()},
            "peers": peers,
        }

    result: dict[str, Any] = await node.aread(read)
    if node.record is not None:
        for peer, status in node.record.status().items():
            result["peers"].setdefault(peer, {})["witnessing_error"] = status["last_error"]
    return result


def _row_for(conn: Connection, message_id: str, operator: Operator, agreement: Agreement) -> db.EnvelopeRow:
    row = db.get_envelope(conn, message_id)
    if row is None or not auth.may_read_row(operator, row, agreement):
        raise NotFound(f"no message {message_id} for your offices")
    return row


def _witnessed_note(conn: Connection, origin: str, size: int) -> bytes:
    """Return the peer checkpoint of `size` we cosigned, with our cosignature. Raises NotFound."""
    row = tlog.witnessed_at(conn, origin, size)
    if row is None:
        raise NotFound(f"this node has not cosigned a checkpoint of {origin} at size {size}")
    ours = parse_signature_lines((str(row["cosignature"]) + "\n").encode())
    return add_signatures(parse_note(bytes(row["note"])), *ours).format()


@router.get("/messages/{message_id}/proof")
async def message_proof(
    message_id: str,
    node: NodeDep,
    operator: OperatorDep,
    log: str | None = Query(default=None, max_length=8, description="a peer party: prove in its log"),
) -> Response:
    """Return a c2sp.org/tlog-proof@v1 bundle proving the envelope is in this node's (or a peer's) log."""
    # Named for the log it proves: the proof in ours and the one in the peer's must not overwrite each other.
    whose = node.ctx.party if log is None else log
    filename = {"Content-Disposition": f'attachment; filename="{message_id}.{whose}-log.tlog-proof"'}
    if log is None or log == node.ctx.party:

        def own(conn: Connection) -> bytes:
            row = _row_for(conn, message_id, operator, node.ctx.agreement)
            index = int(row["log_index"])
            covering = checkpoints.covering_checkpoint(conn, index)
            if covering is None:
                raise NotFound("no checkpoint covers this envelope yet; try again in a second")
            size, note = covering
            proof = merkle.prove_inclusion(index, size, tlog.TableHashReader(conn))
            # The envelope rides along (`extra`): a download verifies alone, with `detente log verify-proof`.
            return format_proof_bundle(index, proof, note, bytes(row["raw"]))

        return Response(await node.aread(own), media_type=PROOF_MEDIA_TYPE, headers=filename)
    if log not in node.ctx.peers:
        raise Invalid(f"unknown party {log!r}")
    origin = node.ctx.agreement.party(log).log_origin

    def stored(conn: Connection) -> tuple[db.EnvelopeRow, bytes | None, RowMapping | None]:
        row = _row_for(conn, message_id, operator, node.ctx.agreement)
        if row["peer"] != log:
            raise NotFound(f"message {message_id} was not exchanged with {log}")
        if row["verified_size"] is not None and row["peer_proof"] is not None:
            index = int(json.loads(row["receipt"])["log_index"])
            proof = [bytes.fromhex(h) for h in json.loads(row["peer_proof"])]
            note = _witnessed_note(conn, origin, int(row["verified_size"]))
            return row, format_proof_bundle(index, proof, note, bytes(row["raw"])), None
        return row, None, tlog.get_witness_state(conn, origin)

    row, bundle, state = await node.aread(stored)
    if bundle is None:
        # Not proven yet (or received from the peer): ask the peer now, check, and answer.
        client = node.clients.get(log)
        if state is None or client is None:
            raise NotFound(f"this node holds no cosigned checkpoint of {log}'s log yet")
        size, root = int(state["size"]), bytes(state["root"])
        index, proof = await fetch_inclusion(client, size, id=message_id)
        merkle_verify.verify_inclusion(index, size, merkle.leaf_hash(bytes(row["raw"])), proof, root)
        note = await node.aread(lambda conn: _witnessed_note(conn, origin, size))
        bundle = format_proof_bundle(index, proof, note, bytes(row["raw"]))
    return Response(bundle, media_type=PROOF_MEDIA_TYPE, headers=filename)
