"""The `detente` command line."""

from __future__ import annotations

import sys

from detente.cli.app import app


def main() -> None:
    """Run the command line; our errors print their diagnostics and exit 1, never a traceback."""
    from detente.errors import Error

    try:
        app(standalone_mode=False)
    except Error as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors and the unexpected: one line, no traceback
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


__all__ = ["app", "main"]
