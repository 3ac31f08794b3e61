"""Text from the other side reaches the operator's terminal as text: no control, no markup."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from rich.console import Console
from rich.table import Table

from detente.cli.terminal import (
    cell,
    dump_json,
    print_links,
    print_messages,
    print_records,
    printable,
    printable_lines,
    value_text,
)
from detente.cli.workflow_lists import COLUMNS

URDU = "پنجگور کے قریب دھماکوں کی اطلاع"
PERSIAN = "می\u200cخواهیم"  # with the zero-width non-joiner Persian spelling needs
MIXED = "\u200fFLASH 1305Z \u200eسلام"  # right-to-left and left-to-right marks


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07"),
        ("a\x00b\x08c\x7fd", "a\\x00b\\x08c\\x7fd"),
        ("one\ntwo\r\tthree", "one\\ntwo\\r\\tthree"),
        ("\x9b31m\x85\x9d", "\\x9b31m\\x85\\x9d"),  # C1: CSI, NEL, OSC
        ("x\u2028y\u2029z", "x\\u2028y\\u2029z"),
        # Red team: bidi scopes a peer's text opens reorder the rest of the operator's line.
        ("ack \u202e01 ,ok\u202c id", "ack \\u202e01 ,ok\\u202c id"),
        ("\u202a\u202b\u202d\u2066\u2067\u2068\u2069", "\\u202a\\u202b\\u202d\\u2066\\u2067\\u2068\\u2069"),
        ("\udcff\udc80", "\\xff\\x80"),  # bytes that were not UTF-8, as Python hands them over
        ("\ud800", "\\ud800"),  # a lone surrogate from a JSON escape
    ],
)
def test_control_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(raw).isprintable()


@pytest.mark.parametrize("text", [URDU, PERSIAN, MIXED, "emoji 🚨 and [brackets] and \\x1b typed"])
def test_right_to_left_text_and_everything_printable_pass_unchanged(text: str) -> None:
    assert printable(text) == text


def test_a_list_of_problems_keeps_its_lines_and_nothing_else() -> None:
    shown = printable_lines("2 problems:\nline 3: \x1b[31mred\r\nline 9: ok")
    assert shown == "2 problems:\nline 3: \\x1b[31mred\\r\nline 9: ok"
    assert all(line.isprintable() for line in shown.split("\n"))


def test_printable_takes_any_value() -> None:
    assert printable(None) == "None" and printable(42) == "42"


def _render(*cells: object) -> str:
    buffer = io.StringIO()
    table = Table("a", "b")
    table.add_row(*(cell(c) for c in cells))
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue()


@pytest.mark.parametrize("text", ["[bold red]alarm", "[/]", "[/bold]", "[link=https://x]y[/link]", ":smile:"])
def test_cells_show_markup_and_emoji_codes_literally(text: str) -> None:
    assert text in _render(text, "")


def test_cells_carry_no_escape_sequence_and_keep_urdu() -> None:
    rendered = _render("\x1b[31mred\x1b[0m\x07", URDU)
    assert "\x1b" not in rendered and "\x07" not in rendered
    assert "\\x1b[31mred\\x1b[0m\\x07" in rendered and URDU in rendered


def test_an_empty_cell_for_none() -> None:
    assert cell(None).plain == ""


def test_json_means_the_same_value_and_is_inert() -> None:
    value = {"text": "\x1b[2J\x07\x9b\x85\u2028\u202e\ud800" + URDU, "n": [1, None, True]}
    dumped = dump_json(value)
    assert json.loads(dumped) == value
    assert not any(0x00 <= ord(c) < 0x20 and c not in "\n " or 0x7F <= ord(c) <= 0x9F for c in dumped)
    assert "\\u009b" in dumped and "\\u2028" in dumped and "\\u202e" in dumped and "\\ud800" in dumped
    assert URDU in dumped  # readable, not \u-escaped
    dumped.encode("utf-8")  # prints on any UTF-8 terminal: no lone surrogate left


def test_json_in_one_line() -> None:
    assert dump_json({"a": "\x9b"}, indent=None) == '{"a": "\\u009b"}'


CASE_ID = "01a2228f-e1ef-7ad7-b64c-10b0d57f510e"
CASES = [[CASE_ID, "contained", "2024-01-16 13:05Z", "2024-01-17 09:00Z", "cross border fire at Panjgur", "pk:dgmo"]]
CASE_HEADERS = ["id", "status", "created", "updated", "title", "opened by"]


def _records(width: int, rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    print_records(Console(file=buffer, width=width), CASE_HEADERS, rows, "no cases")
    return buffer.getvalue()


def test_a_list_is_a_table_where_it_fits_and_a_block_per_row_where_it_does_not() -> None:
    """QA: `case list` at 80 columns (or in a pipe) squeezed ids and titles to `stat…`, `Panj…`."""
    wide = _records(200, CASES)
    assert "┃ id" in wide and CASE_ID in wide and "cross border fire at Panjgur" in wide
    narrow = _records(80, CASES)
    assert narrow.splitlines()[0] == f"{CASE_ID}  contained"  # the id whole: what `show` takes
    assert "title cross border fire at Panjgur" in " ".join(narrow.split())
    assert "…" not in narrow and "┃" not in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert _records(80, []) == "no cases\n"


def test_a_block_breaks_between_label_and_value_pairs_never_inside_one() -> None:
    """QA: at 80 columns `clarification list` ended a line with `requester` and began the next with its
    value, and printed Python's `False` where `show` prints `false`."""
    at = "2026-11-28T19:53:03.123Z"
    clarification = {
        "id": CASE_ID, "status": "open", "created": at, "updated_at": at, "requester": "ir:dgmo",
        "deadline": "2026-11-28T22:53:03.123Z", "late": False, "overdue": True,
    }  # fmt: skip
    columns = COLUMNS["clarifications"]
    buffer = io.StringIO()
    rows = [[value_text(clarification.get(field)) for _, field in columns]]
    print_records(Console(file=buffer, width=80), [title for title, _ in columns], rows, "none")
    lines = buffer.getvalue().splitlines()
    assert lines[0] == f"{CASE_ID}  open" and all(len(line) <= 80 for line in lines)
    pairs = ["created 2026-11-28T19:53:03.123Z", "updated 2026-11-28T19:53:03.123Z", "requester ir:dgmo",
             "deadline 2026-11-28T22:53:03.123Z", "late false", "overdue true"]  # fmt: skip
    for pair in pairs:  # each whole on one line
        assert sum(pair in line for line in lines) == 1, (pair, lines)
    assert " ".join(line.strip() for line in lines[1:]).split() == " ".join(pairs).split()  # in order, nothing else


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (False, "false"), (True, "true"), (3, "3"), (["pk:dgmo", "ir:dgmo"], '["pk:dgmo", "ir:dgmo"]'),
     ("pk:dgmo", "pk:dgmo"), ("a\x1bb", "a\\x1bb"), ({"x": "\x9b"}, '{"x": "\\u009b"}')],
)  # fmt: skip
def test_a_listed_value_is_text_as_it_is_else_as_json_writes_it(value: object, shown: str) -> None:
    assert value_text(value) == shown


@pytest.mark.parametrize("terminal", [True, False])
def test_todays_times_carry_their_date_in_a_file_or_a_pipe_not_on_a_terminal(terminal: bool) -> None:
    """QA: `inbox > handover.txt` before midnight UTC, read after it, said `created 20:42:44Z`."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message = {"id": "0193a8f0-6b1e-7c3a-9d2e-0000000000a2", "precedence": "FLASH", "from": "pk:dgmo",
               "to": "ir:dgmo", "type": "hotline.text", "created": stamp, "deadline": None, "state": "delivered",
               "body": {"text": "Patrol 3 is ours"}}  # fmt: skip
    link = {"peer": "ir", "state": "UP", "since": stamp, "last_test_at": stamp, "rtt_ms": 1.0, "outbox": 0}
    out = io.StringIO()
    console = Console(file=out, width=200, highlight=False, force_terminal=terminal, color_system=None)
    print_messages(console, [message])
    print_links(console, [link])
    day = now.strftime("%Y-%m-%d")
    if terminal:
        assert day not in out.getvalue() and now.strftime("%H:%M:%SZ") in out.getvalue(), out.getvalue()
    else:
        assert out.getvalue().count(f"{day} {now:%H:%M}Z") >= 3, out.getvalue()  # created, since, last test
