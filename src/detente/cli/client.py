"""Commands that talk to a running node through its operator API, as an operator would."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from detente.cli.app import app
from detente.errors import BadRequest, Error, Unavailable
from detente.node.config import load_config
from detente.node.tls import trust_exactly

out = Console()

NodeOpt = Annotated[Path | None, typer.Option("--node", help="a node data directory (gives URL and certificate)")]
UrlOpt = Annotated[str | None, typer.Option("--url", envvar="DETENTE_URL", help="the node's base URL")]
CertOpt = Annotated[Path | None, typer.Option("--cacert", envvar="DETENTE_CACERT", help="the node's TLS certificate")]
TokenOpt = Annotated[str, typer.Option("--token", envvar="DETENTE_TOKEN", help="your API token")]


class ApiError(Error):
    """The node answered with an error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('error', 'Error')} ({status}): {body.get('detail', '')}")
        self.status_code = status


def api(node: Path | None, url: str | None, cacert: Path | None, token: str) -> httpx.Client:
    """Return an HTTPS client for a node's operator API, trusting exactly its certificate."""
    if node is not None:
        config = load_config(node)
        url, cacert = url or config.url, cacert or config.cert_path
    if not url or cacert is None:
        raise BadRequest("say which node: --node DIR, or --url and --cacert")
    context = trust_exactly(cacert.read_text())
    return httpx.Client(
        base_url=url.rstrip("/") + "/api/v1",
        verify=context,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """Send one API request and return its JSON; raise `ApiError` with the node's message."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach the node: {exc}") from exc
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        raise ApiError(response.status_code, body)
    return body


@app.command()
def send(
    token: TokenOpt,
    channel: Annotated[str, typer.Option(help="channel, e.g. dgmo")],
    to: Annotated[str, typer.Option(help="addressee office, e.g. ir:dgmo")],
    text: Annotated[str | None, typer.Option(help="free text (type hotline.text)")] = None,
    type_: Annotated[str, typer.Option("--type", help="message type")] = "hotline.text",
    body: Annotated[str | None, typer.Option(help="the body as JSON (instead of --text)")] = None,
    precedence: Annotated[str, typer.Option(help="FLASH|IMMEDIATE|PRIORITY|ROUTINE")] = "ROUTINE",
    ref: Annotated[list[str] | None, typer.Option(help="referenced envelope id, repeatable")] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Send a message; prints its id, sequence number and log index once it is durably accepted."""
    if body is not None:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"--body is not JSON: {exc}") from exc
    elif text is not None:
        payload = {"text": text}
    else:
        raise BadRequest("give --text or --body")
    request = {"channel": channel, "to": to, "precedence": precedence.upper(), "type": type_, "body": payload}
    if ref:
        request["refs"] = ref
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", "/messages", json=request)
    print(f"{result['id']} seq {result['seq']} log {result['log_index']} {result['state']}")


@app.command("send-batch")
def send_batch(
    token: TokenOpt,
    file: Annotated[Path, typer.Argument(help="a JSON file: a list of messages as POST /api/v1/messages takes them")],
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Send up to 100 messages from a file, in order, all or none; prints a line per message.

    The file holds a JSON list, or `{"messages": [...]}`; `-` reads standard input. If any message
    is refused, none is sent, and the error names it (`messages.<i>`, counting from 0).
    """
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        payload = json.loads(text)
    except OSError as exc:
        raise BadRequest(f"cannot read {file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise BadRequest(f"{file} is not JSON: {exc}") from exc
    if isinstance(payload, list):
        payload = {"messages": payload}
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", "/messages/batch", json=payload)
    for sent in result["messages"]:
        print(f"{sent['id']} seq {sent['seq']} log {sent['log_index']} {sent['state']}")


@app.command()
def inbox(
    token: TokenOpt,
    box: Annotated[str, typer.Option(help="in or out")] = "in",
    state: Annotated[str | None, typer.Option(help="only this state")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List received (or sent) messages with their precedence, deadline and state."""
    params = {"box": box, **({"state": state} if state else {})}
    with api(node, url, cacert, token) as client:
        messages = call(client, "GET", "/messages", params=params)["messages"]
    if as_json:
        print(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    table = Table("id", "prec", "from → to", "type", "created", "deadline", "state", "text")
    for m in messages:
        text = m["body"].get("text") or json.dumps(m["body"], ensure_ascii=False)
        table.add_row(
            m["id"], m["precedence"], f"{m['from']} → {m['to']}", m["type"], m["created"], m["deadline"] or "",
            m["state"], text[:60],
        )  # fmt: skip
    out.print(table)


@app.command()
def ack(
    token: TokenOpt,
    message: Annotated[str, typer.Argument(help="the message id")],
    note: Annotated[str, typer.Option(help="optional note")] = "",
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Acknowledge a received message."""
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", f"/messages/{message}/ack", json={"note": note})
    print(f"acknowledged {message} with {result['id']}")


@app.command()
def decline(
    token: TokenOpt,
    message: Annotated[str, typer.Argument(help="the message id")],
    reason: Annotated[str, typer.Option(help="why")],
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Decline a received message, with the reason."""
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", f"/messages/{message}/decline", json={"reason": reason})
    print(f"declined {message} with {result['id']}")


@app.command()
def status(
    token: TokenOpt,
    peer: Annotated[str, typer.Option(help="the peer party, e.g. ir")],
    code: Annotated[str, typer.Option(help="TECH|DECLINED|AWAITING_AUTHORITY|BUSY|OK")],
    note: Annotated[str, typer.Option(help="a short explanation")] = "",
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Tell a peer why this side is (not) answering."""
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", "/status", json={"peer": peer, "code": code.upper(), "note": note})
    print(f"status {code.upper()} sent as {result['id']}")


@app.command()
def links(
    token: TokenOpt,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Show the link to each peer: state, last test, round trip, outbox depth, peer status."""
    with api(node, url, cacert, token) as client:
        rows = call(client, "GET", "/links")["links"]
    table = Table("peer", "state", "since", "last test", "rtt ms", "outbox", "peer status", "last error")
    for r in rows:
        peer_status = r["peer_status"]["code"] if r["peer_status"] else ""
        table.add_row(
            r["peer"], r["state"], r["since"] or "", r["last_test_at"] or "", str(r["rtt_ms"] or ""),
            str(r["outbox"]), peer_status, (r["last_error"] or "")[:50],
        )  # fmt: skip
    out.print(table)


@app.command("message")
def show_message(
    token: TokenOpt,
    message: Annotated[str, typer.Argument(help="the message id")],
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Print one message as JSON: envelope, receipt, acknowledgement, deadline and state."""
    with api(node, url, cacert, token) as client:
        print(json.dumps(call(client, "GET", f"/messages/{message}"), indent=2, ensure_ascii=False))
