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
- everything else passes unchanged: Urdu and Persian letters, the zero-width (non-)joiners and
  direction marks right-to-left text needs, emoji.

A literal backslash is left as it is, so `\\x1b` typed as four characters reads the same as an
escaped ESC; `--json` output is exact where that matters. `dump_json` writes JSON that means the
same value as the node's answer but cannot move the terminal either: JSON already escapes C0, and
the C1 controls, separators and lone surrogates are written as `\\uHHHH` escapes too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

# C0 controls, DEL, C1 controls, the line/paragraph separators and surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# What `json.dumps(ensure_ascii=False)` leaves raw that a terminal may act on (it escapes C0 itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


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


def cell(value: object) -> Text:
    """Return a table cell showing `value` literally: no markup, no emoji codes, no control characters."""
    return Text(printable("" if value is None else value))


def dump_json(value: Any, indent: int | None = 2) -> str:
    """Return `value` as JSON (indented, unless `indent` is None), readable in any script and inert in a terminal."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
