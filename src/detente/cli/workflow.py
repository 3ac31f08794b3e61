"""Commands for the agreement's vocabulary: codebook messages, cases, actions, consultations, rebuild.

Every command but `rebuild` talks to a running node through its operator API:

    detente code send --code NO-HOSTILE-INTENT --param place=Panjgur --channel dgmo --to ir:dgmo
    detente codebook [--lang fa]
    detente case list|show, detente action list|show, detente consultation list|show,
    detente clarification list                     (operator API, like `detente inbox`)
    detente evidence upload FILE                   prints the item an action.report lists
    detente rebuild --data DIR [--write]           projections from the log (node stopped to write)
"""

from __future__ import annotations

import json
import math
import mimetypes
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from detente.cli.app import DataOpt, app
from detente.cli.arguments import CheckedCommand, check_id, segment
from detente.cli.client import SENT, out
from detente.cli.terminal import cell, dump_json, printable
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


def _get(
    token: str, node: Path | None, url: str | None, cacert: Path | None, path: str, key: str, kind: type, **params: Any
) -> dict[str, Any]:
    """GET `path`; return the answer, which must hold `key` of type `kind` (else `UnexpectedAnswer`)."""
    with api(node, url, cacert, token) as client:
        query = {k: v for k, v in params.items() if v is not None}
        return call(client, "GET", path, params=query, expect={key: kind})


def _table(items: list[Any], columns: list[tuple[str, str]]) -> None:
    table = Table(*(title for title, _ in columns))
    for item in items:
        row = shape(item, {}, "an item in the node's answer")
        table.add_row(*(cell(row.get(key)) for _, key in columns))
    out.print(table)


def _timeline(detail: dict[str, Any]) -> None:
    # Every step is read with defaults: a step of an unexpected shape shows blanks, not a KeyError.
    for item in _list(detail.get("timeline")):
        step, at = _dict(item), _dict(_dict(item).get("at"))
        local = "  ".join(f"{p} {str(t)[11:16]}" for p, t in _dict(at.get("local")).items())
        status = step.get("status") or step.get("note") or ""
        kind, sender = str(step.get("type", "")), str(step.get("sender", ""))
        print(printable(f"  {at.get('dtg', '')}  {local}  {kind:<24} {sender:<16} {status}"))
    for item in _list(detail.get("conflicts")):
        conflict = _dict(item)
        print(printable(f"  CONFLICT {conflict.get('type')} {conflict.get('envelope')}: {conflict.get('reason')}"))


def _lister(path: str, key: str, columns: list[tuple[str, str]]) -> Any:
    def command(
        token: TokenOpt,
        status: Annotated[str | None, typer.Option(help="only this status")] = None,
        as_json: JsonOpt = False,
        node: NodeOpt = None,
        url: UrlOpt = None,
        cacert: CertOpt = None,
    ) -> None:
        items = _get(token, node, url, cacert, path, key, list, status=status)[key]
        if as_json:
            print(dump_json(items))
        else:
            _table(items, columns)

    command.__doc__ = f"List {key}, newest first."
    return command


def _shower(path: str, key: str, fields: list[str]) -> Any:
    def command(
        token: TokenOpt,
        target: Annotated[str, typer.Argument(help="its id", callback=check_id)],
        as_json: JsonOpt = False,
        node: NodeOpt = None,
        url: UrlOpt = None,
        cacert: CertOpt = None,
    ) -> None:
        detail = _get(token, node, url, cacert, f"{path}/{segment(target)}", key, dict)
        if as_json:
            print(dump_json(detail))
            return
        state = detail[key]
        print(
            printable("  ".join(f"{f}: {json.dumps(state.get(f), ensure_ascii=False)}" for f in fields if f in state))
        )
        _timeline(detail)
        for office, types in _dict(detail.get("allowed")).items():
            allowed = ", ".join(str(t) for t in _list(types))
            print(printable(f"  {office} may send: {allowed or 'nothing now'}"))

    command.__doc__ = f"Show one {key}: state and timeline (UTC, each party's local time, DTG)."
    return command


COMMON = [("id", "id"), ("status", "status"), ("created", "created"), ("updated", "updated_at")]
case_app.command("list", cls=CheckedCommand)(
    _lister("/cases", "cases", [*COMMON, ("title", "title"), ("opened by", "opened_by")])
)
case_app.command("show", cls=CheckedCommand)(_shower("/cases", "case", ["title", "status", "escalation", "opened_by"]))
action_app.command("list", cls=CheckedCommand)(
    _lister(
        "/actions",
        "actions",
        [*COMMON, ("proposer", "proposer"), ("target", "target_group"), ("unilateral", "unilateral")],
    )  # fmt: skip
)
action_app.command("show", cls=CheckedCommand)(
    _shower(
        "/actions",
        "action",
        [
            "status",
            "proposer",
            "counterpart",
            "window_start",
            "window_end",
            "unilateral",
            "unilateral_reason",
            "outside_window",
            "evidence",
        ],
    )  # fmt: skip
)
consultation_app.command("list", cls=CheckedCommand)(
    _lister("/consultations", "consultations", [*COMMON, ("title", "title")])
)
consultation_app.command("show", cls=CheckedCommand)(
    _shower(
        "/consultations",
        "consultation",
        ["title", "status", "start", "venue", "minutes_sha256", "cosigned_by", "items"],
    )  # fmt: skip
)
clarification_app.command("list", cls=CheckedCommand)(
    _lister(
        "/clarifications",
        "clarifications",
        [*COMMON, ("requester", "requester"), ("deadline", "deadline"), ("late", "late"), ("overdue", "overdue")],
    )  # fmt: skip
)


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
