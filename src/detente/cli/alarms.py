"""What the command line shows of a node's alarms (`GET /api/v1/alarms`): a table, and a line for `links`.

An alarm is a node's record that a peer's log forked (`fork`: a checkpoint inconsistent with one
this node cosigned) or fails to prove an envelope its receipt placed there (`inclusion`). The link
may be UP all the while, so `detente links` says in one line after its table that there are
alarms, and `detente alarms` lists them. Every field is the other side's or the node's text, shown
through `terminal` (control characters visible, no markup).
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
from rich.table import Column, Table

from detente.cli.terminal import cell, compact_time, printable
from detente.cli.transport import ApiError, call, shape
from detente.errors import Error

# As many as the node lists by default: more than enough to say that there are alarms.
NOTE_LIMIT = 100


def alarm_table(alarms: list[Any]) -> Table:
    """Return a table of `alarms` (newest first, as the node gives them): created, kind, peer, summary.

    Raises `UnexpectedAnswer` if an alarm is not a JSON object.
    """
    # The date wraps above the time, and the summary wraps whole: at 80 columns nothing is cut.
    table = Table(
        Column("created", min_width=10),
        Column("kind", no_wrap=True),
        Column("peer", no_wrap=True),
        Column("summary", overflow="fold"),
    )
    for item in alarms:
        a = shape(item, {}, "an alarm in the node's answer")
        table.add_row(cell(compact_time(a.get("created"))), cell(a.get("kind")), cell(a.get("peer")),
                      cell(a.get("summary")))  # fmt: skip
    return table


def alarm_note(client: httpx.Client) -> str | None:
    """Return the line `links` prints after its table when the node holds alarms, or None.

    An operator who may not read the alarms (403), or a node without them (404), gets no line: the
    links are what was asked for. Any other failure to read them is said on standard error, since
    a fork alarm the operator cannot see is the danger this line is there for.
    """
    try:
        answer = call(client, "GET", "/alarms", params={"limit": NOTE_LIMIT}, expect={"alarms": list})
    except Error as exc:
        if not (isinstance(exc, ApiError) and exc.status_code in (403, 404)):
            print(f"warning: the node's alarms could not be read: {printable(exc.diagnostics())}", file=sys.stderr)
        return None
    found = [a for a in answer["alarms"] if isinstance(a, dict)]
    if not found:
        return None
    newest = found[0]
    what = f"{newest.get('kind')} in {newest.get('peer')}'s log at {compact_time(newest.get('created'))}"
    if len(found) == 1:
        return printable(f"1 alarm: {what} — detente alarms shows it")
    count = f"{len(found)} or more" if len(found) >= NOTE_LIMIT else str(len(found))
    return printable(f"{count} alarms, the newest: {what} — detente alarms shows them")
