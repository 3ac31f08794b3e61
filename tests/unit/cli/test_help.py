"""Help screens: paragraphs fill the terminal, structure is kept, and options are named by their value.

QA: docstrings kept the source's line breaks (~95 columns) at any terminal width, and the value
column showed Python types (`--token <str>`, `--ref <list[str]>`), even for flags (`--json <bool>`,
`--help <bool>`). Typer 0.29.1 does both; `cli.helptext.RootGroup` mends them for every command.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from detente.cli.app import app
from detente.cli.helptext import reflow
from detente.core import notifications

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PARAGRAPH = (
    "The export ends at the newest checkpoint every peer cosigned, so that an auditor can check that each entry "
    "was witnessed; entries signed since are left out and counted."
)


def test_reflow_joins_paragraph_lines_and_keeps_structure() -> None:
    # As Typer hands a docstring over: without the source's indentation.
    text = inspect.cleandoc(
        """First line
    continued.

    A paragraph
    on three
    lines.

    Items:
    - one item,
      continued on an indented line
    - another
    continued without indent

    An example follows:
        detente send --to ir:dgmo
        detente send --to ir:fm
    and the text goes on.

    \bkept
    as written

    Tail.\f
    private
    notes"""
    )
    assert reflow(text) == (
        "First line continued.\n\n"
        "A paragraph on three lines.\n\n"
        "Items:\n- one item, continued on an indented line\n- another continued without indent\n\n"
        "An example follows:\n    detente send --to ir:dgmo\n    detente send --to ir:fm\nand the text goes on.\n\n"
        "\bkept\nas written\n\n"
        "Tail.\f\nprivate\nnotes"
    )
    assert reflow("One line.") == "One line."
    assert reflow(reflow(text)) == reflow(text)  # reflowing twice changes nothing


def _commands() -> Iterator[tuple[list[str], Any, Any]]:
    """Every command of `detente` with its path and a context for it, as click makes them."""
    root = typer.main.get_command(app)

    def walk(command: Any, path: list[str], ctx: Any) -> Iterator[tuple[list[str], Any, Any]]:
        yield path, command, ctx
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name], typer.Context(sub, parent=ctx, info_name=name))

    yield from walk(root, [], typer.Context(root, info_name="detente"))


def test_every_option_is_named_by_its_value_and_flags_by_nothing() -> None:
    seen = 0
    for path, command, ctx in _commands():
        for param in command.get_params(ctx):
            shown = param.display_type_rich(ctx)
            where = (path, param.name)
            if isinstance(param, TyperOption) and (param.is_flag or param.count):
                assert not shown, where  # --json, --help, --allow-unwitnessed … take no value
                continue
            assert isinstance(param, TyperOption | TyperArgument), where
            # A name (TEXT, DIR, ID, OFFICE…) or choices ([in|out]), never Typer's `<str>` or `<list[str]>`.
            assert shown and "<" not in shown and "list[" not in shown, (where, shown)
            seen += 1
    assert seen > 100


def _help(*args: str, columns: int) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (("send",), ["--token             TOKEN", "--ref               ID", "--lang              LANG"]),
        (("log", "entries"), ["export      DIR", "--refers-to        ID", "--json     "]),
        (("inbox",), ["--box ", "[in|out|all]", "--limit ", "INTEGER [1<=x<=1000]"]),
        (("user", "add"), ["--office ", "OFFICE", "--role ", "ROLE", "--password-stdin    "]),
    ],
)
def test_help_shows_metavars_not_python_types(args: tuple[str, ...], shows: list[str]) -> None:
    out = _help(*args, columns=200)
    for python_type in ("<bool>", "<str>", "<list[", "<path>", "<dir>", "<file>", "<int"):
        assert python_type not in out, out
    for text in shows:
        assert text in out, out
    # A flag shows nothing where an option shows its value.
    assert re.search(r"--help +Show this message and exit\.", out), out


def test_a_paragraph_fills_a_wide_terminal_and_wraps_in_a_narrow_one() -> None:
    wide = _help("log", "export", columns=200)
    assert any(line.strip() == PARAGRAPH for line in wide.splitlines()), wide
    narrow = _help("log", "export", columns=60)
    assert all(len(line) <= 60 for line in narrow.splitlines()), narrow
    words = " ".join(line.strip() for line in narrow.splitlines() if line.strip())
    assert PARAGRAPH in words  # the same words, wrapped at 60 columns rather than at the source's breaks
    # A longer paragraph fills the lines of a wide terminal, whatever the source's breaks (~95 columns).
    entries = _help("log", "entries", columns=200).splitlines()
    start = next(i for i, line in enumerate(entries) if line.strip().startswith("Offline, from the export's files"))
    assert len(entries[start].strip()) > 150 and "The counts by type go last" in entries[start], entries
    # A command listing reads a two-line first paragraph as one line too.
    listing = _help(columns=200)
    assert re.search(r"links +Show the link to each peer: state, .* outbox depth, and the newest status", listing)


def _option_help(path: list[str], name: str) -> str:
    """The help of option `name` of the command at `path`."""
    command, ctx = next((c, x) for p, c, x in _commands() if p == path)
    return str(next(param for param in command.get_params(ctx) if param.name == name).help)


def test_the_help_says_what_the_command_does() -> None:
    # QA: `log entries --type` gave `message` as a type, and there is none; `log verify-proof
    # --envelope` said a bundle from the API holds no envelope, and it holds it.
    examples = re.search(r"\((.*), …\)", _option_help(["log", "entries"], "types"))
    assert examples is not None
    assert all(kind in notifications.CATALOG for kind in examples.group(1).split(", ")), examples.group(1)
    envelope = _option_help(["log", "verify-proof"], "envelope_file")
    assert "for a bundle that holds none (`log proof --out` and the API's downloads hold it)" in envelope
    assert "from the API, which holds none" not in _help("log", "verify-proof", columns=200)
    # `user passwd` reads the password from standard input only: the flag is required, and says so.
    passwd = _help("user", "passwd", columns=200).splitlines()
    assert "[required]" in next(line for line in passwd if "--password-stdin" in line), passwd


def test_the_installed_command_reflows_to_the_terminal() -> None:
    """The entry point, in a process of its own, with the terminal's width in COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "FORCE_COLOR", "PY_COLORS")}
    code = "import sys; from detente.cli import main; sys.argv[0] = 'detente'; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "log", "export", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = ANSI.sub("", result.stdout)
    assert any(line.strip() == PARAGRAPH for line in out.splitlines()), out
    assert "<bool>" not in out and "<list[str]>" not in out and "<dir>" not in out
