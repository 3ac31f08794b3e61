"""How `detente … --help` reads: paragraphs that fill the terminal, and options named by their value.

Typer 0.29.1 renders help with rich, through its own copy of click (the click 8.5.1 installed
beside it is not used for this), and two of its choices read badly:

- A docstring keeps the line breaks of the source. Typer joins the lines of the first paragraph
  only (`rich_utils._get_help_text`); the others are printed as written, broken at ~95 columns
  whatever the terminal's width: ragged at 80 columns, half a line at 200.
- The value column shows the Python type (`<str>`, `<list[str]>`, `<path>`), and shows it for
  flags too, which take no value (`--json <bool>`, `--help <bool>`): `TyperOption.display_type_rich`
  returns `display_type` for every option that has no metavar, and arguments always show it.

`RootGroup`, the class of the root command, mends both in one place once Typer has built the tree
of commands, whichever command is asked for help: each command's help is reflowed (`reflow`), each
option that takes a value gets a metavar naming it (`value_name`: TEXT, DIR, ID, OFFICE, …), each
flag (the help option included) an empty one, and each argument's value column says the same as
an option's would.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

# The value an option or argument takes, by its name, where its type alone ("TEXT") says too little.
NAMED_VALUES = {
    "body": "JSON",
    "case": "ID",
    "channel": "CHANNEL",
    "code": "CODE",
    "data": "DIR",
    "db": "URL",
    "earlier": "FILE",
    "find": "WORDS",
    "human": "OFFICE",
    "id": "ID",
    "lang": "LANG",
    "listen": "HOST:PORT",
    "log": "PARTY",
    "media-type": "TYPE",
    "message": "ID",
    "name": "NAME",
    "office": "OFFICE",
    "param": "NAME=VALUE",
    "party": "PARTY",
    "peer": "PARTY",
    "precedence": "PRECEDENCE",
    "ref": "ID",
    "refers-to": "ID",
    "role": "ROLE",
    "since": "TIME",
    "status": "STATUS",
    "target": "ID",
    "to": "OFFICE",
    "token": "TOKEN",
    "translation": "ID",
    "type": "TYPE",
    "until": "TIME",
    "url": "URL",
    "variant": "NAME",
}
# Typer's type labels (`display_type` without its brackets), as click names them.
TYPE_VALUES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "bool": "BOOLEAN",
    "dir": "DIR",
    "file": "FILE",
    "path": "PATH",
    "Path": "PATH",
}
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def reflow(text: str) -> str:
    """Return `text` with the lines of each paragraph joined, for the terminal to wrap; raises nothing.

    Paragraphs are separated by blank lines. Inside one, a line that begins with "- " starts a list
    item, which the lines after it continue (indented or not); an indented line that continues no
    item is kept as it is (an example); a paragraph that begins with click's "\\b" is left alone,
    and so is everything after a "\\f".
    """
    head, mark, tail = text.partition("\f")
    paragraphs = _PARAGRAPH_BREAK.split(inspect.cleandoc(head))
    return "\n\n".join(_reflow_paragraph(p) for p in paragraphs) + mark + tail


def _reflow_paragraph(paragraph: str) -> str:
    if paragraph.startswith("\b"):
        return paragraph
    lines: list[str] = []
    last = ""  # what the line being built is: "text", "item" or "example"
    for line in paragraph.split("\n"):
        stripped = line.strip()
        indented = line[:1].isspace()
        if stripped.startswith("- "):
            lines.append(line.rstrip())
            last = "item"
        elif indented and last != "item":
            lines.append(line.rstrip())
            last = "example"
        elif last in ("text", "item") and stripped:
            lines[-1] += " " + stripped
        else:
            lines.append(stripped)
            last = "text"
    return "\n".join(lines)


def _bare_label(label: str) -> str:
    """Return Typer's type label without its brackets and list: `<list[str]>` -> `str`."""
    label = label.removeprefix("<").removesuffix(">")
    while label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    return label.removesuffix(" range")  # a number between bounds: the bounds are shown beside it


def value_name(param: TyperOption | TyperArgument, ctx: Any) -> str:
    """Return the name of the value `param` takes: by its name (ID, OFFICE), else by its type (TEXT, DIR).

    The choices of a parameter that has some are shown as click shows them, `[in|out]`. `ctx` is
    the command's context (Typer's display of choices reads it). Raises nothing.
    """
    name = (param.opts[0] if isinstance(param, TyperOption) and param.opts else param.name or "").lstrip("-")
    if name.replace("_", "-") in NAMED_VALUES:
        return NAMED_VALUES[name.replace("_", "-")]
    label = _bare_label(str(param.display_type(ctx)))
    if getattr(param.type_descriptor, "is_choice", False):
        return f"[{label}]"
    return TYPE_VALUES.get(label, label.upper())


class _Argument(TyperArgument):
    """An argument whose value column names its value (ID, DIR), as an option's metavar does.

    An argument's metavar would rename the argument itself (its usage, its errors), and Typer
    shows its type whatever the metavar: only this method says what the column shows.
    """

    def display_type_rich(self, ctx: Any) -> str | None:
        """Return the name of the argument's value for the help's value column."""
        return value_name(self, ctx)


def name_values(params: list[Any], ctx: Any) -> None:
    """Give each option a metavar naming its value (empty for a flag) and each argument its value column.

    A metavar the option declares is kept. `ctx` is the command's context. Raises nothing.
    """
    for param in params:
        if isinstance(param, TyperOption):
            if param.metavar is None:
                param.metavar = "" if param.is_flag or param.count else value_name(param, ctx)
        elif isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            param.__class__ = _Argument


def tidy(command: Any, ctx: Any) -> None:
    """Reflow the help of `command` and of every command under it, and name their parameters' values.

    `ctx` is a context for `command`, as click makes one when it runs it (the help option's names
    come from it). The help option is made here, as click would on first use, and the command keeps
    it: its metavar is set like every other flag's. Raises nothing.
    """
    if command.help:
        command.help = reflow(command.help)
    name_values(command.get_params(ctx), ctx)
    for name, sub in getattr(command, "commands", {}).items():
        tidy(sub, typer.Context(sub, parent=ctx, info_name=name, **(sub.context_settings or {})))


class RootGroup(TyperGroup):
    """The root command: once Typer has built every command under it, `tidy` mends their help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the group as Typer does, then tidy the help of the whole tree."""
        super().__init__(*args, **kwargs)
        tidy(self, typer.Context(self, info_name=self.name, **(self.context_settings or {})))

    def get_params(self, ctx: Any) -> list[Any]:
        """Return the group's parameters, with those Typer adds after building it (shell completion) named too."""
        params: list[Any] = super().get_params(ctx)
        name_values(params, ctx)
        return params
