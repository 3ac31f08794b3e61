"""Texts as a page lays them out: which way a text runs, short rows, codebook texts and case words.

Urdu and Persian pages run right to left, and what they show mixes scripts: a Latin place name in
an Urdu sentence, a date, a base64 key. The browser guesses a text's direction from its first
strong letter, so an Urdu sentence that starts with "Koh-e-Sabz" is laid out left to right, and a
time set in a right-to-left sentence reads backwards ("UTC 10:30 28-11-2026"). So:

- a free text's direction is the one most of its letters have (`text_dir`);
- a codebook text is in the reader's own language: it runs in the page's direction (in its own, marked
  with its language, when the console has no pages in it: Pashto on an English page), and each value
  filled into it is an isolate of its own, left to right for times, dates and numbers (`code_markup`);
- a value of a message's body is laid out in the page's direction, next to its label, each of its
  lines an isolate in its own direction (`value_markup`): set in its own direction across the row,
  an English value on a Persian page sat at the far left, away from its label on the right;
- the node's own words (its errors) are English: a left-to-right isolate marked English
  (`node_text`), so that in an Urdu paragraph the full stop stays at their end;
- a short row never cuts a codebook text (a bounded template), and cuts a free text only at a word,
  with a visible "…" (`snippet`): Urdu and Persian put the verb and its negation last, so a cut
  in mid-sentence may turn "is not directed against you" into "is directed against you";
- what the workflows write in English for the record (a case's title, its timeline notes) is said
  again in the reader's language from the structured data (`case_title`, `timeline_note`).
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import replace
from typing import Any

from markupsafe import Markup, escape

from detente.core import codebook as codebook_mod
from detente.core.bodies import clip
from detente.core.workflows import Case
from detente.web.console.i18n import Locale
from detente.web.console.labels import Labels

# Characters of a free text a short row shows: generous, because the end of a sentence may be the
# part that matters. The row wraps; the whole text is one click away.
SNIPPET = 200
# Characters of a codebook text the FLASH banner shows beside the code (the banner is on every page).
BANNER = 60
# The title `core.workflows.apply_case` gives a case an incident report opened: "<kind> at <place>".
_TITLE_JOIN = " at "


def snippet(text: str, size: int = SNIPPET) -> str:
    """Return a text on one line, cut at a word with a visible "…" when longer than `size` characters."""
    return clip(" ".join(text.split()), size)[0]


def text_dir(text: str) -> str:
    """Return `rtl` or `ltr`, the direction most of a text's letters run in; `auto` when it has none."""
    rtl = ltr = 0
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            rtl += 1
        elif kind == "L":
            ltr += 1
    if rtl == ltr == 0:
        return "auto"
    return "rtl" if rtl > ltr else "ltr"


def isolate(value: str, direction: str = "auto") -> Markup:
    """Return a value as a bidirectional isolate: it keeps its own order inside a sentence of either direction.

    `direction` is "ltr" for what is always Latin (an office id, a key), "auto" for a name or a
    phrase in any script (the browser takes its first strong letter).
    """
    if direction == "auto":
        return Markup("<bdi>{}</bdi>").format(value)
    return Markup('<bdi dir="{}">{}</bdi>').format(direction, value)


def node_text(text: str) -> Markup:
    """Return a text of the node's own (an error: English, like the API's) as a left-to-right English isolate."""
    return Markup('<bdi dir="ltr" lang="en">{}</bdi>').format(text)


def value_markup(text: str) -> Markup:
    """Return a body value as HTML: each of its lines an isolate in its own direction, between the line breaks.

    One isolate per line: a list (questions, action items) may mix Urdu lines with English ones.
    """
    return Markup("\n").join(isolate(line, _value_dir("text", line)) for line in text.split("\n"))


def _value_dir(kind: str, value: str) -> str:
    # Times, dates and numbers are written left to right in every language; a text value (a place)
    # keeps its own direction, and one without letters (a telephone number) is left to right too.
    if kind != "text":
        return "ltr"
    found = text_dir(value)
    return "ltr" if found == "auto" else found


def code_markup(entry: codebook_mod.CodeEntry, params: dict[str, Any], lang: str) -> Markup:
    """Return the entry's text in `lang` as HTML, each filled-in value in an isolate of its own.

    Only what is displayed changes: the signed message holds the code and its parameters. Raises
    `Invalid` when `codebook_mod.render` would (a missing or ill-typed parameter, an unknown language).
    """
    codebook_mod.render(entry, params, lang)  # the checks, and their error, are the codebook's
    out: list[Markup] = []
    for literal, name, _, _ in string.Formatter().parse(entry.text[lang]):
        out.append(escape(literal))
        if name is not None:
            kind = entry.params[name]
            # One value rendered alone, as the codebook writes it (a time as `2024-01-18 01:00 UTC`).
            alone = replace(entry, params={name: kind}, text={lang: "{" + name + "}"})
            value = codebook_mod.render(alone, {name: params[name]}, lang)
            out.append(isolate(value, _value_dir(kind, value)))
    return Markup("").join(out)


def case_title(case: Case, locale: Locale, labels: Labels) -> str:
    """Return a case's title in the reader's language: "<kind> at <place>" said again, else as written."""
    prefix = f"{case.kind.replace('_', ' ')}{_TITLE_JOIN}" if case.kind else ""
    if not prefix or not case.title.startswith(prefix):
        return case.title  # a title the sender wrote (case.open): shown as written
    place = case.title[len(prefix) :]
    # The place is a name, in its own script: on a right-to-left page an isolate (FSI ... PDI), so
    # that a Latin name does not turn the sentence around.
    if locale.dir == "rtl":
        place = f"\u2068{place}\u2069"
    return locale.gettext("%(kind)s at %(place)s") % {"kind": labels.value(case.kind), "place": place}


def case_title_dir(case: Case, locale: Locale) -> str:
    """Return the direction of `case_title`: the page's for a title said again, else the text's own."""
    said_again = bool(case.kind) and case.title.startswith(f"{(case.kind or '').replace('_', ' ')}{_TITLE_JOIN}")
    return locale.dir if said_again else text_dir(case.title)


def timeline_note(
    note: str, kind: str, sender: str, opening: bool, body: dict[str, Any], locale: Locale, labels: Labels
) -> Markup:
    """Return what a message changed in its case, in the reader's language (the workflow's note says it in English).

    `note` is the workflow's own (empty when the message changed nothing); `kind`, `sender` (a
    party) and `body` are the message's. A note this function cannot say again is shown as written.
    """
    if not note:
        return Markup("")
    gettext = locale.gettext
    parts: list[Markup] = []

    def level(value: object) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            said = Markup(escape(gettext("%(party)s escalation %(level)s"))) % {
                "party": sender.upper(), "level": isolate(f"{value}/5", "ltr"),
            }  # fmt: skip
            parts.append(said)

    if opening:
        parts.append(escape(gettext("opened")))
    elif kind == "incident.report":
        level(body.get("escalation"))
    elif kind == "case.update":
        if isinstance(body.get("status"), str):
            parts.append(escape(gettext("status: %(status)s") % {"status": labels.value(body["status"])}))
        level(body.get("escalation"))
    if not parts:
        return Markup('<span dir="auto">{}</span>').format(note)
    return Markup(escape(gettext("; "))).join(parts)
