"""The federation API (`/federation/v1`): what one node asks of another.

Every request is authenticated by its signature headers (see `core.wire`); every response
carries this node's ratification of the agreement in `Detente-Ratification`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detente.core import clocks, receipts, wire
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence, format_time, now
from detente.errors import BadRequest, Error, MalformedError
from detente.node.incoming import JOB_ENVELOPES, MAX_BATCH, Received, check_envelope, receive_job
from detente.web.deps import NodeDep

SHORT_BATCH = 16  # envelopes: a batch this short with a FLASH in it jumps the writer's queue

router = APIRouter(prefix="/federation/v1", tags=["federation"])


async def authenticate(request: Request, node: Any) -> tuple[str, bytes]:
    """Check the request's signature headers; return the sending party and the body.

    A signed request also tells the peer's clock, to a second or so: when that contradicts the
    offset the link tests measured (`core.clocks.stale`: the peer's clock was set since), the
    offset is dropped and measured again at once (`Node.clock_doubted`).
    """
    moment = int(time.time())  # before the body is read: a large one takes a while
    body = await request.body()
    party = wire.verify_request(
        node.ctx.agreement, node.ctx.party, request.headers, request.method, request.url.path, body, moment,
        request.query_params.multi_items(),
    )  # fmt: skip
    node.ctx.heard_accepts(party, request.headers.get(wire.ACCEPTS_HEADER))
    offset = int(request.headers["detente-time"]) - moment
    if node.ctx.clock_offsets.get(party) is not None and clocks.stale(node.ctx.clock_offsets[party], offset):
        node.clock_doubted(party)
    return party, body


@router.post("/envelopes")
async def deliver(request: Request, node: NodeDep) -> JSONResponse:
    """Store a batch of envelopes; answer a signed receipt (or an error) for each, in order."""
    party, body = await authenticate(request, node)
    try:
        doc = json.loads(body)
    except RecursionError as exc:  # a peer's body, signed but nested thousands deep: a 400, not a 500
        raise MalformedError("request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError("request body is not valid JSON") from exc
    items = doc.get("envelopes") if isinstance(doc, dict) else None
    if not isinstance(items, list) or set(doc) != {"envelopes"}:
        raise BadRequest('the body must be {"envelopes": [...]}')
    if len(items) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} envelopes per request")
    checked: list[Envelope | Error] = []
    ids: list[str | None] = []
    for item in items:
        ids.append(item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None)
        try:
            checked.append(check_envelope(node.ctx, party, item))
        except Error as exc:
            checked.append(exc)
    # A short batch carrying a FLASH message (the peer's express lane, or a batch it cut short at
    # one) is stored ahead of the writer's queue.
    urgent = len(checked) <= SHORT_BATCH and any(
        isinstance(e, Envelope) and e.precedence is Precedence.FLASH for e in checked
    )
    # A sender of an earlier release does not ask for batch receipts, and verifies only one signed
    # receipt per envelope: it gets those until its state upgrades.
    batched = request.headers.get(receipts.BATCH_HEADER) == receipts.BATCH_VALUE
    # Stored in order by jobs of at most JOB_ENVELOPES: a FLASH that arrives meanwhile cuts in after
    # one of them, not after a whole batch of up to MAX_BATCH (docs/performance.md, items 29, 31).
    blocked: set[str] = set()
    parts = [
        (checked[i : i + JOB_ENVELOPES], ids[i : i + JOB_ENVELOPES]) for i in range(0, len(checked), JOB_ENVELOPES)
    ]
    jobs = [receive_job(node.ctx, party, c, i, batch_receipts=batched, blocked=blocked) for c, i in parts]
    outcomes = await asyncio.gather(
        *(node.run(job, urgent=urgent, weight=len(c)) for job, (c, _) in zip(jobs, parts, strict=True)),
        return_exceptions=True,
    )
    received = [outcome for outcome in outcomes if isinstance(outcome, Received)]
    # The parts that committed say so on the streams even when a later one failed; the sender
    # then sends the batch again, and the stored envelopes get the receipts they got.
    node.ctx.bus.publish(*(event for part in received for event in part.events))
    failed = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
    if failed is not None:
        raise failed
    results = [result for part in received for result in part.results]
    if any("receipt" in r for r in results):
        node.wake(party)  # the peer is evidently up: send it what waits for it
    # Already plain JSON: skip FastAPI's generic encoder, which costs ten times json.dumps here.
    return JSONResponse({"results": results})


@router.get("/health")
async def health(request: Request, node: NodeDep) -> dict[str, Any]:
    """Answer a signed link test request with this node's party and clock."""
    await authenticate(request, node)
    return {"party": node.ctx.party, "time": format_time(now()), "agreement": node.ctx.agreement.hash}


@router.get("/ratification")
async def ratification(node: NodeDep) -> dict[str, Any]:
    """Return this node's ratification signature of the agreement in force (public)."""
    return {"party": node.ctx.party, "agreement": node.ctx.agreement.hash, "signature": node.ratification}


class RatificationHeader:
    """Add this node's ratification, and what it accepts (`wire.ACCEPTS`), to every federation response."""

    def __init__(self, app: ASGIApp, signature: str) -> None:
        self.app = app
        self.headers = [
            (b"detente-ratification", signature.encode()),
            (wire.ACCEPTS_HEADER.encode(), " ".join(wire.ACCEPTS).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/federation/"):
            await self.app(scope, receive, send)
            return

        async def add_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, add_header)
