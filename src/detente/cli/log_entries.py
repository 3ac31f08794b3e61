"""`detente log entries EXPORT`: the entries of a log export, listed and counted offline.

An audit says how many envelopes each party sent; an auditor reconciling that with what each side
says it sent needs the envelopes themselves: which, of which type, between which offices, answering
which message. This command lists them from the export, one line each (or one JSON object each, for
`jq`), with the selections an auditor asks for, and counts them by type. It reads; `detente audit`
verifies, and the listing says so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from detente.cli.arguments import CheckedCommand, check_prefixes
from detente.cli.log import export_reader, log_app
from detente.cli.terminal import dump_json, printable
from detente.core import log_listing
from detente.core.envelope import Envelope

ListOpt = list[str] | None


@log_app.command("entries", cls=CheckedCommand)
def log_entries(
    export: Annotated[
        Path, typer.Argument(help="the directory `detente log export` wrote", exists=True, file_okay=False)
    ],
    types: Annotated[
        ListOpt,
        typer.Option("--type", help="only envelopes of this type (hotline.text, ack, link.test, …); repeatable"),
    ] = None,
    offices: Annotated[
        ListOpt, typer.Option("--office", help="only envelopes this office sent or was sent (pk:dgmo); repeatable")
    ] = None,
    ids: Annotated[
        ListOpt,
        typer.Option("--id", help="only the envelope whose id begins so; repeatable", callback=check_prefixes),
    ] = None,
    refers_to: Annotated[
        ListOpt,
        typer.Option(
            "--refers-to",
            help="only envelopes that refer to a message whose id begins so (its answers, acks, translations); "
            "repeatable",
            callback=check_prefixes,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per line: {index, envelope} (or {index, problem})")
    ] = False,
) -> None:
    """List the entries of a log export: log index, time, type, precedence, sender → addressee, id, refs.

    Offline, from the export's files alone; nothing is verified (`detente audit` does that). The
    counts by type go last (to standard error with --json), with a hint for a --type, --office,
    --id or --refers-to that no entry of the log matches. Exits 1 if an entry is not an envelope
    (it is listed with why) or an entry bundle is missing or damaged (the entries before the damage
    are listed).
    """
    selection = log_listing.Selection(
        types=frozenset(types or ()),
        offices=frozenset(offices or ()),
        ids=tuple(ids or ()),
        refers_to=tuple(refers_to or ()),
    )
    read = export_reader(export)
    tree = log_listing.tree_of(read)
    summary = sys.stderr if as_json else sys.stdout
    if not as_json:
        print(f"log {printable(tree.origin)}, size {tree.size}: the entries as exported, not verified by this listing")
    tally = log_listing.Tally(selection)
    try:
        for item in log_listing.entries(read, tree.size):
            listed = log_listing.chosen(item, selection)
            tally.add(item, listed)
            if listed:
                print(_json_line(item) if as_json else _line(item))
    finally:
        _print_summary(tally, tree.size, summary)
    if tally.problems:
        print(
            f"error: {tally.problems} of the entries are not envelopes; `detente audit` says more",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def _line(item: log_listing.Listed) -> str:
    env = item.envelope
    if env is None:
        return printable(f"{item.index:>7}  {item.problem}")
    offices = log_listing.offices_of(env)
    answered = f" (answered by {offices[2]})" if len(offices) > 2 else ""
    return printable(
        f"{item.index:>7}  {env.created:<24}  {env.type:<22} {env.data['precedence']:<9} "
        f"{env.sender} → {env.recipient}{answered}  {env.id}{_refs(env)}"
    )


def _refs(env: Envelope) -> str:
    refs = env.refs
    if not refs:
        return ""
    return f"  re {refs[0]}" + (f" (+{len(refs) - 1})" if len(refs) > 1 else "")


def _json_line(item: log_listing.Listed) -> str:
    if item.envelope is None:
        return dump_json({"index": item.index, "problem": item.problem}, indent=None)
    return dump_json({"index": item.index, "envelope": item.envelope.data}, indent=None)


def _print_summary(tally: log_listing.Tally, size: int, out: TextIO) -> None:
    listed = sum(tally.listed.values())
    by_type = ", ".join(f"{kind} {n}" for kind, n in sorted(tally.listed.items())) or "none"
    read = "" if tally.total == size else f" (read {tally.total} before the error)"
    print(f"{listed} of {size} entries listed{read}: {by_type}", file=out)
    for hint in tally.hints() if tally.total == size else ():
        print(printable(f"hint: {hint}"), file=out)
