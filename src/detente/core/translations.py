"""Certified translations: a translator's reading of a message, and another translator's verdict on it.

MOLINK practice (reference/domain.md §0, §1.1): an incoming message is translated, the
translation is reviewed by the next shift and certified before it is filed; the original is
signed in its own language and each translation is kept beside it, never in its place.

    translation          refs [the message translated]    body {lang, text}
    translation.review   refs [the translation]           body {verdict: certified | disputed, note}

Both are envelopes like any other: signed, logged on both sides and delivered to the peer, so
that the side that wrote a message sees at once how the other side read it. Neither is
acknowledged. The rules here are pure: who may translate or review what is decided from the
facts a node reads from its rows (`Original`, `Reviewed`), and what a message's translations
amount to (`certified`) from their envelopes alone.

Two-person rule: a translation is certified by a review from another operator of the same party
as its author (a side certifies its own translations, never the other side's). A later dispute
by a third translator stands beside the certification; both are shown.

Order: a translation is made after the message it translates, and a review after its translation.
A receiver refuses one stamped earlier (`check_not_before`), by more than the clocks may disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from detente.core import clocks
from detente.core.bodies import Body, is_blank
from detente.core.precedence import parse_time
from detente.core.rules import Draft
from detente.core.wire import MAX_SKEW_SECONDS
from detente.errors import Conflict, Forbidden, Invalid

TRANSLATION = "translation"
REVIEW = "translation.review"
TYPES = (TRANSLATION, REVIEW)
VERDICTS = ("certified", "disputed")
TEXT_MAX = 10_000
NOTE_MAX = 2_000
# Seconds a translation (a review) may seem to come before what it is about. Stamped by one clock, as
# a peer's translation of its own message or review of its own translation is, only a clock stepped
# back (by NTP) does that. Across two clocks the peer's stamp is read in this node's clock with the
# offset a link test measured, which may not be measured yet or may have gone stale: as much as two
# clocks may disagree while their nodes still federate (`wire.MAX_SKEW_SECONDS`).
SAME_CLOCK = clocks.TOLERANCE
OTHER_CLOCK = float(MAX_SKEW_SECONDS)


def _words(value: str) -> str:
    # The two types are new, so no earlier release sealed a blank one: the sender's full blank
    # rule (`bodies.is_blank`) holds on both sides.
    if is_blank(value):
        raise PydanticCustomError("blank", "must not be blank")
    return value


class Translation(Body):
    """A translation of the referenced message into one of the agreement's other languages."""

    lang: str = Field(min_length=2, max_length=3, description="the language of the translation")
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX), AfterValidator(_words)]


class TranslationReview(Body):
    """A translator's verdict on the referenced translation: certified, or disputed with a note."""

    verdict: Literal["certified", "disputed"]
    note: str = Field(default="", max_length=NOTE_MAX)


def lang_known(draft: Draft) -> dict[str, str]:
    """A translation's language must be one of the agreement's."""
    lang = draft.body.get("lang")
    if lang in draft.agreement.languages:
        return {}
    return {"lang": f"{lang!r} is not one of the agreement's languages: {', '.join(draft.agreement.languages)}"}


def dispute_says_why(draft: Draft) -> dict[str, str]:
    """A dispute must say what is wrong with the translation: its note must not be blank."""
    if draft.body.get("verdict") == "disputed" and is_blank(str(draft.body.get("note", ""))):
        return {"note": "a dispute must say what is wrong with the translation"}
    return {}


@dataclass(frozen=True)
class Original:
    """What the translation rules need to know of a stored message: its type, language and ends."""

    id: str
    type: str
    service: bool  # an ack, a link test, a translation ...: not translated
    lang: str | None
    direction: str  # "in" (received) or "out" (sent); anything else is this node's own record
    peer: str  # the party at the other end


def check_translatable(original: Original, lang: str, languages: Sequence[str]) -> None:
    """Refuse a translation of `original` into `lang`.

    Raises `Invalid` (field `lang`) for a language that is not the agreement's or is the
    original's own, and `Invalid` (no field: the message is in the path) for a service message
    or one that did not travel between two parties.
    """
    if original.direction not in ("in", "out"):
        raise Invalid(f"message {original.id} did not travel between two parties; only those are translated")
    if original.service:
        raise Invalid(f"{original.type} is a service message; only messages between offices are translated")
    if lang not in languages:
        detail = f"{lang!r} is not one of the agreement's languages: {', '.join(languages)}"
        raise Invalid(detail, fields={"lang": detail})
    if lang == original.lang:
        detail = f"the message is already in {lang}: translate it into another of {', '.join(languages)}"
        raise Invalid(detail, fields={"lang": detail})


@dataclass(frozen=True)
class Reviewed:
    """What the two-person rule needs to know of a stored translation."""

    id: str
    type: str
    author: str  # the operator id on the node that sent it
    party: str  # the party whose translator wrote it


def check_reviewer(translation: Reviewed, reviewer: str, reviewer_party: str, earlier: Iterable[str] = ()) -> None:
    """Refuse a review of `translation` by operator `reviewer` of `reviewer_party`.

    `earlier` holds the authors of the reviews the translation already has. Raises `Invalid` if it
    is not a translation, `Forbidden` for a reviewer of the other party or the translation's own
    author (the two-person rule), and `Conflict` for a second review by the same person.
    """
    if translation.type != TRANSLATION:
        raise Invalid(f"message {translation.id} is a {translation.type}, not a translation")
    if reviewer_party != translation.party:
        raise Forbidden(
            f"translation {translation.id} was made by {translation.party}: a side reviews only its own translations"
        )
    if reviewer == translation.author:
        raise Forbidden("you made this translation: another translator reviews it (two-person rule)")
    if reviewer in set(earlier):
        raise Conflict(f"you already reviewed translation {translation.id}")


def check_not_before(kind: str, created: str, about: str, allowance: float) -> None:
    """Refuse a translation stamped before the message it translates, or a review before its translation.

    `created` is the envelope's time and `about` that of what it refers to, both RFC 3339 times read
    in one clock; `allowance` is the seconds `created` may still come before it (`SAME_CLOCK`,
    `OTHER_CLOCK`). Raises `Invalid` (field `created`) if it comes earlier still, or if either time
    is not an RFC 3339 time.
    """
    early = (parse_time(about) - parse_time(created)).total_seconds()
    if early > allowance:
        what = "the message it translates" if kind == TRANSLATION else "the translation it reviews"
        detail = (
            f"{kind} created {created} is {clocks.amount(early)} before {what} ({about}): "
            f"made after it, it cannot be stamped earlier (by more than {clocks.amount(allowance)})"
        )
        raise Invalid(detail, fields={"created": detail})


def certified(reviews: Iterable[Mapping[str, Any]]) -> bool:
    """Return whether a translation is certified: one of its reviews certifies it.

    A dispute does not undo a certification: it stands beside it, and both are shown.
    """
    return any(r.get("verdict") == "certified" for r in reviews)
