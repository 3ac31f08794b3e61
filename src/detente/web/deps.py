"""Dependencies shared by the routes: the node and the authenticated operator."""

from __future__ import annotations

import time
import weakref
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from starlette.requests import HTTPConnection

from detente.errors import Unauthorized
from detente.node.auth import token_hash
from detente.node.runtime import Node
from detente.store import operators as operators_db
from detente.store.operators import Operator


async def get_node(request: Request) -> Node:
    """The node serving the request (a FastAPI dependency)."""
    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off
    # per request for an attribute read.
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


# Tokens found recently, by hash: (operator, monotonic time until which it is trusted). Every API
# request authenticates, and the lookup costs a connection and a query (`Node.read_quick`); a token
# disabled from the command line (another process) therefore stops working within TOKEN_TTL.
# Unknown tokens are never cached, so a new token works at once and guessing fills nothing.
TOKEN_TTL = 2.0
_TOKEN_CACHE_MAX = 1024
_tokens: weakref.WeakKeyDictionary[Node, dict[str, tuple[Operator, float]]] = weakref.WeakKeyDictionary()


async def operator_from_token(node: Node, authorization: str) -> Operator:
    """Return the operator holding this bearer token. Raises `Unauthorized` otherwise."""
    return (await token_credentials(node, authorization))[0]


async def token_credentials(node: Node, authorization: str) -> tuple[Operator, float]:
    """Return the operator holding this bearer token and the monotonic time until which that answer stands.

    Raises `Unauthorized` when no enabled operator holds the token.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    digest = token_hash(token.strip())
    known = _tokens.setdefault(node, {})
    cached = known.get(digest)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached
    operator = await node.read_quick(lambda conn: operators_db.by_token_hash(conn, digest))
    if operator is None:
        known.pop(digest, None)
        raise Unauthorized("unknown or disabled API token")
    if len(known) >= _TOKEN_CACHE_MAX:
        known.clear()
    entry = known[digest] = (operator, now + TOKEN_TTL)
    return entry


async def connection_operator(connection: HTTPConnection) -> Operator:
    """Authenticate a request or WebSocket by bearer token, or by console session when the console is on.

    Raises `Unauthorized` when neither identifies an enabled operator.
    """
    return (await connection_credentials(connection))[0]


async def connection_credentials(connection: HTTPConnection) -> tuple[Operator, float]:
    """Return `connection_operator` and the monotonic time until which that answer stands.

    A token's answer stands as long as the token cache trusts it; a console session's, which is
    looked up afresh on every call, for `TOKEN_TTL` too. Raises `Unauthorized` as `connection_operator`.
    """
    node: Node = connection.app.state.node
    authorization = connection.headers.get("authorization", "")
    if authorization:
        return await token_credentials(node, authorization)
    session_lookup = getattr(connection.app.state, "session_operator", None)
    if session_lookup is not None:
        now = time.monotonic()
        operator: Operator | None = await session_lookup(connection)
        if operator is not None:
            return operator, now + TOKEN_TTL
    raise Unauthorized("send 'Authorization: Bearer <token>'")


async def get_operator(request: Request) -> Operator:
    """The authenticated operator of an HTTP request (a FastAPI dependency)."""
    return await connection_operator(request)


async def websocket_credentials(websocket: WebSocket) -> tuple[Operator, float]:
    """The authenticated operator of a WebSocket, and until when (monotonic) to trust it. Raises `Unauthorized`."""
    return await connection_credentials(websocket)


OperatorDep = Annotated[Operator, Depends(get_operator)]
