"""Body models of the workflow messages: cases, coordinated actions and consultations.

Every workflow message but the openers refers to its workflow through the envelope: `case.update`
through the envelope's `case`; `action.*` and `consultation.*` through `refs[0]`, the id of the
opening envelope (`operation.prenotify`, `consultation.propose`). The state machines that give
these messages their meaning are in `core.workflows`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from detente.core.bodies import Body, Casualties, Level, Lines, Long, Note, OfficeId, Short, UtcTime

# Evidence files are stored content-addressed by the node; the envelope carries their hash.
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
EVIDENCE_MEDIA_TYPES = (
    "image/jpeg", "image/png", "image/webp", "application/pdf", "text/plain", "video/mp4",
)  # fmt: skip
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def _hex_digest(value: str) -> str:
    # Said in words: a pattern's own error ("should match pattern '^[0-9a-f]{64}$'") reads as code.
    if not _HEX_DIGEST.fullmatch(value):
        raise PydanticCustomError("sha256", "must be a SHA-256: 64 hexadecimal digits (0-9, a-f) in lower case")
    return value


# A hex SHA-256 as the record writes it (lower case); the schema keeps the pattern for API clients. No
# maxLength: a browser would cut a digest pasted with a space around it (the console trims it instead).
Sha256 = Annotated[str, Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"}), AfterValidator(_hex_digest)]
ItemId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
CaseStatus = Literal["open", "contained", "resolved"]


class CaseOpen(Body):
    """Open a case explicitly (an `incident.report` opens one too)."""

    title: Short
    summary: str = Field(default="", max_length=5_000)
    escalation: Level | None = None


class CaseUpdate(Body):
    """Change a case's status and/or the sender's side's escalation level."""

    status: CaseStatus | None = None
    escalation: Level | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _something(self) -> CaseUpdate:
        if self.status is None and self.escalation is None:
            raise PydanticCustomError("empty_update", "give a status, an escalation level or both")
        return self


class Evidence(Body):
    """A file backing a report: the node stores it by its SHA-256 and the peer fetches it."""

    sha256: Sha256
    name: Short
    media_type: Literal[EVIDENCE_MEDIA_TYPES]  # type: ignore[valid-type]
    size: int = Field(ge=1, le=MAX_EVIDENCE_BYTES)


EvidenceList = Annotated[list[Evidence], Field(max_length=20)]


class ActionConsent(Body):
    """The other side consents to the operation, possibly on conditions."""

    note: Note = ""
    conditions: list[Long] = Field(default_factory=list, max_length=20)


class ActionObject(Body):
    """The other side objects to the operation (before it is executed)."""

    reason: Long


class ActionRequestInfo(Body):
    """The other side asks for more information before deciding."""

    questions: Lines


class ActionProvideInfo(Body):
    """The proposing side answers a request for information; the action awaits a decision again."""

    text: Long


class ActionWithdraw(Body):
    """The proposing side calls the operation off."""

    reason: Note = ""


class ActionExecute(Body):
    """The proposing side records that the operation was carried out (or started) at `started`."""

    started: UtcTime
    note: Note = ""


class ActionReport(Body):
    """The after-action report, with its evidence."""

    summary: Long
    casualties: Casualties = Field(default_factory=Casualties)
    evidence: EvidenceList = Field(default_factory=list)


class ActionVerify(Body):
    """The other side's liaison officer confirms the report."""

    note: Note = ""
    evidence: EvidenceList = Field(default_factory=list)


class ActionDispute(Body):
    """The other side's liaison officer disputes the report."""

    reason: Long
    evidence: EvidenceList = Field(default_factory=list)


class ConsultationPropose(Body):
    """Propose a consultation: agenda, start time and venue (`schedule`: a [consultations] key)."""

    title: Short
    agenda: Annotated[list[Long], Field(min_length=1, max_length=30)]
    start: UtcTime
    venue: Short
    schedule: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ConsultationAgree(Body):
    """The other side agrees to the proposed consultation."""

    note: Note = ""


class ConsultationCancel(Body):
    """Either side calls off a consultation that has not been held."""

    reason: Long


class ConsultationHeld(Body):
    """The consultation took place."""

    held_at: UtcTime
    participants: list[Short] = Field(default_factory=list, max_length=50)
    note: Note = ""


class ActionItem(Body):
    """Something a named office has to do by `due`."""

    id: ItemId
    title: Annotated[str, Field(min_length=1, max_length=500)]
    owner: OfficeId
    due: UtcTime


class ConsultationMinutes(Body):
    """Proposed minutes; each party co-signs their `minutes_sha256`: the SHA-256 of this body's JCS, items included."""

    text: Annotated[str, Field(min_length=1, max_length=30_000)]
    items: list[ActionItem] = Field(default_factory=list, max_length=50)

    @field_validator("items")
    @classmethod
    def _unique_items(cls, items: list[ActionItem]) -> list[ActionItem]:
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise PydanticCustomError("duplicate_item", "action item ids must be distinct")
        return items


class ConsultationCosign(Body):
    """A party's signature over the minutes: refs the consultation, then the minutes envelope.

    `sha256` is the consultation's `minutes_sha256`: the SHA-256 of the JCS bytes of the minutes body
    (text and items, `items` as [] when there are none), not of the minutes text alone. Its node signs
    this envelope.
    """

    sha256: Sha256


class ConsultationItemDone(Body):
    """The owner's side reports an action item done."""

    item: ItemId
    note: Note = ""
