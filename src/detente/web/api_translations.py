"""The operator API of certified translations: translate a message, certify or dispute a translation.

    POST /api/v1/messages/{id}/translations  {"lang", "text"}        a signed `translation` travels to the peer
    POST /api/v1/messages/{id}/review        {"verdict", "note"?}    a signed `translation.review` travels too

Both answer 201 with the envelope's id, sequence number, log index and state once it is committed
and logged, as `POST /api/v1/messages` does. `GET /api/v1/messages/{id}` lists a message's
translations (`translations`, from `node.translations.view`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from detente.core.precedence import Precedence
from detente.core.translations import NOTE_MAX, TEXT_MAX
from detente.node import translations
from detente.node.outgoing import Sent
from detente.node.runtime import Node
from detente.store import messages as db
from detente.web.api import SendResponse, Strict
from detente.web.deps import NodeDep, OperatorDep

router = APIRouter(prefix="/api/v1", tags=["translations"])


class TranslateRequest(Strict):
    lang: str = Field(max_length=3, description="the language of the translation: one of the agreement's")
    text: str = Field(min_length=1, max_length=TEXT_MAX, description="the translated text")


class ReviewRequest(Strict):
    verdict: Literal["certified", "disputed"]
    note: str = Field(default="", max_length=NOTE_MAX, description="what is wrong: required for a dispute")


async def _run(node: Node, about: str, job: Any) -> dict[str, Any]:
    # A translation goes with the precedence of what it is about, and ahead of the writer's queue
    # for a FLASH message, as its answer would: one indexed read finds it, the job checks it all again.
    urgent = await node.read_quick(lambda conn: db.precedence_of(conn, about)) == Precedence.FLASH.value
    sent: Sent = await node.run(job, urgent=urgent)
    node.ctx.bus.publish(*sent.events)
    node.wake(sent.envelope.recipient_party, flash=sent.envelope.precedence is Precedence.FLASH)
    return sent.to_json()


@router.post("/messages/{message_id}/translations", status_code=201, response_model=SendResponse)
async def translate(message_id: str, request: TranslateRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Translate a message sent or received into another of the agreement's languages.

    For a translator or supervisor bound to this side's office on the message's channel (or one of
    its alternates). The signed `translation` travels to the peer with the message's precedence.
    """
    job = translations.translate_job(node.ctx, operator, message_id, request.lang, request.text)
    return await _run(node, message_id, job)


@router.post("/messages/{message_id}/review", status_code=201, response_model=SendResponse)
async def review(message_id: str, request: ReviewRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Certify or dispute a translation this side made: by another translator than its author.

    A dispute must say why (`note`). The signed `translation.review` travels to the peer.
    """
    job = translations.review_job(node.ctx, operator, message_id, request.verdict, request.note)
    return await _run(node, message_id, job)
