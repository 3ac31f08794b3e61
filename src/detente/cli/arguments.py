"""The command line's own values, checked before anything is sent: each problem is a usage error.

A usage error prints the command's usage and one line naming the option, and exits 2 (click's
`BadParameter`, shown by `detente.cli.main`), like a missing argument or a file that does not exist.

- `CheckedCommand` refuses text that is not UTF-8. Python hands the bytes of `argv` and of the
  environment that are not UTF-8 over as lone surrogates (`\\udcff` for the byte 0xff); they would
  only fail later, when encoded for the node, as an `UnicodeEncodeError` naming no option. Paths
  are left alone: a file name need not be UTF-8.
- `check_id` and `segment`: an id becomes exactly one URL path segment. The node decodes `%2F`
  before it routes a request, so an id holding `/` could reach another route (`<id>/proof` would
  read the proof, not the message): such ids are refused, not encoded. `.` and `..` are encoded,
  since a client would otherwise resolve them as "this" and "the parent" path.
- `check_since` reads a time the way the node does; `check_prefixes` refuses an empty id prefix,
  which would select every entry.
- `language_tag`: BCP 47 language tags are case-insensitive (RFC 5646 §2.1.1), and the agreement
  spells its languages in lower case, so `--lang UR` is `ur`; a blank `--lang` is refused, naming
  the agreement's languages, instead of standing for the operator's own language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

from detente.core.precedence import parse_time
from detente.errors import Error

# Ids are UUIDs (36 characters); the cap only keeps a mistake from building a URL httpx refuses.
MAX_ID = 200


def is_utf8(value: str) -> bool:
    """Return whether `value` can be encoded as UTF-8 (it holds no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class CheckedCommand(TyperCommand):
    """A command that refuses, as a usage error, any text option or argument that is not UTF-8."""

    # `Any`: the context class lives in Typer's private copy of click.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse the command line as click does, then raise `BadParameter` for text that is not UTF-8."""
        rest = super().parse_args(ctx, args)
        if ctx.resilient_parsing:  # shell completion: no errors
            return rest
        for param in self.get_params(ctx):
            value = ctx.params.get(param.name or "")
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str) and not is_utf8(item) and isinstance(param, TyperOption | TyperArgument):
                    raise typer.BadParameter("is not UTF-8 text", ctx=ctx, param=param)
        return rest


def check_id(value: str) -> str:
    """Return `value` if it can be one path segment; raise `BadParameter` (a usage error) if not."""
    if not value:
        raise typer.BadParameter("an id cannot be empty")
    if "/" in value:
        raise typer.BadParameter("an id cannot hold '/'")
    if len(value) > MAX_ID:
        raise typer.BadParameter(f"an id is at most {MAX_ID} characters, not {len(value)}")
    return value


def segment(value: str) -> str:
    """Return `value` percent-encoded as one URL path segment (`.` and `..` included).

    Raises `BadParameter` for what `check_id` refuses.
    """
    encoded = quote(check_id(value), safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def check_since(value: str | None) -> str | None:
    """Return `value` if it is an RFC 3339 UTC time (or None); raise `BadParameter` if not."""
    if value is not None:
        try:
            parse_time(value)
        except Error as exc:
            raise typer.BadParameter(exc.detail) from None
    return value


def check_prefixes(values: list[str] | None) -> list[str] | None:
    """Return the id prefixes `values` (or None); raise `BadParameter` (a usage error) for an empty one."""
    if values and not all(values):
        raise typer.BadParameter("an id prefix cannot be empty: give the id, or its first characters")
    return values


def language_tag(value: str, languages: Callable[[], Iterable[str]], option: str = "--lang") -> str:
    """Return the language tag `value` as the agreement spells its languages: in lower case.

    Language tags are case-insensitive (RFC 5646 §2.1.1) and the node compares them exactly, so
    `UR` becomes `ur`. Raises `BadParameter` (a usage error, naming `option`) for a blank value,
    with the agreement's languages, which `languages()` gives: it is called only then.
    """
    if not value.strip():
        known = ", ".join(languages())
        raise typer.BadParameter(
            f"a language cannot be blank: give one of the agreement's ({known})", param_hint=f"'{option}'"
        )
    # Only ASCII letters make a tag; other text is left as it is, for the node to refuse by name.
    return value.lower() if value.isascii() else value
