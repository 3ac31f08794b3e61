"""What the command line prints: text from the other side, made safe for the operator's terminal.

Message texts, notes, reasons, names and error details come from the other state's operators and
nodes. Printed raw, an ESC sequence among them could rewrite the operator's screen, retitle the
window, hide lines or forge output, and a `[bold]` or `[/]` would be read as Rich markup (styled,
or a crash). So everything from a node is printed through `printable` (or `cell` in a table):

- every control character (C0, DEL, C1) shows as a visible escape: `\\n`, `\\r`, `\\t`, else `\\xNN`
  (`\\x1b` for ESC, `\\x9b` for the one-byte CSI); so do the line and paragraph separators
  U+2028/U+2029, which some programs take for line breaks;
- a lone surrogate (a byte that was not UTF-8, as Python hands it over, or a `\\udHHH` escape in
  JSON, H a hex digit) shows as `\\xNN` for the byte, else `\\udHHH`, instead of failing to print;
- so do the bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): in
  a terminal that lays out right-to-left text they reorder what follows them, so that a peer's
  text could make the rest of its line, an id or a time beside it, read otherwise (the "Trojan
  Source" trick). Unlike a mark, each opens a scope that runs past the text it came in;
- everything else passes unchanged: Urdu and Persian letters, the zero-width (non-)joiners and
  direction marks (U+200E, U+200F, U+061C) right-to-left text needs, emoji.

A literal backslash is left as it is, so `\\x1b` typed as four characters reads the same as an
escaped ESC; `--json` output is exact where that matters. `dump_json` writes JSON that means the
same value as the node's answer but cannot move the terminal either: JSON already escapes C0, and
the C1 controls, separators and lone surrogates are written as `\\uHHHH` escapes too.

Nothing from the other side is cut silently: `clip` shortens only a text beyond its bound, at a
word boundary, and marks the cut with "…" (the caller says where the whole text is). Times are
written compactly (`compact_time`), and `print_messages` and `print_links` lay out what `inbox` and
`links` show so that it fits 80 columns (any terminal's default, and a pipe's) with every id whole
and every text wrapped, never cut.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from detente.core.bodies import body_summary, clip
from detente.core.precedence import parse_time
from detente.errors import Invalid

# C0 controls, DEL, C1 controls, the line/paragraph separators, bidi scopes and surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What `json.dumps(ensure_ascii=False)` leaves raw that a terminal may act on (it escapes C0 itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# `inbox` shows a text whole up to this many characters (wrapped); `detente message` prints any whole.
TEXT_LIMIT = 500
# The narrowest text column a table of messages gets; a terminal too narrow for it gets blocks.
TEXT_MIN = 40


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object) -> str:
    """Return `value` as text with every control character shown as a visible escape."""
    return _UNSAFE.sub(_escape, value if isinstance(value, str) else str(value))


def printable_lines(value: object) -> str:
    """Return `printable(value)` line by line: its own line breaks kept, every other control escaped."""
    return "\n".join(printable(line) for line in str(value).split("\n"))


def value_text(value: object) -> str:
    """Return a value of a node's answer as one line of a list: text as it is, None as "", any other
    value as JSON writes it (`false`, `3`, `["pk:dgmo"]`, as `show` prints it), made `printable`."""
    if value is None:
        return ""
    return printable(value) if isinstance(value, str) else dump_json(value, indent=None)


def cell(value: object) -> Text:
    """Return a table cell showing `value` literally: no markup, no emoji codes, no control characters."""
    return Text(printable("" if value is None else value))


def dump_json(value: Any, indent: int | None = 2) -> str:
    """Return `value` as JSON (indented, unless `indent` is None), readable in any script and inert in a terminal."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# A day no time is of: `compact_time` then writes every time with its date.
NO_DAY = date.min


def shown_today(console: Console) -> date:
    """Return the UTC day whose times `console` shows without their date: today on a terminal; on a
    file, a pipe or a printer, no day (`NO_DAY`): what is kept is read on other days (QA, a handover
    printed before midnight UTC and read after it)."""
    return datetime.now(UTC).date() if console.is_terminal else NO_DAY


def compact_time(value: object, today: date | None = None) -> str:
    """Return a node's RFC 3339 UTC time briefly: `13:05:00Z` on `today` (UTC), else `2024-01-16 13:05Z`.

    `today` defaults to the current UTC date. None is "", and a value that is not such a time is
    shown as `printable` shows it: the node's word, never dropped.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        return printable(value)
    try:
        moment = parse_time(value)
    except Invalid:
        return printable(value)
    if moment.date() == (today or datetime.now(UTC).date()):
        return f"{moment:%H:%M:%S}Z"
    # A space, not a `T`: a narrow column wraps the time under the date instead of cutting it.
    return f"{moment:%Y-%m-%d %H:%M}Z"


def _text_of(m: dict[str, Any]) -> str:
    """Return what a message says: its rendered codebook text (with its sender's note), else the line
    `core.bodies.body_summary` makes of its body (its text, title, description..., else its short members)."""
    # A codebook message reads as the node renders it in this operator's language, not as its
    # code and params; any other body as one readable line, never as raw JSON.
    body = m.get("body")
    text = m.get("rendered_text")
    if isinstance(text, str):
        # The sender's own words beside the code ("EXCEPT the battery at Saravan") may reverse its
        # meaning: they are part of what the message says, marked as the sender's.
        note = body.get("note") if isinstance(body, dict) else None
        return f"{text} | sender's note: {note}" if isinstance(note, str) and note.strip() else text
    return body_summary(body)


def print_messages(console: Console, messages: list[dict[str, Any]]) -> int:
    """Print `messages` (the node's objects) on `console`: a table if it is wide enough, else a block each.

    Every id is whole (it is what `ack` and `message` take), and every text whole up to
    `TEXT_LIMIT` characters, wrapped; a longer one is cut at a word and ends in "…". Returns how
    many texts were cut.
    """
    if not messages:
        # Said, not an empty table: at 80 columns there would be nothing at all to read.
        console.print("no messages")
        return 0
    today = shown_today(console)
    rows, cut = [], 0
    for m in messages:
        text, clipped = clip(_text_of(m), TEXT_LIMIT)
        cut += clipped
        route = f"{printable(m.get('from'))} → {printable(m.get('to'))}"
        fields = (m.get("id"), m.get("precedence"), route, m.get("type"), compact_time(m.get("created"), today),
                  compact_time(m.get("deadline"), today), m.get("state"))  # fmt: skip
        rows.append([printable("" if v is None else v) for v in fields] + [printable(text)])
    headers = ["id", "prec", "from → to", "type", "created", "deadline", "state"]
    # A table needs the widest value of each column, a border and two spaces a column, and room
    # for the text; below that (80 columns: any terminal, or a pipe) a table would squeeze every
    # column to a few letters, so each message gets a block, its id on a line of its own.
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if sum(widths) + 3 * (len(headers) + 1) + 1 + TEXT_MIN <= console.width:
        table = Table(*(Column(h, no_wrap=True) for h in headers), Column("text", overflow="fold"))
        for row in rows:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return cut
    prec = max((cell_len(r[1]) for r in rows), default=0)
    for i, (id_, precedence, route, type_, created, deadline, state, text) in enumerate(rows):
        if i:
            console.print()
        console.print(Text(f"{id_}  {precedence.ljust(prec)}  {state}"), overflow="fold")
        _labelled(console, [f"{route}  {type_}", f"created {created}", *([f"deadline {deadline}"] if deadline else [])])
        _indented(console, text)
    return cut


def print_records(console: Console, headers: list[str], rows: list[list[str]], none: str) -> None:
    """Print `rows` under `headers`: a table if every value fits whole, else a block per row.

    The first column (an id: what `show` takes) and the second (a status) head each block, whole;
    the others follow as `header value`, wrapped and indented. `none` is said when there are no rows.
    """
    if not rows:
        console.print(none)  # said, not an empty table
        return
    # As `print_messages`: at 80 columns (any terminal, or a pipe) a table would squeeze the titles
    # and ids to a few letters ("stat…", "Panj…"), so each row gets a block when they do not fit.
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if sum(widths) + 3 * (len(headers) + 1) + 1 <= console.width:
        table = Table(*(Column(h, no_wrap=True) for h in headers))
        for row in rows:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return
    for i, row in enumerate(rows):
        if i:
            console.print()
        console.print(Text("  ".join(v for v in row[:2] if v)), overflow="fold")
        _labelled(console, [f"{h} {v}" for h, v in zip(headers[2:], row[2:], strict=True) if v])


def _labelled(console: Console, pairs: list[str]) -> None:
    """Print `pairs` (each `label value`) indented, as many to a line as fit, two spaces apart.

    A line breaks between pairs, never inside one that fits a line: wrapped at any space, a label
    would end one line and its value begin the next (`requester` / `ir:dgmo`), or a time would
    lose its hour. Only a pair wider than the line is wrapped, as `_indented` wraps it.
    """
    room = max(console.width - 2, 1)
    line = ""
    for pair in pairs:
        if line and cell_len(line) + 2 + cell_len(pair) <= room:
            line += "  " + pair
            continue
        if line:
            _indented(console, line)
        line = pair
    if line:
        _indented(console, line)


def _indented(console: Console, text: str) -> None:
    """Print `text` wrapped to `console`'s width, each line indented by two spaces (none padded after)."""
    for line in Text(text, overflow="fold").wrap(console, max(console.width - 2, 1)):
        line.rstrip()
        console.print(Text("  ") + line, no_wrap=True, crop=False)


def print_links(console: Console, links: list[dict[str, Any]]) -> None:
    """Print `links` (the node's objects) on `console`: a table of their figures, then each peer's
    statuses and last error, wrapped.

    The round trip and the clock are those of the last answer: a link that is not UP shows "—".
    """
    today = shown_today(console)
    # Short columns only, so that the table fits 80 columns (a time of another day wraps under its
    # date); the free text (statuses, the last error) goes below it, as wide as the terminal.
    table = Table(
        Column("peer", no_wrap=True), Column("state", no_wrap=True), Column("since", min_width=10),
        Column("last test", min_width=10), Column("rtt ms", justify="right"), Column("clock ms", justify="right"),
        Column("outbox", justify="right"),
    )  # fmt: skip
    details = Table.grid(Column(no_wrap=True), Column(no_wrap=True), Column(overflow="fold"), padding=(0, 2))
    for r in links:
        up = r.get("state") == "UP"
        # Each office's newest status, named by office (an older node gives one, without the office).
        told = r.get("peer_statuses")
        if not isinstance(told, list):
            told = [r["peer_status"]] if isinstance(r.get("peer_status"), dict) else []
        code = "; ".join(
            " ".join(str(s[k]) for k in ("office", "code") if s.get(k)) for s in told if isinstance(s, dict)
        )
        figures = [r.get("rtt_ms"), r.get("clock_offset_ms")]
        table.add_row(
            cell(r.get("peer")), cell(r.get("state")), cell(compact_time(r.get("since"), today)),
            cell(compact_time(r.get("last_test_at"), today) if r.get("last_test_at") else "never"),
            *(cell(value if up and value is not None else "—") for value in figures), cell(r.get("outbox")),
        )  # fmt: skip
        shown = [(label, value) for label, value in (("peer status", code), ("last error", r.get("last_error")))
                 if value]  # fmt: skip
        for i, (label, value) in enumerate(shown):
            details.add_row(cell(r.get("peer") if i == 0 else ""), cell(label), cell(value))
    console.print(table)
    if details.row_count:
        console.print(details)
