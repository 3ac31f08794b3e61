"""Commands for the agreement's vocabulary: codebook messages, cases, actions, consultations, rebuild.

Every command but `rebuild` talks to a running node through its operator API:

    detente code send --code NO-HOSTILE-INTENT --param place=Panjgur --channel dgmo --to ir:dgmo
    detente codebook [--lang fa]
    detente case|action|consultation|clarification list|show   (`cli.workflow_lists`)
    detente evidence upload FILE                   prints the item an action.report lists
    detente rebuild --data DIR [--write]           projections from the log (node stopped to write)
"""

from __future__ import annotations

import math
import mimetypes
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from detente.cli.app import DataOpt, app
from detente.cli.arguments import CheckedCommand, check_id
from detente.cli.client import SENT, out
from detente.cli.terminal import dump_json, printable
from detente.cli.transport import CertOpt, NodeOpt, TokenOpt, UrlOpt, api, call, shape, text_language
from detente.errors import BadRequest

code_app = typer.Typer(help="Codebook messages: pre-agreed text in every language.", no_args_is_help=True)
case_app = typer.Typer(help="Cases: incident threads.", no_args_is_help=True)
action_app = typer.Typer(help="Coordinated actions.", no_args_is_help=True)
consultation_app = typer.Typer(help="Consultations: meetings, minutes, action items.", no_args_is_help=True)
clarification_app = typer.Typer(help="Clarification requests.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence files.", no_args_is_help=True)
app.add_typer(code_app, name="code")
app.add_typer(case_app, name="case")
app.add_typer(action_app, name="action")
app.add_typer(consultation_app, name="consultation")
app.add_typer(clarification_app, name="clarification")
app.add_typer(evidence_app, name="evidence")
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _params(pairs: list[str], types: dict[str, str]) -> dict[str, Any]:
    """Return `--param NAME=VALUE` pairs as the codebook types them (`int`, `number`, else text).

    Raises `BadRequest` for a pair without `=` or a value that is not of its type, and
    `BadParameter` (a usage error) for a `number` that is not finite (`nan`, `inf`, `1e999`): JSON
    cannot carry one, and the request would fail only when it is encoded.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadRequest(f"--param must be NAME=VALUE, not {pair!r}")
        try:
            kind = types.get(name, "text")
            params[name] = int(value) if kind == "int" else float(value) if kind == "number" else value
        except ValueError:
            raise BadRequest(f"--param {name} must be a {types[name]}, not {value!r}") from None
        if kind == "number" and not math.isfinite(params[name]):
            raise typer.BadParameter(f"{name} must be a finite number, not {value!r}", param_hint="'--param'")
    return params


def _check_ids(values: list[str] | None) -> list[str] | None:
    """Return the ids of a repeatable option; raise `BadParameter` for one `check_id` refuses."""
    return [check_id(value) for value in values] if values else values


@code_app.command("send", cls=CheckedCommand)
def code_send(
    token: TokenOpt,
    code: Annotated[str, typer.Option(help="the code, e.g. NO-HOSTILE-INTENT")],
    channel: Annotated[str, typer.Option(help="channel, e.g. dgmo")],
    to: Annotated[str, typer.Option(help="addressee office, e.g. ir:dgmo")],
    param: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable")] = None,
    precedence: Annotated[str | None, typer.Option(help="default: the entry's")] = None,
    lang: Annotated[str | None, typer.Option(help="the language you write in, in any case (default: yours)")] = None,
    note: Annotated[str, typer.Option(help="an optional free-text note")] = "",
    case: Annotated[str | None, typer.Option(help="the case it belongs to")] = None,
    ref: Annotated[
        list[str] | None, typer.Option(help="referenced envelope id, repeatable", callback=_check_ids)
    ] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Send a codebook message; prints its id and its text in every language."""
    with api(node, url, cacert, token) as client:
        if lang is not None:
            lang = text_language(client, lang)
        book = call(client, "GET", "/codebook", expect={"entries": list})["entries"]
        entries = {entry.get("code"): entry for entry in (shape(item, {}, "a codebook entry") for item in book)}
        types = _dict(entries.get(code, {}).get("params"))
        request: dict[str, Any] = {"channel": channel, "to": to, "code": code, "params": _params(param or [], types)}
        for key, value in (("precedence", precedence and precedence.upper()), ("lang", lang), ("case", case)):
            if value:
                request[key] = value
        if note:
            request["note"] = note
        if ref:
            request["refs"] = ref
        result = call(client, "POST", "/codes", json=request, expect={**SENT, "precedence": str})
    print(
        printable(
            f"{result['id']} seq {result['seq']} log {result['log_index']} {result['precedence']} {result['state']}"
        )
    )
    for language, text in _dict(result.get("rendered")).items():
        print(printable(f"  {language}: {text}"))


@app.command("codebook", cls=CheckedCommand)
def show_codebook(
    token: TokenOpt,
    lang: Annotated[str | None, typer.Option(help="show only this language (in any case)")] = None,
    as_json: JsonOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List the agreement's codebook: codes, parameters and their text."""
    with api(node, url, cacert, token) as client:
        if lang is not None:
            lang = text_language(client, lang)
        book = call(client, "GET", "/codebook", params={"lang": lang} if lang else {}, expect={"entries": list})
    if as_json:
        print(dump_json(book))
        return
    for item in book["entries"]:
        entry = shape(item, {}, "a codebook entry")
        params = ", ".join(f"{k}:{v}" for k, v in _dict(entry.get("params")).items())
        line = Text.assemble(
            (printable(entry.get("code")), "bold"), printable(f" {entry.get('precedence') or ''} {params}")
        )
        out.print(line, highlight=False)
        texts = _dict(entry.get("text"))
        for language in [lang] if lang else _list(book.get("languages")):
            print(printable(f"  {language}: {texts.get(language, '')}"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@evidence_app.command("upload", cls=CheckedCommand)
def evidence_upload(
    token: TokenOpt,
    file: Annotated[Path, typer.Argument(help="the file", exists=True, dir_okay=False)],
    media_type: Annotated[str | None, typer.Option(help="default: from the file name")] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Upload an evidence file; prints the JSON item to list in an action.report's evidence."""
    kind = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    # The name only labels the file: one that is not UTF-8 travels with U+FFFD for its odd bytes.
    name = os.fsencode(file.name).decode("utf-8", "replace")
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read {file}: {exc.strerror or exc}") from exc
    with api(node, url, cacert, token) as client:
        result = call(client, "POST", "/evidence", params={"name": name}, content=content,
                      headers={"Content-Type": kind}, expect={"evidence": dict})  # fmt: skip
    print(dump_json(result["evidence"], indent=None))


@app.command("rebuild")
def rebuild_command(
    data: DataOpt,
    write: Annotated[bool, typer.Option("--write", help="replace the tables by what the log says")] = False,
) -> None:
    """Rebuild the workflow projections from the log and report whether they match the tables."""
    from detente.node.rebuild import rebuild

    report = rebuild(data, write=write)
    counts = ", ".join(f"{n} {kind}(s)" for kind, n in report.counts.items())
    print(f"folded {report.envelopes} envelopes from the log: {counts}")
    for line in report.differences[:200]:
        print(f"  differs: {line}")
    if len(report.differences) > 200:
        print(f"  ... and {len(report.differences) - 200} more")
    if report.matches:
        print("the projection tables match the log")
    elif report.written:
        print(f"replaced the projection tables ({len(report.differences)} difference(s) fixed)")
    else:
        print(f"{len(report.differences)} difference(s); run again with --write (node stopped) to replace them")
        sys.exit(1)
