"""Commands that talk to a running node through its operator API, as an operator would.

Every command here is a `CheckedCommand` (text that is not UTF-8 is a usage error), takes ids as one
URL path segment (`arguments.segment`), reaches the node through `transport.call` (a redirect or an
answer of the wrong shape is an error, never a `KeyError`), and prints what the node says through
`terminal` (control characters visible, no markup).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from detente.cli.alarms import alarm_note, alarm_table
from detente.cli.app import app
from detente.cli.arguments import CheckedCommand, check_id, segment
from detente.cli.terminal import dump_json, print_links, printable
from detente.cli.transport import CertOpt, NodeOpt, TokenOpt, UrlOpt, api, call, shape, text_language
from detente.errors import BadRequest, Error

out = Console()

IdArg = Annotated[str, typer.Argument(help="the message id", callback=check_id)]
SENT = {"id": str, "seq": int, "log_index": int, "state": str}


def _sent_line(result: dict[str, Any]) -> str:
    return printable(f"{result['id']} seq {result['seq']} log {result['log_index']} {result['state']}")


def load_json(text: str | bytes, what: str) -> Any:
    """Parse JSON text; raise `BadRequest` naming `what` if it is not JSON or nests too deeply."""
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest(f"{what} nests JSON too deeply to read") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 text: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not JSON: {exc}") from None


@app.command(cls=CheckedCommand)
def send(
    token: TokenOpt,
    channel: Annotated[str, typer.Option(help="channel, e.g. dgmo")],
    to: Annotated[str, typer.Option(help="addressee office, e.g. ir:dgmo")],
    text: Annotated[str | None, typer.Option(help="free text (type hotline.text)")] = None,
    type_: Annotated[str, typer.Option("--type", help="message type")] = "hotline.text",
    body: Annotated[str | None, typer.Option(help="the body as JSON (instead of --text)")] = None,
    precedence: Annotated[str, typer.Option(help="FLASH|IMMEDIATE|PRIORITY|ROUTINE")] = "ROUTINE",
    ref: Annotated[list[str] | None, typer.Option(help="referenced envelope id, repeatable")] = None,
    case: Annotated[
        str | None,
        typer.Option(help="the case it belongs to: the id of the incident.report or case.open that opened it"),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="the language the text is written in, in any case (default: your language)"),
    ] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Send a message; prints its id, sequence number and log index once it is durably accepted.

    The envelope names the language of its text (`--lang`, one of the agreement's: en, ur, fa for
    pk-ir, in any case); without it, the operator's language on the node, which may not be the
    text's. A blank --lang is refused, naming the agreement's languages.

    `--case` puts the message in a case's timeline (a `case.update` needs it); `--ref` only refers to
    an envelope, and does not make the message part of that envelope's case.
    """
    if body is not None and text is not None:
        raise typer.BadParameter("give --text or --body, not both", param_hint="'--body'")
    if body is not None:
        try:
            payload = load_json(body, "--body")
        except BadRequest as exc:
            raise typer.BadParameter(exc.detail.removeprefix("--body "), param_hint="'--body'") from None
    elif text is not None:
        payload = {"text": text}
    else:
        raise typer.BadParameter("give --text or --body", param_hint="'--text'")
    request = {"channel": channel, "to": to, "precedence": precedence.upper(), "type": type_, "body": payload}
    if ref:
        request["refs"] = ref
    if case is not None:
        request["case"] = case
    with api(node, url, cacert, token) as client:
        if lang is not None:
            request["lang"] = text_language(client, lang)
        result = call(client, "POST", "/messages", json=request, expect=SENT)
        print(_sent_line(result))
        _warn_if_link_down(client, [to], [channel])


@app.command("send-batch", cls=CheckedCommand)
def send_batch(
    token: TokenOpt,
    file: Annotated[Path, typer.Argument(help="a JSON file: a list of messages as POST /api/v1/messages takes them")],
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Send up to 100 messages from a file, in order, all or none; prints a line per message.

    The file holds a JSON list, or `{"messages": [...]}`; `-` reads standard input. A precedence
    and a language may be written in any case (`flash`, `UR`), as with `send`. If any message is
    refused, none is sent, and the error names it (`messages.<i>`, counting from 0).
    """
    stdin = str(file) == "-"
    what = "standard input" if stdin else str(file)
    try:
        # Bytes, then strict UTF-8: text read from a stream would carry bytes that are not UTF-8
        # as lone surrogates, which fail only when the request is encoded.
        raw = sys.stdin.buffer.read() if stdin else file.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read {what}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 text: {exc}") from None
    payload = load_json(text, what)
    if isinstance(payload, list):
        payload = {"messages": payload}
    listed = payload.get("messages") if isinstance(payload, dict) else None
    with api(node, url, cacert, token) as client:
        for i, message in enumerate(listed if isinstance(listed, list) else []):
            # As `send` takes them (`--precedence flash`, `--lang UR`); the node checks everything else.
            if isinstance(message, dict) and isinstance(message.get("precedence"), str):
                message["precedence"] = message["precedence"].upper()
            if isinstance(message, dict) and isinstance(message.get("lang"), str):
                message["lang"] = _batch_language(client, message["lang"], i)
        result = call(client, "POST", "/messages/batch", json=payload, expect={"messages": list})
        lines = [_sent_line(shape(sent, SENT, "a message in the node's answer")) for sent in result["messages"]]
        print("\n".join(lines))
        messages = [m for m in payload["messages"] if isinstance(m, dict)]
        _warn_if_link_down(client, [m.get("to") for m in messages], [m.get("channel") for m in messages])


def _batch_language(client: Any, value: str, i: int) -> str:
    """Return message `i`'s language as `send --lang` takes it; raise `BadRequest` naming it if it is blank."""
    try:
        return text_language(client, value)
    except typer.BadParameter as exc:
        raise BadRequest(f"messages.{i}.lang: {exc.message}") from None


def _warn_if_link_down(client: Any, addressees: list[Any], channels: list[Any] | None = None) -> None:
    """After a send, say on standard error which addressed peers the node cannot reach now.

    `accepted` means signed, logged and queued here; a duty officer who sends over a link that is
    DOWN (the peer does not answer, or refuses: another agreement, another key), or on a channel
    the peer has stopped at an envelope it refuses, must know at once, to use another means while
    the node keeps trying. A failure to read the links is said too: the message itself was
    accepted either way.
    """
    parties = {a.split(":", 1)[0] for a in addressees if isinstance(a, str) and ":" in a}
    try:
        answer = call(client, "GET", "/links", expect={"links": list})
    except Error as exc:
        print(f"warning: sent, but the link state could not be read: {exc.diagnostics()}", file=sys.stderr)
        return
    for link in answer["links"]:
        if not isinstance(link, dict) or link.get("peer") not in parties:
            continue
        if link.get("state") != "UP":
            since = f" since {link['since']}" if link.get("since") else ""
            error = f": {link['last_error']}" if link.get("last_error") else ""
            print(
                printable(
                    f"warning: the link to {link['peer']} is {link.get('state')}{since}{error}; "
                    f"the message is queued and goes when {link['peer']} answers"
                ),
                file=sys.stderr,
            )
        for line in _refusals(link, channels):
            print(line, file=sys.stderr)


def _refusals(link: dict[str, Any], channels: list[Any] | None = None) -> list[str]:
    """Lines naming each channel to this peer stalled at an envelope it refuses (of `channels`, if given)."""
    lines = []
    for head in link.get("refused") or []:
        if not isinstance(head, dict) or (channels is not None and head.get("channel") not in channels):
            continue
        lines.append(
            printable(
                f"warning: {link.get('peer')} refuses envelope {head.get('envelope_id')} (seq {head.get('seq')}) on "
                f"channel {head.get('channel')}: {head.get('last_error')}; it and the {head.get('waiting_behind')} "
                "queued behind it wait until a person acts (the node keeps trying)"
            )
        )
    return lines


# The option of `inbox` each filter of a search comes from, to name it in a usage error.
@app.command(cls=CheckedCommand)
def ack(
    token: TokenOpt,
    message: IdArg,
    note: Annotated[str, typer.Option(help="optional note")] = "",
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Acknowledge a received message."""
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", f"/messages/{segment(message)}/ack", json={"note": note}, expect={"id": str})
    print(printable(f"acknowledged {message} with {result['id']}"))


@app.command(cls=CheckedCommand)
def decline(
    token: TokenOpt,
    message: IdArg,
    reason: Annotated[str, typer.Option(help="why")],
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Decline a received message, with the reason."""
    with api(node, url, cacert, token) as client:
        path = f"/messages/{segment(message)}/decline"
        result = call(client, "POST", path, json={"reason": reason}, expect={"id": str})
    print(printable(f"declined {message} with {result['id']}"))


@app.command(cls=CheckedCommand)
def status(
    token: TokenOpt,
    code: Annotated[str, typer.Option(help="TECH|DECLINED|AWAITING_AUTHORITY|BUSY|OK")],
    peer: Annotated[
        list[str] | None, typer.Option(help="the peer party, e.g. ir; repeatable (default: every peer)")
    ] = None,
    note: Annotated[str, typer.Option(help="a short explanation")] = "",
    office: Annotated[str | None, typer.Option(help="the office it is sent for, if you hold several")] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Tell a peer why this side is (not) answering: without --peer, every peer (in a group of states,
    "we are busy" is for all of them), one signed status each, in the order of `links`.

    Every --peer is checked against the node's peers before any status is sent, and so is whether
    you hold several offices, which needs --office. If the node fails midway (it stops, its
    database is unavailable), the command stops there, having said which were sent: send again
    to the others.
    """
    with api(node, url, cacert, token) as client:
        known = [
            str(shape(item, {"peer": str}, "a link in the node's answer")["peer"])
            for item in call(client, "GET", "/links", expect={"links": list})["links"]
        ]
        peers = list(dict.fromkeys(p.lower() for p in peer or [])) or known
        unknown = [p for p in peers if p not in known]
        if unknown:
            raise typer.BadParameter(
                f"not a peer of this node: {', '.join(unknown)} (its peers: {', '.join(known)}); nothing was sent",
                param_hint="--peer",
            )
        if office is None:
            # The node would refuse each request naming its `office` field; this names the option.
            offices = call(client, "GET", "/me", expect={"offices": list})["offices"]
            if len(offices) > 1:
                raise typer.BadParameter(
                    printable(f"you hold several offices ({', '.join(map(str, offices))}): say for which one the "
                              "status is sent; nothing was sent"),
                    param_hint="--office",
                )  # fmt: skip
        for one in peers:
            request = {"peer": one, "code": code.upper(), "note": note, **({"office": office} if office else {})}
            result = call(client, "POST", "/status", json=request, expect={"id": str})
            print(printable(f"status {code.upper()} sent to {one} as {result['id']}"))


@app.command(cls=CheckedCommand)
def links(
    token: TokenOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print the node's answer (GET /api/v1/links)")] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Show the link to each peer: state, last test, round trip, the peer's clock, outbox depth, and the
    newest status each of the peer's offices told this side, and the last error.

    The round trip and the clock are those of the last answer, so a link that is not UP shows "—".
    A line after the table says when the node holds alarms (`detente alarms` lists them). A peer
    whose clock is off this node's by a second or more is named in a warning on standard error.
    With `--json`, the node's answer is printed as it is, and the alarms line goes to standard error.
    """
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", "/links", expect={"links": list})
        # Fetched alongside: a forked log may sit behind a link that is UP and error-free.
        alarm = alarm_note(client)
    rows = [shape(item, {}, "a link in the node's answer") for item in answer["links"]]
    if as_json:
        print(dump_json(answer))
    else:
        print_links(out, rows)
    if alarm:
        # After the table; with --json, standard output stays the node's answer alone.
        print(alarm, file=sys.stderr if as_json else sys.stdout)
    warnings = []
    for r in rows:
        if r.get("clock_warning"):
            warnings.append(
                printable(f"warning: {r.get('peer')}: {r['clock_warning']}; deadlines here follow our clock")
            )
        warnings += _refusals(r)
    for line in warnings:
        print(line, file=sys.stderr)


@app.command(cls=CheckedCommand)
def alarms(
    token: TokenOpt,
    limit: Annotated[
        int | None, typer.Option(help="the newest N alarms, 1-1000 (the node's default: 100)", min=1, max=1000)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the node's answer, evidence and all, as JSON")] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List the node's alarms, newest first: a peer's log that forked, or fails to prove an envelope.

    Each shows when, what, whose log and the node's summary; `--json` prints the node's answer (GET
    /api/v1/alarms) as it is, with the evidence of each, which stands on its own.
    """
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", "/alarms", params={"limit": limit} if limit else {}, expect={"alarms": list})
    if as_json:
        print(dump_json(answer))
        return
    if not answer["alarms"]:
        print("no alarms: every checkpoint and proof this node checked was consistent")
        return
    out.print(alarm_table(answer["alarms"]))
    print("each alarm's evidence: detente alarms --json, or the console's Record page")


@app.command("message", cls=CheckedCommand)
def show_message(
    token: TokenOpt,
    message: IdArg,
    translations: Annotated[
        bool, typer.Option("--translations", help="list its translations and their reviews for people, not the JSON")
    ] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Print one message as JSON: envelope, receipt, acknowledgement, deadline, state, and what refers to it.

    With `--translations`, list its translations instead: language, translator, time, text, and reviews.
    """
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", f"/messages/{segment(message)}", expect={"id": str, "envelope": dict})
    if not translations:
        # The JSON stays what the command prints: saved, it is the envelope `log verify-proof --envelope` takes.
        print(dump_json(answer))
        return
    # Imported here: `cli.app` registers the translation commands after these, and `--help` lists them so.
    from detente.cli.translations import translation_lines

    print("\n".join(translation_lines(answer)))
