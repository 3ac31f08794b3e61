"""Signed HTTPS requests to a peer node, over TLS pinned to the agreement's fingerprint."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import httpx

from detente.core import wire
from detente.core.agreement import Party
from detente.errors import Unavailable, VerificationError
from detente.node.context import NodeContext
from detente.node.tls import pinned_context

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class PeerClient:
    """The HTTPS client of one peer node."""

    def __init__(self, ctx: NodeContext, peer: Party, ratification: str) -> None:
        self.ctx = ctx
        self.peer = peer
        self.ratification = ratification
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def _get_client(self) -> httpx.AsyncClient:
        async with self._lock:
            if self._client is None:
                context: ssl.SSLContext = await asyncio.to_thread(
                    pinned_context, self.peer.url, self.peer.tls_fingerprint
                )
                self._client = httpx.AsyncClient(base_url=self.peer.url, verify=context, timeout=TIMEOUT)
            return self._client

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json", **kwargs: Any
    ) -> httpx.Response:
        """Send a signed request; return the response after checking the peer's ratification.

        Raises `Unavailable` if the peer cannot be reached, and `VerificationError` if it
        presents another TLS certificate or has not ratified the agreement.
        """
        client = await self._get_client()
        headers = wire.sign_request(
            self.ctx.signer, self.ctx.party, self.ratification, self.ctx.agreement, method, path, body,
            int(time.time()),
        )  # fmt: skip
        headers["Content-Type"] = content_type
        try:
            response = await client.request(method, path, content=body, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.peer.id}: {type(exc).__name__}: {exc}") from exc
        ratification = response.headers.get("detente-ratification", "")
        if response.status_code < 500:
            try:
                wire.check_ratification(self.ctx.agreement, self.peer.id, ratification)
            except Exception as exc:
                raise VerificationError(f"{self.peer.id} answered without ratifying the agreement") from exc
        return response

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
