"""The operator API (`/api/v1`): JSON over HTTPS with a bearer token."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from detente.core import notifications
from detente.core.precedence import Precedence
from detente.errors import Error, Forbidden, NotFound, located
from detente.node import answers, auth, outgoing, search, translations
from detente.node.linkstate import link_views
from detente.node.runtime import Node
from detente.node.views import summary
from detente.store import messages as db
from detente.store.operators import Operator
from detente.web.deps import NodeDep, OperatorDep

router = APIRouter(prefix="/api/v1", tags=["operator"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SendRequest(Strict):
    channel: str = Field(max_length=32, description="the agreement channel, e.g. 'dgmo'")
    to: str = Field(max_length=48, description="the office at the other end, e.g. 'ir:dgmo'")
    precedence: Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
    type: str = Field(max_length=64, description="a message type from GET /api/v1/types")
    body: dict[str, Any]
    refs: list[str] = Field(default_factory=list, max_length=32)
    case: str | None = None
    lang: str | None = Field(default=None, max_length=3)


class SendResponse(BaseModel):
    id: str
    seq: int
    log_index: int
    state: str


MAX_SEND_BATCH = 100


class SendBatchRequest(Strict):
    messages: list[SendRequest] = Field(min_length=1, max_length=MAX_SEND_BATCH)


class SendBatchResponse(BaseModel):
    messages: list[SendResponse]


class DeclineRequest(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class AckRequest(Strict):
    note: str = Field(default="", max_length=2000)


class StatusRequest(Strict):
    peer: str = Field(max_length=8)
    code: Literal["TECH", "DECLINED", "AWAITING_AUTHORITY", "BUSY", "OK"]
    note: str = Field(default="", max_length=2000)
    office: str | None = Field(default=None, max_length=48)


def visible_offices(node: Node, operator: Operator) -> list[str] | None:
    """Return the offices whose traffic the operator may read (None: every office of the party)."""
    return auth.visible_offices(operator)


@router.post("/messages", status_code=201, response_model=SendResponse)
async def send_message(request: SendRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Send a message; answers 201 only after the envelope is durably committed and logged."""
    sent = await send_checked(
        node, operator, channel=request.channel, to=request.to, precedence=request.precedence, kind=request.type,
        body=request.body, refs=request.refs, case=request.case, lang=request.lang,
    )  # fmt: skip
    return sent.to_json()


@router.post("/messages/batch", status_code=201, response_model=SendBatchResponse)
async def send_messages(request: SendBatchRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Send up to 100 messages at once, in order, all or none.

    Answers 201 with one result per message, in the request's order, after every envelope is
    committed and logged. If any message is refused, none is sent, and the error names it
    (`messages.<i>`).
    """
    checked = []
    for i, item in enumerate(request.messages):
        try:
            checked.append(_check(node, operator, item))
        except Error as exc:
            raise located(exc, f"messages.{i}") from None
    urgent = any(m.precedence is Precedence.FLASH for m in checked)
    sent = await node.run(outgoing.send_batch_job(node.ctx, operator, checked), urgent=urgent, weight=len(checked))
    _announce(node, sent)
    return {"messages": [s.to_json() for s in sent]}


def _check(node: Node, operator: Operator, request: SendRequest) -> outgoing.Message:
    return outgoing.check_message(
        node.ctx, operator, channel=request.channel, to=request.to, precedence=request.precedence,
        kind=request.type, body=request.body, refs=request.refs, case=request.case, lang=request.lang,
    )  # fmt: skip


async def send_checked(
    node: Node, operator: Operator, *, channel: str, to: str, precedence: str, kind: str, body: dict[str, Any],
    refs: list[str], case: str | None, lang: str | None,
) -> outgoing.Sent:  # fmt: skip
    """Validate, record and queue one message; publish its events and wake its deliverer.

    Raises what `outgoing.check_message` and the send job raise (`Invalid`, `Forbidden`, ...).
    """
    message = outgoing.check_message(
        node.ctx, operator, channel=channel, to=to, precedence=precedence, kind=kind, body=body, refs=refs,
        case=case, lang=lang,
    )  # fmt: skip
    sent = await node.run(outgoing.send_job(node.ctx, operator, message), urgent=message.precedence is Precedence.FLASH)
    _announce(node, [sent])
    return sent


def _announce(node: Node, sent: list[outgoing.Sent]) -> None:
    """Publish what committed envelopes changed, and wake the deliverers of their peers."""
    for one in sent:
        node.ctx.bus.publish(*one.events)
    for peer in {one.envelope.recipient_party for one in sent}:
        flash = any(o.envelope.precedence is Precedence.FLASH for o in sent if o.envelope.recipient_party == peer)
        node.wake(peer, flash=flash)


@router.get("/messages")
async def list_messages(
    node: NodeDep,
    operator: OperatorDep,
    box: Literal["in", "out"] | None = None,
    channel: str | None = Query(default=None, max_length=32),
    state: Literal["accepted", "delivered", "acknowledged", "declined", "overdue"] | None = None,
    since: str | None = Query(default=None, description="RFC 3339 UTC time: messages created at or after it"),
    until: str | None = Query(default=None, description="RFC 3339 UTC time: messages created before it (excluded)"),
    q: str | None = Query(
        default=None, description="words that must all occur, in any case (in the body, a translation, a code's text)"
    ),
    precedence: Annotated[list[str] | None, Query(description="one or several (repeated or comma-separated)")] = None,
    type_: Annotated[list[str] | None, Query(alias="type", description="one or several message types")] = None,
    party: str | None = Query(default=None, description="the peer the message went to or came from"),
    message_id: str | None = Query(default=None, alias="id", description="the id, or its last 6 or more characters"),
    limit: int = Query(default=100, ge=1, le=1000),
    all_types: bool = Query(default=False, description="include acks, link tests and other service types"),
) -> JSONResponse:
    """List messages to or from the operator's offices, oldest first: the newest `limit` of them.

    `more` says whether older messages match the filters too (raise `limit`, or narrow `since`).
    Every filter is checked first: one that is wrong is refused (422, `fields` naming each).
    """
    found = search.parse(
        node.ctx, q=q, since=since, until=until, precedences=precedence, types=type_, party=party,
        message_id=message_id, channel=channel,
    )  # fmt: skip

    def read(conn: Any) -> tuple[list[Any], bool, dict[str, int]]:
        page = search.find(
            conn, node.ctx, operator, found, direction=box, channel=channel, state=state, all_types=all_types,
            limit=limit,
        )  # fmt: skip
        # How many translations each has (one grouped query on the `ref` index): GET /messages/{id} lists them.
        return page.rows, page.more, translations.counts(conn, [str(r["id"]) for r in page.rows])

    rows, more, translated = await node.aread(read)
    # Up to 1,000 summaries of plain JSON: FastAPI's generic encoder would walk each value again
    # (about ten times the cost of json.dumps).
    views = [
        {**summary(r, node.ctx.agreement, operator.lang), "translations": translated.get(r["id"], 0)} for r in rows
    ]
    return JSONResponse({"messages": views, "more": more})


@router.get("/messages/{message_id}")
async def get_message(message_id: str, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return one message: the envelope, its receipt, its answer, its deadline and state, and the
    envelopes that refer to it (id, type, sender, log index, time)."""

    def read(conn: Any) -> dict[str, Any]:
        row = db.get_envelope(conn, message_id)
        if row is None or not auth.may_read_row(operator, row, node.ctx.agreement):
            raise NotFound(f"no message {message_id} for your offices")
        response = db.get_envelope(conn, row["response_id"]) if row["response_id"] else None
        return {
            **summary(row, node.ctx.agreement, operator.lang),
            "envelope": json.loads(row["raw"]),
            "receipt": db.receipt_of(row),
            "acknowledgement": None if response is None else json.loads(response["raw"]),
            # Every envelope about this one (answers, overdue notices, a later answer refused as
            # second), so that an auditor can go from a message to each of them in the log.
            "referred_by": db.referring(conn, message_id),
            # Both sides' translations of it, each with its reviews (`node.translations`).
            "translations": translations.view(conn, node.ctx, message_id),
        }

    result: dict[str, Any] = await node.aread(read)
    return result


async def _respond(node: Node, operator: Operator, message_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    # The answer to a FLASH message is FLASH too, and goes ahead of the writer's queue as the
    # message did: under load that queue holds whole delivery batches. One indexed read on the
    # loop finds the precedence; the job checks everything about the message again.
    urgent = await node.read_quick(lambda conn: db.precedence_of(conn, message_id)) == Precedence.FLASH.value
    sent = await node.run(answers.respond_job(node.ctx, operator, message_id, kind, body), urgent=urgent)
    node.ctx.bus.publish(*sent.events)
    node.wake(sent.envelope.recipient_party, flash=sent.envelope.precedence is Precedence.FLASH)
    return sent.to_json()


@router.post("/messages/{message_id}/ack", status_code=201, response_model=SendResponse)
async def ack_message(
    message_id: str, node: NodeDep, operator: OperatorDep, request: AckRequest | None = None
) -> dict[str, Any]:
    """Acknowledge a received message: a signed `ack` envelope travels back to the sender."""
    return await _respond(node, operator, message_id, "ack", {"note": request.note} if request else {})


@router.post("/messages/{message_id}/decline", status_code=201, response_model=SendResponse)
async def decline_message(
    message_id: str, request: DeclineRequest, node: NodeDep, operator: OperatorDep
) -> dict[str, Any]:
    """Decline a received message with a reason: a signed `decline` envelope travels back."""
    return await _respond(node, operator, message_id, "decline", {"reason": request.reason})


@router.post("/status", status_code=201, response_model=SendResponse)
async def send_status(request: StatusRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Tell a peer why this side is (not) answering: TECH, DECLINED, AWAITING_AUTHORITY, BUSY or OK."""
    return (await send_statuses([request.peer], request, node, operator))[0]


async def send_statuses(
    peers: list[str], request: StatusRequest, node: Node, operator: Operator
) -> list[dict[str, Any]]:
    """Send the status of `request` to each of `peers`, all in one transaction (`answers.status_job`)."""
    sent = await node.run(answers.status_job(node.ctx, operator, peers, request.code, request.note, request.office))
    for one, peer in zip(sent, dict.fromkeys(peers), strict=True):
        node.ctx.bus.publish(*one.events)
        node.wake(peer)
    return [one.to_json() for one in sent]


@router.get("/links")
async def get_links(node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Per peer: UP, DEGRADED or DOWN, the last link test, the peer's clock, the outbox depth, the peer's status."""

    def read(conn: Any) -> dict[str, Any]:
        out = []
        for link in link_views(conn, node.ctx.peers):
            # `peer_status` is the newest any office told us (with its office); `peer_statuses` the
            # newest of each office, `our_statuses` what each of our offices told the peer.
            status = dict(link.their_statuses[0]) if link.their_statuses else None
            out.append(
                {
                    "peer": link.peer, "state": link.state, "since": link.since, "last_test_at": link.last_test_at,
                    "last_ok_at": link.last_ok_at, "rtt_ms": link.rtt_ms, "clock_offset_ms": link.clock_offset_ms,
                    "clock_warning": link.clock_warning, "failures": link.failures, "last_error": link.last_error,
                    "outbox": link.outbox, "peer_status": status, "peer_statuses": list(link.their_statuses),
                    "our_statuses": list(link.our_statuses), "refused": list(link.refused),
                }
            )  # fmt: skip
        return {"links": out}

    result: dict[str, Any] = await node.aread(read)
    return result


@router.get("/types")
async def list_types(operator: OperatorDep) -> dict[str, Any]:
    """List the message types with their rules and the JSON Schema of each body."""
    return {
        "types": [
            {
                "type": t.name,
                "needs_ack": t.needs_ack,
                "service": t.service,
                "precedences": [p.value for p in sorted(t.precedences, key=lambda p: p.rank)],
                "schema": t.json_schema(),
            }
            for t in notifications.CATALOG.values()
        ]
    }


@router.get("/me")
async def whoami(node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return the authenticated operator, their offices and the node they are on."""
    return {
        "id": operator.id,
        "name": operator.name,
        "roles": list(operator.roles),
        "offices": list(operator.offices),
        "lang": operator.lang,
        "party": node.ctx.party,
        "agreement": node.ctx.agreement.hash,
    }


def require_role(operator: Operator, *roles: str) -> None:
    """Raise `Forbidden` unless the operator holds one of `roles`."""
    if not any(operator.has(r) for r in roles):
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
