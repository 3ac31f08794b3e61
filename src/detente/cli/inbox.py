"""`detente inbox`: the messages of the operator's offices, and finding one among them.

What it prints, and which filters it takes (the node's `GET /api/v1/messages`), are the command's
docstring below; the filters are checked here exactly as the node checks them (`core.search.parse`),
so a mistake is a usage error naming its option, before anything is sent.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, TextIO

import typer

from detente.cli.app import app
from detente.cli.arguments import CheckedCommand, check_since
from detente.cli.client import out
from detente.cli.terminal import TEXT_LIMIT, dump_json, print_messages
from detente.cli.transport import CertOpt, NodeOpt, TokenOpt, UrlOpt, api, call, shape
from detente.core import search
from detente.errors import Invalid

# The values `GET /api/v1/messages` takes: a typo is a usage error here, not a round trip.
Box = Literal["in", "out", "all"]
State = Literal["accepted", "delivered", "acknowledged", "declined", "overdue"]

_SEARCH_OPTIONS = {"q": "--find", "since": "--since", "until": "--until", "precedence": "--precedence",
                   "type": "--type", "id": "--id"}  # fmt: skip


def _check_search(**filters: Any) -> None:
    """Check a search's filters as the node will (`core.search.parse`); raise `BadParameter` naming the option."""
    try:
        search.parse(**filters)
    except Invalid as exc:
        fields = exc.extra.get("fields") or {}
        name, problem = next(iter(fields.items()), ("", exc.detail))
        raise typer.BadParameter(str(problem), param_hint=f"'{_SEARCH_OPTIONS.get(name, name)}'") from None


@app.command(cls=CheckedCommand)
def inbox(
    token: TokenOpt,
    box: Annotated[
        Box | None,
        typer.Option(help="received (in), sent (out) or both (all); default: in, or all with a search option"),
    ] = None,
    state: Annotated[State | None, typer.Option(help="only this state")] = None,
    find: Annotated[
        str | None,
        typer.Option(
            "--find", help="words that must all occur, in any case: in the text, a translation, a code's text"
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="only messages created at or after this RFC 3339 UTC time", callback=check_since)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="only messages created before this RFC 3339 UTC time", callback=check_since)
    ] = None,
    precedence: Annotated[
        list[str] | None, typer.Option(help="FLASH|IMMEDIATE|PRIORITY|ROUTINE, in any case; repeatable")
    ] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="only this message type; repeatable")] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    peer: Annotated[str | None, typer.Option(help="only messages to or from this peer, e.g. ir")] = None,
    message_id: Annotated[
        str | None, typer.Option("--id", help="the id, or its last 6 characters or more (…3f2a9c)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="the newest N messages, 1-1000 (the node's default: 100)", min=1, max=1000)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the messages as a JSON list")] = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List received (or sent) messages with their precedence, deadline and state, oldest first.

    A text is a codebook message's in your language, else one line of the body (`core.bodies.body_summary`:
    `status: contained, escalation: 2`), never raw JSON; `--json` gives the bodies as they are.

    Each id is whole, and each text whole up to 500 characters, wrapped: a table on a terminal wide
    enough for one, else a block per message. A longer text is cut at a word, ends in "…", and a
    line says that `detente message <id>` prints it whole. The node gives the newest `--limit` of
    them; when older ones match too, a line says so (on standard error with `--json`, whose output
    stays the list it always was).

    To find a message: `--find` takes words that must all occur (in its text and other values, a
    translation of it, or its code's text in any language), `--since` and `--until` a window
    (`--until` not included), `--precedence` and `--type` one or several, `--peer` the other side,
    `--id` the end of an id. Each is checked before anything is sent. With any of them but `--since`,
    the search covers sent messages too unless `--box` says otherwise.
    """
    _check_search(q=find, since=since, until=until, precedences=precedence, types=type_, message_id=message_id)
    if box is None:
        # A search looks for a message whichever way it went, as the console's Find does (QA: `--find`
        # missed what this office had sent); the inbox alone, or with its earlier options, is what came in.
        searching = any(v is not None for v in (find, until, precedence, type_, peer, message_id))
        box = "all" if searching else "in"
    given: dict[str, Any] = {
        "box": None if box == "all" else box, "state": state, "q": find, "since": since, "until": until,
        "precedence": [p.upper() for p in precedence] if precedence else None, "type": type_ or None,
        "channel": channel, "party": peer.lower() if peer else None, "id": message_id, "limit": limit,
    }  # fmt: skip
    params = {key: value for key, value in given.items() if value is not None}
    with api(node, url, cacert, token) as client:
        answer = call(client, "GET", "/messages", params=params, expect={"messages": list})
    if as_json:
        print(dump_json(answer["messages"]))
        _say_if_more(answer, sys.stderr)
        return
    cut = print_messages(out, [shape(item, {}, "a message in the node's answer") for item in answer["messages"]])
    if cut:
        # The id is on the row: the whole text is one command away, and the operator is told so.
        texts, are, each = ("1 text", "is", "it") if cut == 1 else (f"{cut} texts", "are", "each")
        print(f"{texts} over {TEXT_LIMIT} characters {are} cut (…): detente message <id> prints {each} whole")
    _say_if_more(answer, sys.stdout)


def _say_if_more(answer: dict[str, Any], stream: TextIO) -> None:
    # `more` arrived with the release that added it: an older node's answer is complete or silent.
    if answer.get("more", False) is True:
        shown = len(answer["messages"])
        print(
            f"showing the newest {shown}; older messages match too: raise --limit (at most 1000), "
            "or narrow with --since, --until, --state or --find",
            file=stream,
        )
