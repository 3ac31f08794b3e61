"""The Record and Admin screens, and the optional endpoints the console shows when the node has them.

The record (checkpoints, cosignatures, alarms, proofs) belongs to the node's log feature; the
console reads it through that feature's own HTTP endpoints, called in-process with the viewer's
session, so that it depends on their answers and not on their tables. An endpoint the node does not
serve (404) or that the viewer may not read simply leaves its section out.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.responses import Response

from detente.core import note as note_mod
from detente.core import wire
from detente.core.checkpoint import parse_checkpoint
from detente.errors import Error, Forbidden
from detente.store import messages as messages_db
from detente.store import operators as operators_db
from detente.web.console import csrf, data
from detente.web.console.site import Console, ConsoleRoute, Viewer, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


async def fetch(request: Request, path: str) -> httpx.Response | None:
    """GET one of this node's own endpoints in-process, as the viewer; None if it cannot be reached."""
    transport = httpx.ASGITransport(app=request.app)
    headers = {"cookie": request.headers.get("cookie", ""), "accept": "application/json"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url=csrf.own_origin(request), timeout=10) as client:
            return await client.get(path, headers=headers)
    except httpx.HTTPError:
        return None


async def optional_json(console: Console, request: Request, name: str) -> Any:
    """Return the JSON of an optional endpoint, or None if the node lacks it or refuses the viewer."""
    extras = console.discover(request.app)
    if name not in extras:
        return None
    response = await fetch(request, extras[name])
    if response is None or response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def alarm_list(doc: Any) -> list[dict[str, Any]] | None:
    """Return the alarms of a `GET /api/v1/alarms` answer with every field the page shows (None: no answer)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("alarms"), list):
        return None
    keys = ("id", "kind", "peer", "origin", "summary", "created")
    return [{**{k: str(a.get(k) or "") for k in keys}, "evidence": a.get("evidence")}
            for a in doc["alarms"] if isinstance(a, dict)]  # fmt: skip


def log_view(doc: Any) -> dict[str, Any] | None:
    """Return the parts of a `GET /api/v1/log` answer the page shows, each defaulted (None: no answer)."""
    if not isinstance(doc, dict):
        return None
    peers = {}
    for peer, state in (doc.get("peers") or {}).items():
        state = state if isinstance(state, dict) else {}
        keys = ("cosigned_size", "cosigned_root", "cosigned_at", "our_size_cosigned", "witnessing_error")
        peers[str(peer)] = {k: state.get(k) for k in keys}
    note = doc.get("checkpoint", {}).get("note") if isinstance(doc.get("checkpoint"), dict) else None
    return {"origin": str(doc.get("origin") or ""), "peers": peers, "note": note}


def checkpoint_view(text: str) -> dict[str, Any] | None:
    """Return the latest checkpoint's origin, size and root, and every signature on it (with its time)."""
    try:
        note = note_mod.parse_note(text.encode())
        checkpoint = parse_checkpoint(note.text)
    except Error:
        return None
    signers = []
    for sig in note.signatures:
        try:
            at: int | None = note_mod.cosignature_time(sig)
        except Error:
            at = None  # the log's own signature carries no time
        signers.append({"name": sig.name, "key_id": sig.key_id.hex(), "time": at, "party": sig.name.split(".", 1)[0]})
    # The root in base64, as the checkpoint note itself, `detente log show` and `detente audit` write
    # it (C2SP tlog-checkpoint): an auditor compares them character for character.
    root = base64.b64encode(checkpoint.root).decode("ascii")
    return {"origin": checkpoint.origin, "size": checkpoint.size, "root": root, "signers": signers,
            "text": text}  # fmt: skip


@router.get("/record")
async def record_page(request: Request) -> Response:
    """The record: the log's size, the latest checkpoint and its cosignatures, alarms, proofs."""
    console = console_of(request)
    viewer = await console.viewer(request)
    size = await console.node.aread(messages_db.log_size)
    log = log_view(await optional_json(console, request, "log"))
    checkpoint = checkpoint_view(str(log["note"])) if log and log["note"] else None
    alarms = alarm_list(await optional_json(console, request, "alarms"))

    def recent(conn: Any) -> list[Any]:
        rows = data.thread_all(conn, viewer.offices, 30)
        return [viewer.presenter.card(r, viewer.operator) for r in reversed(rows)]

    cards = await console.node.aread(recent)
    return await console.page(request, "record.html", viewer, page="record", title=viewer.locale.gettext("Record"),
                        live_url="/record?fragment=1", log_size=size, checkpoint=checkpoint, alarms=alarms,
                        cards=cards, log=log, peers=console.node.ctx.peers)  # fmt: skip


def _require_admin(viewer: Viewer) -> None:
    if not viewer.operator.has("admin"):
        raise Forbidden("the Admin screen is for operators with the admin role")


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    """Operators with their offices and roles; the agreement in force and its ratifications."""
    console = console_of(request)
    viewer = await console.viewer(request)
    _require_admin(viewer)
    agreement = console.node.ctx.agreement

    def read(conn: Any) -> dict[str, Any]:
        return {
            "operators": data.all_operators(conn),
            "disabled": data.disabled_ids(conn),
            "signatures": operators_db.ratifications_of(conn, agreement.hash),
        }

    found = await console.node.aread(read)
    ratifications = []
    for party in sorted(agreement.parties):
        signature = found["signatures"].get(party)
        valid = False
        if signature:
            try:
                wire.check_ratification(agreement, party, signature)
                valid = True
            except Error:
                valid = False
        ratifications.append({"party": party, "signature": signature, "valid": valid})
    return await console.page(
        request, "admin.html", viewer, page="admin", title=viewer.locale.gettext("Admin"), live_url="",
        operators=found["operators"], disabled=found["disabled"], agreement=agreement,
        ratifications=ratifications, agreement_json=json.dumps(agreement.raw.get("agreement", {}), ensure_ascii=False),
    )  # fmt: skip
