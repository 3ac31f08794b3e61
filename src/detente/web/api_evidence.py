"""Evidence files over HTTP: operators upload and read them; peers fetch them.

    POST /api/v1/evidence?name=        the raw file with its Content-Type (image/jpeg, image/png,
                                       image/webp, application/pdf, text/plain, video/mp4), or
                                       multipart/form-data with one part `file`; answers
                                       201 {"evidence": {sha256, name, media_type, size}, ...}, the
                                       item to put in an `action.report`'s `evidence` list
    GET  /api/v1/evidence/{sha256}     the file, to an operator who can see an envelope referring
                                       to it (or who uploaded it)
    GET  /federation/v1/evidence/{sha256}   the file, to a peer node (signed request) that exchanged
                                       an envelope referring to it

Checks and storage are in `node.evidence`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from detente.core.workflow_bodies import EVIDENCE_MEDIA_TYPES, MAX_EVIDENCE_BYTES
from detente.errors import BadRequest, Forbidden, Invalid
from detente.node import evidence
from detente.node.auth import SENDING_ROLES
from detente.node.runtime import Node
from detente.web.api import visible_offices
from detente.web.deps import NodeDep, OperatorDep
from detente.web.federation import authenticate

router = APIRouter(prefix="/api/v1", tags=["evidence"])
federation_router = APIRouter(prefix="/federation/v1", tags=["federation"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            **{t: _BINARY for t in EVIDENCE_MEDIA_TYPES},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": _BINARY["schema"]}, "required": ["file"]}
            },
        },
    }
}


async def _read_upload(request: Request) -> tuple[bytes, str, str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4, max_part_size=MAX_EVIDENCE_BYTES)
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise Invalid("a multipart upload needs one part named 'file'", fields={"file": "missing"})
        try:
            content = await part.read(MAX_EVIDENCE_BYTES + 1)
        finally:
            await form.close()
        return content, (part.content_type or "").split(";")[0].strip().lower(), part.filename
    if not content_type:
        raise BadRequest("send the file with its Content-Type, or as multipart/form-data")
    return await request.body(), content_type.split(";")[0].strip().lower(), None


@router.post("/evidence", status_code=201, openapi_extra=_UPLOAD_DOC)
async def upload_evidence(
    request: Request, node: NodeDep, operator: OperatorDep, name: str | None = Query(default=None, max_length=200)
) -> dict[str, Any]:
    """Store an evidence file under its SHA-256; answer the item an `action.report` lists."""
    if not any(operator.has(r) for r in SENDING_ROLES):
        raise Forbidden(f"operator {operator.name} has no role that may send (operator or supervisor)")
    content, media_type, filename = await _read_upload(request)
    sha256 = evidence.check_file(content, media_type)
    await asyncio.to_thread(evidence.write_file, node.ctx, sha256, content)
    job = evidence.upload_job(sha256, len(content), media_type, evidence.clean_name(name or filename), operator.id)
    result: dict[str, Any] = await node.run(job)
    return result


def _file_response(node: Node, row: Any, content: bytes) -> Response:
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(str(row['name']))}",
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{row["sha256"]}"',
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    return Response(content, media_type=str(row["media_type"]), headers=headers)


@router.get("/evidence/{sha256}", response_class=Response)
async def get_evidence(sha256: str, node: NodeDep, operator: OperatorDep) -> Response:
    """Return an evidence file you may see (one of your offices' envelopes refers to it)."""
    evidence.path_of(node.ctx, sha256)  # NotFound for a malformed name
    offices = visible_offices(node, operator)
    row = await node.aread(lambda conn: evidence.readable(conn, sha256, offices, operator.id))
    content = await asyncio.to_thread(evidence.read_file, node.ctx, sha256)
    return _file_response(node, row, content)


@federation_router.get("/evidence/{sha256}", response_class=Response)
async def federation_evidence(sha256: str, request: Request, node: NodeDep) -> Response:
    """Return an evidence file to a peer that exchanged an envelope referring to it (signed request)."""
    party, _ = await authenticate(request, node)
    evidence.path_of(node.ctx, sha256)
    row = await node.aread(lambda conn: evidence.servable_to_peer(conn, sha256, party))
    content = await asyncio.to_thread(evidence.read_file, node.ctx, sha256)
    return _file_response(node, row, content)
