"""A mistyped command line gets click's usage message and exit status 2, never "unexpected"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def detente(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point's code (`detente.cli.main`) in a process of its own."""
    code = "import sys; from detente.cli import main; sys.argv[0] = 'detente'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("audit",), "Missing argument 'export'"),
        (("nosuchcommand",), "No such command 'nosuchcommand'"),
        (("audit", ".", "--agreement", "/nonexistent/agreement.toml"), "does not exist"),
        (("serve", "--no-such-option"), "No such option: --no-such-option"),
        # QA: it was an error of the node's kind, exit 1, and its help showed the option as optional.
        (("user", "passwd", "--data", "/nonexistent", "--name", "duty1"), "Missing option '--password-stdin'"),
    ],
)
def test_usage_errors_show_usage_and_exit_2(args: tuple[str, ...], says: str) -> None:
    result = detente(*args)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Usage: detente" in result.stderr and "--help" in result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_our_own_errors_still_exit_1(tmp_path: Path) -> None:
    agreement = tmp_path / "agreement.toml"
    agreement.write_text("this is not TOML [", encoding="utf-8")
    result = detente("audit", str(tmp_path), "--agreement", str(agreement))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
