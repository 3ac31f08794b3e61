"""The conditions of a search on the envelopes table (`core.search`): words, times, precedence, id.

Words are matched with LIKE in the stored, folded words (`envelopes.words`): each term is folded
the same way, and its `%`, `_` and escape character are escaped, so that `50%` finds the text
`50%` and nothing else. A term is found in the message's own words, in the words of a
translation of it (an envelope of type `translation` whose first ref is the message: the `ref`
index), or as a codebook message of a code whose text holds it (`Term.codes`; a codebook
message's words start with its code on a line of its own). LIKE with a leading `%` reads every
row the other filters leave; the newest-first order on `log_index` stops at the page's end.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select

from detente.core.search import SEPARATOR, Search, Term, fold
from detente.core.translations import TRANSLATION
from detente.store.tables import envelopes

_translation = envelopes.alias("translation")


def _holds(term: Term) -> ColumnElement[bool]:
    """The condition that an envelope row holds `term`: in its words, a translation's, or its code's text."""
    found: list[ColumnElement[bool]] = [envelopes.c.words.contains(term.text, autoescape=True)]
    found.append(
        exists(
            select(_translation.c.id).where(
                _translation.c.ref == envelopes.c.id,
                _translation.c.type == TRANSLATION,
                _translation.c.words.contains(term.text, autoescape=True),
            )
        )
    )
    if term.codes:
        prefixes = [envelopes.c.words.startswith(fold(code) + SEPARATOR, autoescape=True) for code in term.codes]
        found.append(and_(envelopes.c.type == "code", or_(*prefixes)))
    return or_(*found)


def conditions(search: Search) -> list[ColumnElement[bool]]:
    """Return the WHERE terms of `search`: every term, the window, the precedences, types, peer and id."""
    where: list[ColumnElement[bool]] = [_holds(term) for term in search.terms]
    if search.since is not None:
        # Every row's `created` has the same fixed-width form (an incoming envelope's is rewritten
        # to it when stored), so comparing the text compares the times.
        where.append(envelopes.c.created >= search.since)
    if search.until is not None:
        where.append(envelopes.c.created < search.until)
    if search.precedences:
        where.append(envelopes.c.precedence.in_(search.precedences))
    if search.types:
        where.append(envelopes.c.type.in_(search.types))
    if search.party is not None:
        where.append(envelopes.c.peer == search.party)
    if search.id_end is not None:
        where.append(envelopes.c.id.endswith(search.id_end, autoescape=True))
    return where
