"""Languages of the console: gettext catalogs, writing direction, and times as officers read them.

Catalogs are standard gettext files under `web/translations/<lang>/LC_MESSAGES/messages.{po,mo}`,
extracted from the templates and the console's Python modules with Babel (`scripts/i18n`). The
`.mo` files are compiled from the `.po` files by that script and committed; a unit test checks
that they match. A string without a translation falls back to English.

Every time is shown in UTC first, with the local time of the party (or of every party, on a case
timeline) beside it and the date-time group (`161305ZJAN24`); a Persian view adds the Solar Hijri
date of the viewer's local day.
"""

from __future__ import annotations

import functools
import gettext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jdatetime
from babel.support import Translations

from detente.core.precedence import dtg, parse_time
from detente.errors import Invalid

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
DOMAIN = "messages"
LANGUAGES = ("en", "ur", "fa")
RTL_LANGUAGES = frozenset({"ur", "fa", "ar", "ps", "he"})
# Each language's own name for itself: the same in every interface language, so never translated.
AUTONYMS = {"en": "English", "ur": "اردو", "fa": "فارسی"}
LANG_COOKIE = "detente-lang"


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it here (it is translated when shown)."""
    return message


@functools.cache
def catalog(lang: str) -> gettext.NullTranslations:
    """Return the compiled catalog of `lang` (English needs none: the message ids are English)."""
    if lang == "en" or lang not in LANGUAGES:
        return gettext.NullTranslations()
    return Translations.load(str(TRANSLATIONS), [lang], DOMAIN)


def pick(*candidates: str | None, allowed: tuple[str, ...] = LANGUAGES) -> str:
    """Return the first candidate that is a console language, else English."""
    for candidate in candidates:
        if candidate and candidate in allowed:
            return candidate
    return "en"


def text_language(own: str | None, page: str, agreed: tuple[str, ...]) -> str:
    """Return the language the agreement's own texts (codebook messages) are shown in to a reader.

    It is the reader's own language (`own`, as `user add --lang` set it) when the agreement has
    texts in it but the console has no pages in it (Pashto, in an agreement that lists `ps`): the
    page is then in `page`, mostly English, and the codebook texts in the reader's language. Else
    it is `page`, as the rest of the page is. Raises nothing.
    """
    return own if own and own not in LANGUAGES and own in agreed else page


def replaces(own: str, chosen: str) -> bool:
    """Return whether choosing `chosen` in the console replaces the operator's saved language `own`.

    English chosen by an operator whose own language the console has no pages in (Pashto) is the
    page they already read: their language, in which they read the codebook texts and use the
    command line, stays. Any other choice different from theirs replaces it. Raises nothing.
    """
    return chosen != own and not (chosen == "en" and own not in LANGUAGES)


def from_accept_language(header: str | None) -> str | None:
    """Return the first console language named in an `Accept-Language` header, if any."""
    for part in (header or "").split(","):
        code = part.split(";", 1)[0].strip().lower().split("-", 1)[0]
        if code in LANGUAGES:
            return code
    return None


@dataclass(frozen=True)
class Locale:
    """One interface language: translation, direction, and how times are written in it."""

    code: str

    @property
    def dir(self) -> str:
        """`rtl` for a right-to-left language (Urdu, Persian, Pashto), else `ltr`."""
        return "rtl" if self.code in RTL_LANGUAGES else "ltr"

    @property
    def autonym(self) -> str:
        return AUTONYMS.get(self.code, self.code)

    def gettext(self, message: str) -> str:
        """Return `message` in this language (English if the catalog lacks it)."""
        return catalog(self.code).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Return the singular or plural form of a message for `n`."""
        return catalog(self.code).ngettext(singular, plural, n)

    def solar_hijri(self, moment: datetime) -> str:
        """Return the Solar Hijri date of `moment` (a local time), e.g. `26 دی 1402`."""
        local = jdatetime.datetime.fromgregorian(datetime=moment, locale="fa_IR")
        return str(local.strftime("%d %B %Y"))


@dataclass(frozen=True)
class Zone:
    """A party's local time: its id and UTC offset from the agreement."""

    party: str
    offset: timedelta

    @property
    def label(self) -> str:
        """E.g. `PK UTC+05:00`."""
        minutes = int(self.offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"{self.party.upper()} UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class Stamp:
    """One moment, written every way an officer may need it."""

    iso: str
    utc: str  # 2024-01-16 13:05:00Z
    short: str  # 13:05Z today, else 2024-01-16 13:05Z
    dtg: str  # 161305ZJAN24
    local: tuple[tuple[str, str], ...]  # (zone label, "2024-01-16 18:05")
    hijri: str  # Solar Hijri date of the first zone's local day, in a Persian view; else ""
    today: bool = True  # the UTC date is today's: short forms may leave the date out


def stamp(iso: str | None, zones: tuple[Zone, ...], locale: Locale) -> Stamp | None:
    """Return every rendering of an RFC 3339 UTC time, or None if there is no (valid) time."""
    if not iso:
        return None
    try:
        moment = parse_time(iso)
    except Invalid:
        return None
    local = tuple((z.label, (moment + z.offset).strftime("%Y-%m-%d %H:%M")) for z in zones)
    hijri = ""
    if locale.code == "fa" and zones:
        hijri = locale.solar_hijri((moment + zones[0].offset).replace(tzinfo=None))
    today = moment.date() == datetime.now(UTC).date()
    return Stamp(
        iso=iso,
        utc=moment.strftime("%Y-%m-%d %H:%M:%SZ"),
        short=moment.strftime("%H:%MZ" if today else "%Y-%m-%d %H:%MZ"),
        dtg=dtg(moment),
        local=local,
        hijri=hijri,
        today=today,
    )
