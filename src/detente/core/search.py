"""Finding messages: the words an envelope is found by, and the filters a search takes.

An envelope's *words* are the string (and number) values of its body, each folded (`fold`) and
one per line; JSON keys are left out, so that searching "text" does not find every message. A
codebook message's words start with its code, on a line of its own, so that a search can pick out
the messages of one code exactly (`codebook_codes`). The node stores them beside the envelope
(`envelopes.words`, migration 0010), and the migration fills them from the stored envelopes with
this same function.

A search (`parse`) is every filter checked at once; its words are terms that must all occur, each
somewhere in the message's words, in a translation of it, or in the codebook text of its code in
any language of the agreement. A mistake in any filter is refused with every problem named
(`Invalid`, one entry per filter in `fields`), before anything is read.

Pure: no I/O. Changing `fold` or `words_of` changes what stored words mean: it needs a migration
that fills `envelopes.words` again.
"""

from __future__ import annotations

import difflib
import re
import string
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detente.core import notifications
from detente.core.codebook import CodeEntry
from detente.core.precedence import Precedence, format_time, parse_time
from detente.errors import Invalid

SEPARATOR = "\n"  # between an envelope's values in its words: no folded value holds one at its ends
MAX_QUERY = 200  # characters of a search's words
MIN_ID = 6  # hexadecimal digits of an id's end, at least: fewer would match too much to mean one message
MAX_ID = 36  # a whole id

# What folding changes besides case: marks and letter forms that people type one way or another for
# the same word. Arabic-script keyboards differ (an Urdu or Persian one types ی and ک, an Arabic one
# ي and ك; an Arabic or Persian one has no Urdu ے, ہ or ھ, and its user types ي or ی, and ه: QA,
# چاهتي for چاہتے); short vowels, the tatweel and the zero-width (non-)joiner are written or left out
# at will; Persian and Arabic-Indic digits are digits. Marks are removed after the text is decomposed
# (NFKD), so "Détente" is found by "detente", أ, آ and ئ by ا and ی, and ۀ by ه. A search finds more
# for it (Urdu کی and کے are one word to it), which a search may: a person reads what it found.
_DROPPED = (
    list(range(0x0300, 0x0370))  # combining diacritical marks (Latin, Greek, Cyrillic accents)
    + list(range(0x064B, 0x0660))  # Arabic harakat, hamza and madda above or below
    + [0x0670, 0x0640, 0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]  # superscript alef, tatweel, invisibles
    # Direction marks, embeddings and isolates: a copy from a right-to-left page carries them unseen.
    + [0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_FOLDS: dict[int, str | None] = {cp: None for cp in _DROPPED}
_FOLDS.update({0x064A: "\u06cc", 0x0649: "\u06cc", 0x06D2: "\u06cc", 0x0643: "\u06a9"})  # ي ى ے → ی, ك → ک
# ہ ۃ ھ ة ە → ه
_FOLDS.update({0x06C1: "\u0647", 0x06C3: "\u0647", 0x06BE: "\u0647", 0x0629: "\u0647", 0x06D5: "\u0647"})
_FOLDS.update({0x0660 + d: str(d) for d in range(10)})
_FOLDS.update({0x06F0 + d: str(d) for d in range(10)})
_HEX_ID = re.compile(r"^[0-9a-f-]+$")


def fold(text: str) -> str:
    """Return `text` as it is compared in a search: decomposed, without marks and invisible
    characters, in one letter form per Arabic-script letter, ASCII digits, casefolded (NFKC).
    Raises nothing."""
    decomposed = unicodedata.normalize("NFKD", text).translate(_FOLDS)
    return unicodedata.normalize("NFKC", decomposed.casefold())


def _values(value: Any) -> Iterator[str]:
    """Yield the string and number values of a JSON value, depth first (booleans and nulls say nothing)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)


def words_of(envelope: Mapping[str, Any]) -> str:
    """Return the words an envelope is found by: its body's values, folded, one per line.

    A codebook message's (type `code`) start with its code, alone on the first line, then its
    parameters' values and its note. Raises nothing: a body that is not an object has no words.
    """
    body = envelope.get("body")
    if not isinstance(body, dict):
        return ""
    head: list[str] = []
    if envelope.get("type") == "code" and isinstance(body.get("code"), str):
        head = [fold(body["code"])]
        body = {k: v for k, v in body.items() if k != "code"}
    said = (" ".join(fold(v).split()) for v in _values(body))
    return SEPARATOR.join(head + [v for v in said if v]) + (SEPARATOR if head else "")


def _template_words(entry: CodeEntry) -> str:
    """Return the fixed text of every language of a codebook entry, placeholders left out, folded."""
    literal = (text for template in entry.text.values() for text, _, _, _ in string.Formatter().parse(template))
    return fold(" ".join(literal))


def codebook_codes(term: str, codebook: Mapping[str, CodeEntry]) -> tuple[str, ...]:
    """Return the codes whose codebook text, in any language, holds `term` (folded). Raises nothing."""
    return tuple(sorted(code for code, entry in codebook.items() if term in _template_words(entry)))


@dataclass(frozen=True)
class Term:
    """One word of a search, folded, and the codes whose codebook text holds it."""

    text: str
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    """The filters of a search, checked: each empty one selects everything.

    `since` and `until` are in the stored form of `created` (milliseconds): `since` is included,
    `until` is not, so that consecutive windows (a day, then the next) never hold a message twice.
    """

    terms: tuple[Term, ...] = ()
    since: str | None = None
    until: str | None = None
    precedences: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    party: str | None = None
    id_end: str | None = None


def _listed(values: Sequence[str] | None) -> list[str]:
    """Return the values given, each possibly a comma-separated list, without blanks."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _time(value: str | None, name: str, problems: dict[str, str]) -> str | None:
    if value is None or value == "":
        return None
    try:
        return format_time(parse_time(value.strip()))
    except Invalid as exc:
        problems[name] = exc.detail
        return None


def _terms(q: str | None, codebook: Mapping[str, CodeEntry], problems: dict[str, str]) -> tuple[Term, ...]:
    if not q:
        return ()
    if len(q) > MAX_QUERY:
        problems["q"] = f"is {len(q)} characters long; a search takes at most {MAX_QUERY}"
        return ()
    control = next((ch for ch in q if unicodedata.category(ch) == "Cc" and not ch.isspace()), None)
    if control is not None:
        # A NUL cut SQLite's pattern short (every message matched) and PostgreSQL refused it (a 500): QA.
        problems["q"] = f"holds the control character U+{ord(control):04X}: a search takes printable text"
        return ()
    folded = dict.fromkeys(fold(q).split())  # in order, each once
    if not folded and q.strip():
        problems["q"] = "has no letter, digit or sign to find: only marks or invisible characters"
    return tuple(Term(t, codebook_codes(t, codebook)) for t in folded)


def id_end(value: str) -> str:
    """Return the end of an id as stored ids end (lower case); a copied "…" before it is left out.

    Raises `Invalid` unless it is hexadecimal digits and hyphens holding at least `MIN_ID` digits,
    and at most a whole id.
    """
    text = value.translate(_FOLDS).strip().lstrip("….").lower()  # direction marks a copy carried, dropped
    digits = sum(ch in string.hexdigits for ch in text)
    if not text or len(text) > MAX_ID or not _HEX_ID.match(text) or digits < MIN_ID:
        raise Invalid(
            f"{value!r} is not the end of an id: give its last {MIN_ID} characters or more (0-9, a-f), or the whole id",
            fields={"id": f"must be at least its last {MIN_ID} hexadecimal digits, or the whole id"},
        )
    return text


def parse(
    *,
    q: str | None = None,
    since: str | None = None,
    until: str | None = None,
    precedences: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    party: str | None = None,
    message_id: str | None = None,
    channel: str | None = None,
    parties: Collection[str] = (),
    channels: Collection[str] | None = None,
    codebook: Mapping[str, CodeEntry] | None = None,
) -> Search:
    """Return the search these filters make, every one checked.

    `q` is words that must all occur (at most `MAX_QUERY` characters); `since` and `until` RFC 3339
    UTC times, `until` after `since`; `precedences` and `types` one or several each (a value may list
    several, comma-separated), a precedence in any case; `party` one of `parties` (the peers);
    `message_id` the end of an id (`id_end`); `channel` one of `channels` (when given: a channel
    nobody has would find nothing, silently). `codebook` lets a word find the codebook messages whose
    text holds it. Raises `Invalid` naming every filter that is wrong (`fields`: q, since, until,
    precedence, type, party, id, channel).
    """
    problems: dict[str, str] = {}
    terms = _terms(q, codebook or {}, problems)
    start, end = _time(since, "since", problems), _time(until, "until", problems)
    if start is not None and end is not None and end <= start:
        problems["until"] = f"must be after since ({since}), not {until}: it is the end of the window, not included"
    wanted: list[str] = []
    for name in _listed(precedences):
        if name.upper() in Precedence.__members__:
            wanted.append(name.upper())
        else:
            known = ", ".join(p.value for p in Precedence)
            problems["precedence"] = f"unknown precedence {name!r}; expected one or several of {known}"
    kinds = _listed(types)
    unknown = [k for k in kinds if k not in notifications.CATALOG]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(notifications.CATALOG), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems["type"] = f"unknown message type {unknown[0]!r}{hint}; GET /api/v1/types lists them"
    peer = (party or "").strip().lower() or None
    if peer is not None and peer not in parties:
        problems["party"] = f"{party!r} is not a peer of this node; its peers: {', '.join(sorted(parties))}"
    if channel is not None and channels is not None and channel not in channels:
        known = ", ".join(sorted(channels))
        problems["channel"] = f"{channel!r} is not a channel of the agreement; its channels: {known}"
    ending = None
    if message_id is not None and message_id.strip():
        try:
            ending = id_end(message_id)
        except Invalid as exc:
            problems["id"] = exc.detail
    if problems:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in problems.items()), fields=problems)
    return Search(terms, start, end, tuple(dict.fromkeys(wanted)), tuple(dict.fromkeys(kinds)), peer, ending)
