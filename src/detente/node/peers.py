"""Signed HTTPS requests to a peer node, over TLS pinned to the agreement's fingerprint.

The client is aiohttp's: on this machine it spends 0.5 ms of CPU per federation request where
httpx spent 1.8 ms, and a FLASH message crosses two such requests (the delivery and the
acknowledgement); docs/performance.md has the measurement. It never reads proxy settings from the
environment and never follows redirects: a node talks to the address in the agreement, or fails.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from detente.core import wire
from detente.core.agreement import Party
from detente.core.workflow_bodies import MAX_EVIDENCE_BYTES
from detente.errors import Unavailable, VerificationError
from detente.node.context import NodeContext
from detente.node.tls import pinned_context, unreachable

# Ten seconds without a byte from the peer, or three to connect, and the request has failed.
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=3.0, sock_read=10.0)
# Drop an idle connection well before the peer's server does (a node's after 30 s, `web.stack`; an
# earlier release's after 5 s), so that a request is never written to a connection the peer is
# closing at that moment.
KEEPALIVE = 3.0
# The longest answer read from a peer: its largest is an evidence file (an entry bundle of 256
# envelopes is about 15 MB). A longer one is refused as it streams in, never held whole in memory:
# a hostile peer answering gigabytes would otherwise exhaust this node's memory.
MAX_ANSWER = MAX_EVIDENCE_BYTES + (1 << 20)


@dataclass(frozen=True)
class PeerResponse:
    """A peer's whole answer: status, headers (case-insensitive) and body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """Return the body parsed as JSON. Raises `ValueError` if it is not JSON."""
        return json.loads(self.content)

    def refusal(self, limit: int = 200) -> str:
        """Return "HTTP <status>: <the start of the body>", the peer's reason for a refusal, for a log or a link."""
        return f"HTTP {self.status_code}: {self.text[:limit]}"


async def _read_answer(answer: aiohttp.ClientResponse, url: str) -> bytes:
    """Return an answer's body, read as it streams in. Raises `Unavailable` past `MAX_ANSWER` bytes."""
    refused = Unavailable(f"{url} answered more than {MAX_ANSWER} bytes: refused")
    if answer.content_length is not None and answer.content_length > MAX_ANSWER:
        raise refused
    body = bytearray()
    async for chunk in answer.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MAX_ANSWER:
            raise refused
    return bytes(body)


def _unreachable(url: str, exc: aiohttp.ClientError | TimeoutError) -> str:
    """Return why `url` could not be reached, in the words `tls.unreachable` uses for the first try."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"cannot reach {url}: it closed the connection before answering"
    return unreachable(url, exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc)


class PeerClient:
    """The HTTPS client of one peer node."""

    def __init__(self, ctx: NodeContext, peer: Party, ratification: str) -> None:
        self.ctx = ctx
        self.peer = peer
        self.ratification = ratification
        self._client: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _get_client(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._client is None:
                context: ssl.SSLContext = await asyncio.to_thread(
                    pinned_context, self.peer.url, self.peer.tls_fingerprint
                )
                connector = aiohttp.TCPConnector(ssl=context, keepalive_timeout=KEEPALIVE)
                self._client = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT, auto_decompress=False)
            return self._client

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "application/json",
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PeerResponse:
        """Send a signed request; return the response after checking the peer's ratification.

        Raises `Unavailable` if the peer cannot be reached or answers more than `MAX_ANSWER` bytes,
        and `VerificationError` if it presents another TLS certificate or has not ratified the agreement.
        """
        client = await self._get_client()
        signed = wire.sign_request(
            self.ctx.signer, self.ctx.party, self.ratification, self.ctx.agreement, method, path, body,
            int(time.time()), self.peer.id, [(k, str(v)) for k, v in (params or {}).items()],
        )  # fmt: skip
        signed["Content-Type"] = content_type
        # The caller's headers cannot replace the signature's; what this node accepts goes with each.
        sent = {**(headers or {}), **signed, wire.ACCEPTS_HEADER: " ".join(wire.ACCEPTS)}
        try:
            async with client.request(
                method,
                self.peer.url.rstrip("/") + path,
                data=body,
                headers=sent,
                params=params,
                allow_redirects=False,
            ) as answer:
                response = PeerResponse(answer.status, answer.headers, await _read_answer(answer, self.peer.url))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(_unreachable(self.peer.url, exc)) from exc
        ratification = response.headers.get("detente-ratification", "")
        if response.status_code < 500:
            try:
                wire.check_ratification(self.ctx.agreement, self.peer.id, ratification)
            except Exception as exc:
                raise VerificationError(
                    f"{self.peer.id} answered without a ratification of agreement {self.ctx.agreement.hash[:12]}…, "
                    "the one this node serves under: if the agreement was amended, every node must ratify the "
                    "same amendment and be restarted"
                ) from exc
            # The peer's node itself answered (its ratification says so): what it accepts is its word.
            self.ctx.heard_accepts(self.peer.id, response.headers.get(wire.ACCEPTS_HEADER))
        return response

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.close()
            self._client = None
