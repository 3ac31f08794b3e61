"""Dependencies shared by the routes: the node and the authenticated operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

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


def connection_operator(connection: HTTPConnection) -> Operator:
    """Authenticate a request or WebSocket by bearer token, or by console session when the console is on.

    Raises `Unauthorized` when neither identifies an enabled operator.
    """
    node: Node = connection.app.state.node
    authorization = connection.headers.get("authorization", "")
    if authorization:
        return operator_from_token(node, authorization)
    session_lookup = getattr(connection.app.state, "session_operator", None)
    if session_lookup is not None:
        operator: Operator | None = session_lookup(connection)
        if operator is not None:
            return operator
    raise Unauthorized("send 'Authorization: Bearer <token>'")


async def get_operator(request: Request) -> Operator:
    """The authenticated operator of an HTTP request (a FastAPI dependency)."""
    return connection_operator(request)


def websocket_operator(websocket: WebSocket) -> Operator:
    """The authenticated operator of a WebSocket. Raises `Unauthorized`."""
    return connection_operator(websocket)


OperatorDep = Annotated[Operator, Depends(get_operator)]
