"""The `detente` command line."""

from __future__ import annotations

import sys

from detente.cli.app import app


def main() -> None:
    """Run the command line; our errors print their diagnostics and exit 1, never a traceback.

    Exit status: 0 done, 1 an error (the node refused, cannot be reached, a file's content is
    wrong), 2 a usage error (click's message and the command's usage), 130 interrupted.
    """
    from detente.cli.terminal import printable, printable_lines
    from detente.errors import Error

    try:
        status = app(standalone_mode=False)
        # Typer turns Ctrl-C inside a command into its exit status, 130, and returns it instead of
        # raising when it does not exit itself (the commands return nothing).
        if isinstance(status, int) and status:
            sys.exit(status)
    except Error as exc:
        # The detail may quote the other side (a peer's error, an id we were given): made safe, but
        # a list of problems (a scenario's, a drill's checks) keeps one per line.
        print(f"error: {printable_lines(exc.diagnostics())}", file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # usage errors and the unexpected: one line, no traceback
        # Typer 0.29 carries its own copy of click: its usage errors derive from
        # `typer.exceptions.TyperException`, not from click's `ClickException`, and its `Abort`
        # from neither. Both kinds are recognised, so that a wrong option is a usage message.
        import click
        from typer.exceptions import Abort, TyperException

        if isinstance(exc, (click.exceptions.ClickException, TyperException)):
            show = getattr(exc, "show", None)
            if show is not None:
                show()
            else:
                print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)
        if isinstance(exc, (click.exceptions.Abort, Abort)):
            sys.exit(130)
        print(f"error: unexpected {type(exc).__name__}: {printable(exc)}", file=sys.stderr)
        sys.exit(1)


__all__ = ["app", "main"]
