"""How a drill reaches the nodes: each party's operator API and live stream, as its operators would.

A drill target is what `detente demo --setup-only` writes to `demo.json` (or what the drill's own
self-hosted nodes write): per party, the node's URL, its TLS certificate (trusted exactly, as
the CLI does) and the demo operators with their API tokens. The drill acts as the operator bound
to each office, and watches each node through the stream of an operator who sees every office
(a supervisor or auditor), so it also sees what people do in the consoles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from detente.core import agreement as agreement_mod
from detente.core.agreement import Agreement
from detente.errors import BadRequest, Error, NotFound, Unavailable
from detente.node.tls import trust_exactly

WATCH_ROLES = ("supervisor", "auditor", "admin")


class NodeRefused(Error):
    """A node answered a drill action with an error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('error', 'Error')} ({status}): {body.get('detail', '')}")
        self.status_code = status
        self.body = body


@dataclass(frozen=True)
class PartyTarget:
    """One party's node as the drill sees it."""

    party: str
    url: str
    cert: str
    tokens: dict[str, str]  # operator name -> API token
    offices: dict[str, list[str]]  # operator name -> offices
    watcher: str  # an operator who sees every office (supervisor/auditor)
    data: str | None = None  # the data directory, when the node is on this machine
    pid: int | None = None  # the node's process, when the drill started it


@dataclass(frozen=True)
class Target:
    """Both (all) parties' nodes and the agreement they run under."""

    parties: dict[str, PartyTarget]
    agreement: Agreement
    agreement_path: str
    source: str  # the demo.json it came from, or "self-hosted"


def load_target(path: Path, *, pids: dict[str, int] | None = None, source: str | None = None) -> Target:
    """Read a `demo.json`. Raises `BadRequest` if it is not one, `NotFound` if it is missing."""
    if not path.exists():
        raise NotFound(f"{path} does not exist (make one with: detente demo --setup-only --workdir DIR)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        parties: dict[str, PartyTarget] = {}
        for party, node in info["nodes"].items():
            tokens = {str(o["name"]): str(o["token"]) for o in node["operators"]}
            offices = {str(o["name"]): list(o["offices"]) for o in node["operators"]}
            watchers = [o["name"] for o in node["operators"] if set(o.get("roles", [])) & set(WATCH_ROLES)]
            if not watchers:
                raise BadRequest(f"{path}: party {party} has no supervisor or auditor for the drill to watch with")
            parties[party] = PartyTarget(
                party=party, url=str(node["url"]), cert=str(node["cert"]), tokens=tokens, offices=offices,
                watcher=str(watchers[0]), data=node.get("data"), pid=(pids or {}).get(party),
            )  # fmt: skip
        agreement_path = str(info["agreement"])
        agreement = agreement_mod.load(Path(agreement_path).read_text(encoding="utf-8"), strict=False)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise BadRequest(f"{path} is not a demo.json (from `detente demo --setup-only`): {exc}") from exc
    return Target(parties, agreement, agreement_path, source or str(path))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Clients:
    """HTTPS clients (one per party) and the streams the drill watches."""

    target: Target
    http: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def __aenter__(self) -> Clients:
        """Open one client per party. Raises `BadRequest` naming a certificate that cannot be used."""
        for party, node in self.target.parties.items():
            try:
                context = trust_exactly(Path(node.cert).read_text(encoding="utf-8"))
            except (OSError, ValueError, ssl.SSLError) as exc:
                await self.__aexit__()
                raise BadRequest(f"{party}'s node: cannot use the TLS certificate {node.cert}: {exc}") from exc
            self.http[party] = httpx.AsyncClient(base_url=node.url + "/api/v1", verify=context, timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.http.values():
            await client.aclose()

    async def call(self, party: str, operator: str, method: str, path: str, **kwargs: Any) -> Any:
        """Send one API request as `operator` on `party`'s node; raise `NodeRefused` on an error."""
        token = self.target.parties[party].tokens.get(operator)
        if token is None:
            raise NotFound(f"{party}'s node has no demo operator {operator!r}")
        try:
            response = await self.http[party].request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach {party}'s node: {exc}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:  # not our node's JSON (a proxy's error page, say): keep the start of it
            body = {"error": "Error", "detail": response.text[:200]}
        if response.status_code >= 400:
            raise NodeRefused(response.status_code, body if isinstance(body, dict) else {"detail": str(body)})
        return body

    async def watch(self, party: str, operator: str | None = None) -> Any:
        return await self.call(party, operator or self.target.parties[party].watcher, "GET", "/me")

    async def stream(
        self, party: str, on_event: Callable[[str, datetime, dict[str, Any]], Awaitable[None] | None],
        stop: asyncio.Event, connected: asyncio.Event | None = None,
    ) -> None:  # fmt: skip
        """Follow `party`'s stream as its watcher until `stop`; reconnect after a drop."""
        import websockets

        node = self.target.parties[party]
        context = trust_exactly(Path(node.cert).read_text(encoding="utf-8"))
        uri = node.url.replace("https://", "wss://") + "/api/v1/stream"
        headers = {"Authorization": f"Bearer {node.tokens[node.watcher]}"}
        while not stop.is_set():
            try:
                async with websockets.connect(uri, ssl=context, additional_headers=headers) as ws:
                    reader = asyncio.ensure_future(_pump(ws, party, on_event, connected))
                    stopper = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (reader, stopper):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
            except (OSError, websockets.WebSocketException):
                pass
            if not stop.is_set():
                await asyncio.sleep(0.3)

    async def list_messages(self, party: str, since: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Return every envelope (service types too) created on or after `since`, as the watcher sees it."""
        params: dict[str, Any] = {"since": since, "limit": limit, "all_types": "true"}
        body = await self.call(party, self.target.parties[party].watcher, "GET", "/messages", params=params)
        messages: list[dict[str, Any]] = body["messages"]
        return messages

    async def get_message(self, party: str, envelope_id: str) -> dict[str, Any] | None:
        """Return one envelope's summary on `party`'s node, or None if it does not hold it."""
        try:
            body: dict[str, Any] = await self.call(
                party, self.target.parties[party].watcher, "GET", f"/messages/{envelope_id}"
            )
        except NodeRefused as exc:
            if exc.status_code == 404:
                return None
            raise
        return body

    async def links(self, party: str) -> list[dict[str, Any]]:
        body = await self.call(party, self.target.parties[party].watcher, "GET", "/links")
        links: list[dict[str, Any]] = body["links"]
        return links


async def _pump(
    ws: Any, party: str, on_event: Callable[[str, datetime, dict[str, Any]], Awaitable[None] | None],
    connected: asyncio.Event | None,
) -> None:  # fmt: skip
    async for raw in ws:
        event = json.loads(raw)
        if event.get("event") == "hello" and connected is not None:
            connected.set()
        result = on_event(party, utcnow(), event)
        if result is not None:
            await result


async def collect_links(clients: Clients) -> dict[str, list[dict[str, Any]]]:
    """Return each node's view of its links (state, outbox depth, the peer's last status)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for party in clients.target.parties:
        try:
            out[party] = await clients.links(party)
        except Error as exc:
            out[party] = [{"error": exc.detail}]
    return out
