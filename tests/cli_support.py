"""Run the `detente` command line in this process, as the installed entry point does.

`detente.cli.main` is called itself, so our errors, click's usage errors and the exit status are
exactly what an operator gets; only the process start (about 1.5 s) is saved. Standard input is
given as bytes, like a pipe; the tables are drawn `width` columns wide.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from unittest import mock

from rich.console import Console

from detente.cli import client, drill_output, inbox, main, workflow
from detente.cli import drill as cli_drill


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def detente(*args: str, stdin: bytes = b"", width: int = 250) -> Ran:
    """Run `detente ARGS` through `detente.cli.main`; return its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    # A terminal's console (today's times without their date), with no colour: what a person reads.
    console = Console(file=out, width=width, highlight=False, force_terminal=True, color_system=None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(sys, "argv", ["detente", *args]))
        stack.enter_context(mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")))
        for module in (client, inbox, workflow, drill_output, cli_drill):  # each holds a console made at import
            stack.enter_context(mock.patch.object(module, "out", console))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


def assert_usage_error(result: Ran, says: str) -> None:
    """Assert `result` is a usage error: the command's usage, `says`, exit status 2, no traceback."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Usage: detente" in result.stderr and says in result.stderr, result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def assert_error(result: Ran, says: str) -> None:
    """Assert `result` is one `error: ...` line holding `says`, exit status 1."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
