"""Certified translations from the command line: `detente translate` and `detente review`.

    detente translate ID --lang fa --text "..."       # or --text-file FILE, or the text on standard input
    detente review TRANSLATION_ID --certify           # another translator of the same side
    detente review TRANSLATION_ID --dispute --note "what is wrong"

`detente message ID` prints a message's translations (`translations`), each with its reviews and
whether it is certified, in its JSON; `detente message ID --translations` lists them for people
(`translation_lines`). Like every API command, these take `--node DIR` or `--url`/`--cacert`,
and `--token`; the node decides who may translate (a translator or supervisor of the office).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from detente.cli.app import app
from detente.cli.arguments import CheckedCommand, check_id, segment
from detente.cli.terminal import compact_time, printable
from detente.cli.transport import CertOpt, NodeOpt, TokenOpt, UrlOpt, api, call, shape, text_language
from detente.errors import BadRequest

SENT = {"id": str, "seq": int, "log_index": int, "state": str}


def _read_text(text: str | None, text_file: Path | None) -> str:
    """Return the translation's text from `--text`, `--text-file` (`-`: standard input) or standard input.

    Raises `typer.BadParameter` for both options or none on a terminal, and `BadRequest` for a
    file that cannot be read or is not UTF-8.
    """
    if text is not None and text_file is not None:
        raise typer.BadParameter("give --text or --text-file, not both", param_hint="'--text-file'")
    if text is not None:
        return text
    stdin = text_file is None or str(text_file) == "-"
    if text_file is None and sys.stdin.isatty():
        raise typer.BadParameter("give --text, --text-file, or the text on standard input", param_hint="'--text'")
    what = "standard input" if stdin else str(text_file)
    try:
        # Bytes, then strict UTF-8: a stream read as text would carry bytes that are not UTF-8 as
        # lone surrogates, which fail only when the request is encoded.
        raw = sys.stdin.buffer.read() if stdin or text_file is None else text_file.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read {what}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8").removesuffix("\n")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 text: {exc}") from None


@app.command(cls=CheckedCommand)
def translate(
    token: TokenOpt,
    message: Annotated[str, typer.Argument(help="the id of the message to translate", callback=check_id)],
    lang: Annotated[str, typer.Option(help="the language of the translation, e.g. fa")],
    text: Annotated[str | None, typer.Option(help="the translated text")] = None,
    text_file: Annotated[
        Path | None, typer.Option(help="a UTF-8 file holding the translated text (- for standard input)")
    ] = None,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Translate a message sent or received into another of the agreement's languages.

    The signed translation goes to the other side too, with the message's precedence; another
    translator of this side then certifies or disputes it (`detente review`).
    """
    words = _read_text(text, text_file)
    with api(node, url, cacert, token) as client:
        lang = text_language(client, lang)  # any case, as the agreement spells it; blank is refused
        path = f"/messages/{segment(message)}/translations"
        result = call(client, "POST", path, json={"lang": lang, "text": words}, expect=SENT)
    print(printable(f"translated {message} into {lang} as {result['id']} (seq {result['seq']}, "
                    f"log {result['log_index']}): it waits for another translator's review"))  # fmt: skip


@app.command(cls=CheckedCommand)
def review(
    token: TokenOpt,
    translation: Annotated[str, typer.Argument(help="the id of the translation", callback=check_id)],
    certify: Annotated[bool, typer.Option("--certify", help="certify the translation")] = False,
    dispute: Annotated[bool, typer.Option("--dispute", help="dispute it (with --note)")] = False,
    note: Annotated[str, typer.Option(help="what is wrong with it (required with --dispute)")] = "",
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """Certify or dispute a translation made by another translator of this side (two-person rule)."""
    if certify == dispute:
        raise typer.BadParameter("give --certify or --dispute (one of them)", param_hint="'--certify'")
    if dispute and not note.strip():
        raise typer.BadParameter("a dispute says what is wrong: give --note", param_hint="'--note'")
    verdict = "certified" if certify else "disputed"
    with api(node, url, cacert, token) as client:
        path = f"/messages/{segment(translation)}/review"
        result = call(client, "POST", path, json={"verdict": verdict, "note": note}, expect=SENT)
    print(printable(f"{verdict} translation {translation} with {result['id']}"))


def _state(translation: Mapping[str, Any], reviews: list[dict[str, Any]]) -> str:
    # The node's own word on certification; a dispute is named when nothing certifies it (both are listed).
    if translation.get("certified") is True:
        return "certified"
    return "disputed" if any(r.get("verdict") == "disputed" for r in reviews) else "not yet certified"


def translation_lines(answer: Mapping[str, Any]) -> list[str]:
    """Return a message's translations (`translations` of `GET /api/v1/messages/{id}`) as lines for people.

    A line a translation: its id, language, who made it (their office), when, and whether it is
    certified; its text below, indented, line by line; then each review, indented:
    `certified by X at T` or `disputed by Y at T: note`. Everything from the node goes through
    `printable`. Raises `UnexpectedAnswer` for an answer without them, or a translation or review
    that is not a JSON object.
    """
    today = datetime.now(UTC).date()
    listed = shape(answer, {"translations": list}, "the node's answer")["translations"]
    made = [shape(t, {"reviews": list}, "a translation in the node's answer") for t in listed]
    lines = [printable(f"{len(made)} translation{'s' if len(made) != 1 else ''} of {answer.get('id')}")]
    for t in made:
        reviews = [shape(r, {}, "a review in the node's answer") for r in t["reviews"]]
        lines.append(printable(
            f"translation {t.get('id')} into {t.get('lang')} by {t.get('by')} ({t.get('office')}) "
            f"at {compact_time(t.get('created'), today)}: {_state(t, reviews)}"
        ))  # fmt: skip
        lines += [f"  {printable(line)}" for line in str(t.get("text", "")).split("\n")]
        for r in reviews:
            said = f": {r.get('note')}" if r.get("verdict") == "disputed" and r.get("note") else ""
            when = compact_time(r.get("created"), today)
            lines.append(printable(f"  {r.get('verdict')} by {r.get('by')} at {when}{said}"))
    return lines
