"""The consultation state machine: a meeting from proposal to co-signed minutes and action items.

    consultation.propose   (proposer)     -> proposed
    consultation.agree     (counterpart)  proposed                   -> agreed
    consultation.cancel    (either)       proposed | agreed          -> cancelled
    consultation.held      (either)       agreed                     -> held
    consultation.minutes   (either)       held | minutes_proposed    -> minutes_proposed
    consultation.cosign    (either)       minutes_proposed           -> minutes_proposed, then
                                                                        minutes_cosigned once every party has
    consultation.item_done (item owner)   minutes_cosigned           -> minutes_cosigned (the item: open -> done)

The consultation's id is the id of its `consultation.propose` envelope, carried as `refs[0]` by
every later `consultation.*` envelope. New minutes replace the pending ones and void their
co-signatures. A co-signature is a `consultation.cosign` envelope with refs
`[consultation id, minutes envelope id]` whose body's `sha256` is the consultation's `minutes_sha256`
(`minutes_digest` of the minutes body: its JCS, not the text alone); its node's signature over the
envelope is the party's signature over the minutes. Each party co-signs once,
the party that wrote the minutes included. An action item's owner is an office of one of the
consultation's parties (the sender also refuses an item already due when the minutes are sent:
`notifications`). An item is `late` if reported done after its due time and `overdue`
(`overdue_items`) while open past its due time.

`consultation.held` says when the meeting took place (`held_at`; `core.notifications` already
refuses a time after the envelope's own). A time before the consultation was proposed is refused:
no meeting is held on a proposal not yet made, so it is a mistyped date. A time before the
scheduled `start` is accepted, since meetings do start early, and flagged: the consultation's
JSON says `held_before_start`, so that both sides and an auditor see it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from detente.core.envelope import Envelope, canonical
from detente.core.precedence import parse_time
from detente.core.workflow_base import (
    COUNTERPART,
    EITHER,
    OWNER,
    Step,
    admit,
    check_role,
    may,
    parse_body,
    party,
    refuse,
    to_json,
)
from detente.core.workflow_bodies import (
    ConsultationCosign,
    ConsultationHeld,
    ConsultationItemDone,
    ConsultationMinutes,
    ConsultationPropose,
)
from detente.errors import InvalidTransition

ConsultationStatus = Literal["proposed", "agreed", "cancelled", "held", "minutes_proposed", "minutes_cosigned"]
TRANSITIONS: dict[str, tuple[str, frozenset[str]]] = {
    "consultation.agree": (COUNTERPART, frozenset({"proposed"})),
    "consultation.cancel": (EITHER, frozenset({"proposed", "agreed"})),
    "consultation.held": (EITHER, frozenset({"agreed"})),
    "consultation.minutes": (EITHER, frozenset({"held", "minutes_proposed"})),
    "consultation.cosign": (EITHER, frozenset({"minutes_proposed"})),
    "consultation.item_done": (OWNER, frozenset({"minutes_cosigned"})),
}


def minutes_digest(body: dict[str, Any]) -> str:
    """Return the hex SHA-256 that co-signers sign: of the JCS bytes of the normalised minutes body.

    The body is normalised through its model first (defaults filled in), so text and items are
    both covered and an omitted default cannot change the digest.
    """
    normal = ConsultationMinutes.model_validate(body).model_dump(mode="json")
    return hashlib.sha256(canonical(normal)).hexdigest()


@dataclass(frozen=True)
class Item:
    """An action item from the minutes."""

    id: str
    title: str
    owner: str
    due: str
    status: Literal["open", "done"] = "open"
    done_by: str | None = None  # id of the item_done envelope
    done_at: str | None = None
    late: bool = False


@dataclass(frozen=True)
class Consultation:
    """Where a consultation stands, as both sides derive it from the same envelopes."""

    id: str
    case: str | None
    proposer: str
    counterpart: str
    created: str
    title: str
    schedule: str | None
    start: str
    venue: str
    agenda: tuple[str, ...]
    status: ConsultationStatus
    held_at: str | None = None
    minutes: str | None = None  # id of the pending or co-signed minutes envelope
    minutes_sha256: str | None = None
    cosigned_by: tuple[tuple[str, str], ...] = ()  # (party, cosign envelope id), in arrival order
    items: tuple[Item, ...] = ()
    history: tuple[Step, ...] = ()

    @property
    def parties(self) -> tuple[str, ...]:
        """The parties that must co-sign the minutes."""
        return tuple(sorted({party(self.proposer), party(self.counterpart)}))

    def to_json(self) -> dict[str, Any]:
        """Return the consultation as JSON for the API."""
        out: dict[str, Any] = to_json(self)
        out["cosigned_by"] = dict(self.cosigned_by)
        out["parties"] = list(self.parties)
        # Derived, not kept: `core.workflow_json` ignores it on the way back, so it can never disagree.
        out["held_before_start"] = self.held_before_start
        return out

    @property
    def held_before_start(self) -> bool:
        """Whether the meeting was held (by `held_at`) before its scheduled start: early, flagged, not refused."""
        return self.held_at is not None and parse_time(self.held_at) < parse_time(self.start)


def open_consultation(envelope: Envelope) -> Consultation:
    """Return the new consultation a `consultation.propose` envelope opens."""
    body = parse_body(envelope, ConsultationPropose)
    return Consultation(
        id=envelope.id, case=envelope.case, proposer=envelope.sender, counterpart=envelope.recipient,
        created=envelope.created, title=body.title, schedule=body.schedule, start=body.start,
        venue=body.venue, agenda=tuple(body.agenda), status="proposed",
        history=(Step.of(envelope, "proposed"),),
    )  # fmt: skip


def apply_consultation(state: Consultation | None, envelope: Envelope) -> Consultation:
    """Return the consultation after `envelope`. Raises `InvalidTransition` if it may not happen now.

    An envelope the consultation already holds is ignored (the same state is returned).
    """
    admitted = admit(
        state, envelope, opener="consultation.propose", noun="consultation", open_=open_consultation, types=TRANSITIONS
    )
    if admitted is not None:
        return admitted
    assert state is not None  # admit refuses a message for an unknown consultation
    role, sources = TRANSITIONS[envelope.type]
    if role != OWNER:
        check_role(role, envelope, state.proposer, state.counterpart, "consultation")
    if state.status not in sources:
        allowed = " or ".join(sorted(sources))
        refuse(f"{envelope.type} is not allowed when the consultation is {state.status} (only when {allowed})")
    changes: dict[str, Any] = {}
    status: ConsultationStatus = state.status
    if envelope.type == "consultation.agree":
        status = "agreed"
    elif envelope.type == "consultation.cancel":
        status = "cancelled"
    elif envelope.type == "consultation.held":
        status, changes["held_at"] = "held", _held_at(state, envelope)
    elif envelope.type == "consultation.minutes":
        minutes = parse_body(envelope, ConsultationMinutes)
        _owners_in_meeting(state, minutes)
        status = "minutes_proposed"
        changes.update(minutes=envelope.id, minutes_sha256=minutes_digest(envelope.body), cosigned_by=())
        changes["items"] = tuple(Item(i.id, i.title, i.owner, i.due) for i in minutes.items)
    elif envelope.type == "consultation.cosign":
        status, changes["cosigned_by"] = _cosign(state, envelope)
    else:
        changes["items"] = _item_done(state, envelope)
    return replace(state, status=status, history=(*state.history, Step.of(envelope, status)), **changes)


def _owners_in_meeting(state: Consultation, minutes: ConsultationMinutes) -> None:
    """Refuse minutes with an action item owned by an office of a party that is not in the consultation.

    Any office of either party may own an item (foreign ministers' minutes task the DGMOs, a DGMOs'
    meeting a liaison officer), as its side closes it (`consultation.item_done`).
    """
    sides = ", ".join(state.parties)
    fields = {
        f"items.{n}.owner": f"{item.owner} is not an office of a party to this consultation ({sides})"
        for n, item in enumerate(minutes.items)
        if party(item.owner) not in state.parties
    }
    if fields:
        raise InvalidTransition("; ".join(f"{k}: {v}" for k, v in fields.items()), fields=fields)


def _held_at(state: Consultation, envelope: Envelope) -> str:
    """Return the `held_at` of a `consultation.held`; refuse one before the consultation was proposed."""
    held_at = parse_body(envelope, ConsultationHeld).held_at
    if parse_time(held_at) < parse_time(state.created):
        refuse(
            f"consultation.held: held_at {held_at} is before the consultation was proposed ({state.created}); "
            "a meeting cannot be held before it is proposed: check the date and time (UTC)"
        )
    return held_at


def _cosign(state: Consultation, envelope: Envelope) -> tuple[ConsultationStatus, tuple[tuple[str, str], ...]]:
    digest = parse_body(envelope, ConsultationCosign).sha256
    if envelope.refs[1:] != [state.minutes]:
        refuse(f"consultation.cosign must ref the pending minutes {state.minutes} after the consultation id")
    if digest != state.minutes_sha256:
        # The expected digest is not quoted: a co-signer computes it from the minutes they read
        # (`minutes_digest`), never copies it from an error.
        refuse(f"consultation.cosign carries sha256 {digest}, not the SHA-256 of the pending minutes {state.minutes}")
    signer = party(envelope.sender)
    if signer in dict(state.cosigned_by):
        refuse(f"{signer} has already co-signed these minutes")
    cosigned = (*state.cosigned_by, (signer, envelope.id))
    done = set(state.parties) <= {p for p, _ in cosigned}
    return ("minutes_cosigned" if done else "minutes_proposed"), cosigned


def _item_done(state: Consultation, envelope: Envelope) -> tuple[Item, ...]:
    item_id = parse_body(envelope, ConsultationItemDone).item
    item = next((i for i in state.items if i.id == item_id), None)
    if item is None:
        refuse(f"the minutes have no action item {item_id!r}")
    if party(envelope.sender) != party(item.owner):
        refuse(f"action item {item_id!r} belongs to {item.owner}; {envelope.sender} may not close it")
    if item.status == "done":
        refuse(f"action item {item_id!r} is already done")
    late = parse_time(envelope.created) > parse_time(item.due)
    done = replace(item, status="done", done_by=envelope.id, done_at=envelope.created, late=late)
    return tuple(done if i.id == item_id else i for i in state.items)


def overdue_items(state: Consultation, now: datetime) -> list[Item]:
    """Return the co-signed minutes' action items still open after their due time at `now`."""
    if state.status != "minutes_cosigned":
        return []
    return [i for i in state.items if i.status == "open" and parse_time(i.due) < now]


def allowed_consultation_types(state: Consultation, office: str) -> list[str]:
    """Return the `consultation.*` types `office` may send now."""
    out = []
    for name, (role, sources) in TRANSITIONS.items():
        if state.status not in sources:
            continue
        if role == OWNER:
            if any(i.status == "open" and party(i.owner) == party(office) for i in state.items):
                out.append(name)
        elif may(role, office, state.proposer, state.counterpart):
            if name != "consultation.cosign" or party(office) not in dict(state.cosigned_by):
                out.append(name)
    return out
