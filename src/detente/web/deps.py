"""Dependencies shared by the routes: the node and the authenticated operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket

from detente.errors import Unauthorized
from detente.node.auth import token_hash
from detente.node.runtime import Node
from detente.store import operators as operators_db
from detente.store.operators import Operator


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def operator_from_token(node: Node, authorization: str) -> Operator:
    """Return the operator holding this bearer token. Raises `Unauthorized` otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    operator = node.read(lambda conn: operators_db.by_token_hash(conn, token_hash(token.strip())))
    if operator is None:
        raise Unauthorized("unknown or disabled API token")
    return operator


async def get_operator(request: Request) -> Operator:
    """Authenticate the request by bearer token (or by console session, when the console is on)."""
    node: Node = request.app.state.node
    authorization = request.headers.get("authorization", "")
    if authorization:
        return operator_from_token(node, authorization)
    session_lookup = getattr(request.app.state, "session_operator", None)
    if session_lookup is not None:
        operator: Operator | None = session_lookup(request)
        if operator is not None:
            return operator
    raise Unauthorized("send 'Authorization: Bearer <token>'")


def websocket_operator(websocket: WebSocket) -> Operator:
    """Authenticate a WebSocket by bearer token or console session. Raises `Unauthorized`."""
    node: Node = websocket.app.state.node
    authorization = websocket.headers.get("authorization", "")
    if authorization:
        return operator_from_token(node, authorization)
    session_lookup = getattr(websocket.app.state, "session_operator", None)
    if session_lookup is not None:
        operator: Operator | None = session_lookup(websocket)
        if operator is not None:
            return operator
    raise Unauthorized("send 'Authorization: Bearer <token>'")


OperatorDep = Annotated[Operator, Depends(get_operator)]
