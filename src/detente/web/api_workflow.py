"""The operator API of the agreement's vocabulary: cases, actions, consultations, the codebook.

    GET  /api/v1/cases?status=&limit=                    cases, newest first
    GET  /api/v1/cases/{id}                              a case: state, timeline, its actions, ...
    GET  /api/v1/actions?status=&case=&unilateral=       coordinated actions
    GET  /api/v1/actions/{id}                            state, timeline, evidence, report and verdict,
                                                         what you may send
    GET  /api/v1/consultations?status=&case=             consultations
    GET  /api/v1/consultations/{id}                      state, timeline, overdue action items
    GET  /api/v1/clarifications?status=&case=            clarification requests and their answers
    GET  /api/v1/clarifications/{id}
    GET  /api/v1/codebook?lang=                          the codebook, every entry in every language
    POST /api/v1/codes                                   send a codebook message by code
    POST /api/v1/evidence, GET /api/v1/evidence/{sha256} evidence files (`web.api_evidence`)

`install` also adds the JSON Schema of every message type's body to the OpenAPI document as
`components.schemas.<Type>Body` (`IncidentReportBody`, `ActionReportBody`, ...), so that a form
can be generated from it. Routes are thin: the queries are `node.workflow_views`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from detente.core import codebook, notifications
from detente.errors import Invalid
from detente.node import codes
from detente.node import workflow_views as views
from detente.node.runtime import Node
from detente.store.operators import Operator
from detente.web import api_evidence
from detente.web.api import send_checked, visible_offices
from detente.web.deps import NodeDep, OperatorDep

router = APIRouter(prefix="/api/v1", tags=["workflows"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Id = Annotated[str, Query(max_length=36, pattern=r"^[0-9a-f-]{36}$")]
CaseStatus = Literal["open", "contained", "resolved"]
ActionStatus = Literal[
    "proposed", "info_requested", "consented", "objected", "withdrawn", "executed", "reported", "verified", "disputed"
]
ConsultationStatus = Literal["proposed", "agreed", "cancelled", "held", "minutes_proposed", "minutes_cosigned"]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    channel: str = Field(max_length=32, description="the agreement channel, e.g. 'dgmo'")
    to: str = Field(max_length=48, description="the office at the other end, e.g. 'ir:dgmo'")
    code: str = Field(max_length=48, description="a code of GET /api/v1/codebook, e.g. 'NO-HOSTILE-INTENT'")
    params: dict[str, str | int | float] = Field(default_factory=dict, max_length=16)
    precedence: Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"] | None = Field(
        default=None, description="default: the entry's suggested precedence, else IMMEDIATE"
    )
    lang: str | None = Field(default=None, max_length=3, description="the language the sender writes in")
    note: str = Field(default="", max_length=2000)
    refs: list[str] = Field(default_factory=list, max_length=32)
    case: str | None = None


def _own(node: Node, operator: Operator) -> list[str]:
    return [o for o in operator.offices if o.split(":", 1)[0] == node.ctx.party]


async def _list(node: Node, operator: Operator, kind: str, **filters: Any) -> dict[str, Any]:
    offices = visible_offices(node, operator)
    result: dict[str, Any] = await node.aread(lambda conn: views.listing(conn, kind, offices, **filters))
    return result


async def _detail(node: Node, operator: Operator, kind: str, target: str) -> dict[str, Any]:
    offices, own = visible_offices(node, operator), _own(node, operator)
    result: dict[str, Any] = await node.aread(
        lambda conn: views.detail(conn, node.ctx.agreement, kind, target, offices, own)
    )
    return result


@router.get("/cases")
async def list_cases(
    node: NodeDep, operator: OperatorDep, status: CaseStatus | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """List the cases of your offices, newest first."""
    return await _list(node, operator, "case", status=status, limit=limit)


@router.get("/cases/{case_id}")
async def get_case(case_id: str, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return a case: status, escalation, timeline (UTC, each party's local time, DTG), actions."""
    return await _detail(node, operator, "case", case_id)


@router.get("/actions")
async def list_actions(
    node: NodeDep, operator: OperatorDep, status: ActionStatus | None = None, case: Id | None = None,
    unilateral: bool | None = None, limit: Limit = 100,
) -> dict[str, Any]:  # fmt: skip
    """List coordinated actions, newest first; `unilateral=true` lists those executed without consent."""
    return await _list(node, operator, "action", status=status, case_id=case, unilateral=unilateral, limit=limit)


@router.get("/actions/{action_id}")
async def get_action(action_id: str, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return an action: status, flags, timeline, evidence, report, verdict and what your offices may send now."""
    return await _detail(node, operator, "action", action_id)


@router.get("/consultations")
async def list_consultations(
    node: NodeDep, operator: OperatorDep, status: ConsultationStatus | None = None, case: Id | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:  # fmt: skip
    """List consultations, newest first."""
    return await _list(node, operator, "consultation", status=status, case_id=case, limit=limit)


@router.get("/consultations/{consultation_id}")
async def get_consultation(consultation_id: str, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return a consultation: status, minutes and co-signatures, action items (with the overdue ones)."""
    return await _detail(node, operator, "consultation", consultation_id)


@router.get("/clarifications")
async def list_clarifications(
    node: NodeDep, operator: OperatorDep, status: Literal["open", "answered"] | None = None,
    case: Id | None = None, limit: Limit = 100,
) -> dict[str, Any]:  # fmt: skip
    """List clarification requests with their deadline, answer and whether it was late or is overdue."""
    return await _list(node, operator, "clarification", status=status, case_id=case, limit=limit)


@router.get("/clarifications/{clarification_id}")
async def get_clarification(clarification_id: str, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Return a clarification request and its answer."""
    return await _detail(node, operator, "clarification", clarification_id)


@router.get("/codebook")
async def get_codebook(
    node: NodeDep, operator: OperatorDep, lang: str | None = Query(default=None, max_length=3)
) -> dict[str, Any]:
    """Return the codebook: each code's parameters, suggested precedence and text in every language."""
    agreement = node.ctx.agreement
    return {"languages": list(agreement.languages), "entries": codes.entries(agreement, lang)}


@router.post("/codes", status_code=201)
async def send_code(request: CodeRequest, node: NodeDep, operator: OperatorDep) -> dict[str, Any]:
    """Send a codebook message by code; answers 201 with the text it renders to in every language."""
    agreement = node.ctx.agreement
    entry = codebook.codebook(agreement.raw).get(request.code)
    if entry is None:
        raise Invalid(f"{request.code} is not in the agreement's codebook", fields={"code": "unknown code"})
    precedence = request.precedence or (entry.precedence.value if entry.precedence else "IMMEDIATE")
    body: dict[str, Any] = {"code": request.code, "params": request.params}
    if request.note:
        body["note"] = request.note
    sent = await send_checked(
        node, operator, channel=request.channel, to=request.to, precedence=precedence, kind="code", body=body,
        refs=request.refs, case=request.case, lang=request.lang,
    )  # fmt: skip
    lang = sent.envelope.data["lang"]
    prec = sent.envelope.precedence
    return {**sent.to_json(), "precedence": prec.value, **codes.view(agreement, "code", body, lang)}


def schema_name(kind: str) -> str:
    """Return the OpenAPI component name of a type's body: `action.request_info` -> `ActionRequestInfoBody`."""
    return "".join(part.capitalize() for part in re.split(r"[._]", kind)) + "Body"


def body_schemas() -> dict[str, Any]:
    """Return the OpenAPI components of every message type's body and of the models they nest."""
    kinds = list(notifications.CATALOG.values())
    models = list(dict.fromkeys(k.model for k in kinds))
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    names = {m: refs[(m, "validation")]["$ref"].rsplit("/", 1)[-1] for m in models}
    out: dict[str, Any] = {}
    for kind in kinds:
        out[schema_name(kind.name)] = {**defs[names[kind.model]], "x-detente-type": kind.name}
    text = repr(defs)
    for name in names.values():
        if f"#/components/schemas/{name}'" not in text:
            defs.pop(name, None)  # only under its <Type>Body name
    return {**defs, **out}


def install(app: FastAPI) -> None:
    """Add these routes and the evidence routes to `app`, and the body schemas to its OpenAPI document."""
    app.include_router(router)
    app.include_router(api_evidence.router)
    app.include_router(api_evidence.federation_router)
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "x-detente-message-types" not in schema:
            for name, body in body_schemas().items():
                if name in components and components[name] != body:
                    raise RuntimeError(f"OpenAPI component {name} is defined twice")
                components[name] = body
            schema["x-detente-message-types"] = {
                kind: f"#/components/schemas/{schema_name(kind)}" for kind in notifications.CATALOG
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
