"""Body models of the structured notifications, and the parts they share.

Each model is strict (no coercion, unknown members refused) and frozen. A model checks only what
its own fields say (a window ends after it starts, an area is a circle or a polygon); rules that need
the agreement or the envelope's `created` time (lead times, deadlines, the codebook) live in
`core.notifications`. Times are RFC 3339 UTC strings (`2024-01-16T13:05:00Z`), kept as sent.
What a body must say in words (`require_words`), how a text is shown cut short (`clip`), and what
one line says of a body (`body_summary`), for the CLI and the console alike, are here too.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from detente.core.precedence import parse_time
from detente.errors import Invalid


class Body(BaseModel):
    """Base of every body model: unknown members are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _utc(value: str) -> str:
    try:
        parse_time(value)
    except Invalid as exc:
        raise PydanticCustomError("utc_time", exc.detail) from None
    return value


# The pydantic validation context of a body this node is about to send (`notifications.validate_body`):
# rules added after envelopes were already sealed without them apply only then (see `_not_blank`).
SENDING: dict[str, Any] = {"sending": True}

# Default_Ignorable_Code_Point characters that are not of category Cf (those `is_blank` finds by their
# category): the combining grapheme joiner, the Hangul fillers, the Khmer inherent vowels, the
# Mongolian and the other variation selectors. A renderer shows none of them on its own.
_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF),
)  # fmt: skip


def _invisible(ch: str) -> bool:
    if ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc"):
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE)


def is_blank(text: str) -> bool:
    """Return whether `text` shows nothing: it is empty or only whitespace and invisible characters.

    Invisible are the format characters (category Cf: zero-width space U+200B, the joiners U+200C/D,
    the bidirectional marks, word joiner U+2060, U+FEFF), control characters and the other
    default-ignorable code points. `str.strip()` keeps all of these, so a text made of them alone
    would pass for words. This is the one blank rule of every text a person must write.
    """
    return all(_invisible(ch) for ch in text)


# Free text a person must write, which says nothing when blank. A sender refuses it (`node.outgoing`,
# and the drill's planner before a drill runs, both through `require_words`), not the types' models:
# those also judge the peer's envelopes, and an envelope an earlier release sealed with a blank text
# must still be stored, or its channel would stall.
WORDS: dict[str, tuple[str, ...]] = {"hotline.text": ("text",), "statement": ("text",), "decline": ("reason",)}


def require_words(kind: str, body: dict[str, Any]) -> None:
    """Raise `Invalid` (with `fields`) if a free-text field of `body` that must say something is blank.

    Blank is `is_blank`: whitespace and invisible characters (U+200B ...) say nothing either.
    """
    blank = {f: "must not be blank" for f in WORDS.get(kind, ()) if isinstance(body.get(f), str) and is_blank(body[f])}
    if blank:
        raise Invalid(f"{kind}: " + "; ".join(f"{f}: must not be blank" for f in blank), fields=blank)


def _not_blank(value: str, info: ValidationInfo) -> str:
    # On receipt only whitespace counts as blank, the rule every release has sealed under: a peer's
    # envelope an earlier release sealed with invisible text must still be stored, or its channel
    # would stall. The full rule is the sender's (context `SENDING`).
    sending = isinstance(info.context, dict) and info.context.get("sending") is True
    if is_blank(value) if sending else not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


UtcTime = Annotated[str, Field(max_length=40, json_schema_extra={"format": "date-time"}), AfterValidator(_utc)]
Short = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Long = Annotated[str, Field(min_length=1, max_length=5_000), AfterValidator(_not_blank)]
Note = Annotated[str, Field(max_length=2_000)]
Level = Annotated[int, Field(ge=0, le=5, description="escalation level, 0 (calm) to 5 (armed conflict)")]
OfficeId = Annotated[str, Field(pattern=r"^[a-z]{2,8}:[a-z0-9][a-z0-9-]{0,31}$", max_length=41)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Lines = Annotated[list[Long], Field(min_length=1, max_length=20)]


class Point(Body):
    """A WGS 84 position in decimal degrees."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Location(Point):
    """A position and its place name (village, district)."""

    place: Short


class Area(Body):
    """A circle (`center` and `radius_km`) or a polygon of 3 to 64 points, never both."""

    center: Point | None = None
    radius_km: float | None = Field(default=None, gt=0, le=1_000)
    polygon: list[Point] | None = Field(default=None, min_length=3, max_length=64)
    place: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _one_shape(self) -> Area:
        circle = self.center is not None and self.radius_km is not None
        partial = (self.center is None) != (self.radius_km is None)
        if partial or circle == (self.polygon is not None):
            raise PydanticCustomError("area_shape", "give either center and radius_km, or polygon")
        return self


class Window(Body):
    """A time window; `end` is after `start`."""

    start: UtcTime
    end: UtcTime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if parse_time(self.end) <= parse_time(self.start):
            raise PydanticCustomError("window_order", "end must be after start")
        return self


class Casualties(Body):
    """Counts of people killed, injured and missing; null where not known."""

    killed: int | None = Field(default=None, ge=0, le=1_000_000)
    injured: int | None = Field(default=None, ge=0, le=1_000_000)
    missing: int | None = Field(default=None, ge=0, le=1_000_000)


IncidentKind = Literal[
    "airspace_violation", "cross_border_fire", "strike", "drone", "border_crossing",
    "non_state_attack", "accidental_launch", "other",
]  # fmt: skip


class IncidentReport(Body):
    """An incident as the sender saw it, and the sender's own assessment of it."""

    kind: IncidentKind
    time: UtcTime
    location: Location
    description: Long
    casualties: Casualties = Field(default_factory=Casualties)
    assessment: Long
    escalation: Level | None = None


class ClarificationRequest(Body):
    """Questions the addressee must answer by `deadline` (default: the agreement's, else 48 h)."""

    questions: Lines
    deadline: UtcTime | None = None


class ClarificationResponse(Body):
    """Answers to a clarification request, in the order of its questions."""

    answers: Lines
    note: Note = ""


class OperationPrenotify(Body):
    """Advance notice of a counter-terrorism operation near the border; opens an action."""

    area: Area
    window: Window
    forces: Long
    target_group: Short
    objective: Long
    respond_by: UtcTime | None = None


class MissilePrenotify(Body):
    """A surface-to-surface ballistic missile flight test: >= 72 h ahead, window <= 5 days."""

    missile: str = Field(default="", max_length=200)
    launch_site: Location
    impact_area: Area
    window: Window


class ExercisePrenotify(Body):
    """Advance notice of a military exercise near the border."""

    name: Short
    domain: Literal["land", "naval", "air", "combined"]
    area: Area
    window: Window
    forces: Long
    troops: int | None = Field(default=None, ge=0, le=10_000_000)
    description: str = Field(default="", max_length=5_000)


class IntelShare(Body):
    """Intelligence on a (usually non-state armed) group, valid until `valid_until`."""

    group: Short
    location: Location
    confidence: Literal["low", "medium", "high"]
    valid_until: UtcTime
    summary: Long


class DiplomaticStatus(Body):
    """A change of diplomatic posture."""

    event: Literal["ambassador_recalled", "ambassador_returned", "engagements_suspended", "engagements_resumed"]
    note: Note = ""


class DeescalationProposal(Body):
    """Measures proposed to lower tension."""

    measures: Lines
    note: Note = ""


class Statement(Body):
    """A formal statement of a government's position."""

    text: str = Field(min_length=1, max_length=10_000)


def _scalar(value: object) -> str | int | float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("param_value", "must be a string or a number")


# A codebook parameter: its type is checked against the entry (codebook.check_params).
ParamValue = Annotated[str | int | float, PlainValidator(_scalar), WithJsonSchema({"type": ["string", "number"]})]


class Code(Body):
    """A pre-agreed codebook message, rendered in the reader's language from the agreement."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*$", max_length=48)
    params: dict[Annotated[str, Field(max_length=32)], ParamValue] = Field(default_factory=dict, max_length=16)
    note: Note = ""


# A cut text ends in this; the last whitespace-led word within a bound starts where a cut may go.
ELLIPSIS = "…"
_LAST_WORD = re.compile(r"\s\S*\Z")


def clip(text: str, limit: int) -> tuple[str, bool]:
    """Return `text` and False if it has at most `limit` characters; else its head and True.

    The head ends at the last word boundary within `limit` characters (within them anyway if the
    text has no whitespace there) and with a visible "…": a reader must never take a cut sentence
    for a whole one, nor a word cut in two (in Persian, "نداریم" cut to "ندار" turns "we do not
    have" into "we have") for another word.
    """
    if len(text) <= limit:
        return text, False
    # One character past the bound: if it is whitespace, the bound itself is a word boundary.
    word = _LAST_WORD.search(text, 0, limit + 1)
    head = text[: word.start()].rstrip() if word is not None else ""
    # No boundary (one long token, a URL): cut at the bound; the "…" still shows the cut.
    return (head or text[:limit]) + ELLIPSIS, True


# The members whose text says what a message is about, the first a body has naming it (the console's
# short rows take the same ones, in this order).
SUMMARY_FIELDS = ("text", "title", "summary", "description", "objective", "reason", "note", "target_group")
# Lists of texts that say it when no member above does: a request's questions, a proposal's measures.
SUMMARY_LISTS = ("questions", "answers", "measures", "agenda")


def body_summary(body: object) -> str:
    """Return one line saying what a message body is about, for a list of messages.

    The first of `SUMMARY_FIELDS` that says something (not `is_blank`), as written; else the texts
    of the first of `SUMMARY_LISTS` that has any, joined by " | "; else the body's short members as
    `name: value`, joined by ", " (a place stands for a location, a window is `start – end`, nested
    members otherwise left out): `status: contained, escalation: 2`. An empty body is "".
    Never raises: a body of any shape (a peer's, an older release's) gives some line.
    """
    if not isinstance(body, dict):
        return "" if body is None else str(body)
    for name in SUMMARY_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and not is_blank(value):
            return value
    for name in SUMMARY_LISTS:
        texts = [v for v in body.get(name) or [] if isinstance(v, str) and not is_blank(v)]
        if texts:
            return " | ".join(texts)
    return ", ".join(f"{name}: {shown}" for name, value in body.items() if (shown := _short(value)))


def _short(value: object) -> str:
    """Return a body member as `body_summary` shows it among the others, or "" to leave it out."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, str | int | float):
        return "" if isinstance(value, str) and is_blank(value) else str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        place = value.get("place")
        if isinstance(place, str) and not is_blank(place):
            return place
        if isinstance(value.get("start"), str) and isinstance(value.get("end"), str):
            return f"{value['start']} – {value['end']}"
    return ""
