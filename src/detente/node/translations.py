"""Certified translations: a translator translates a message, another translator reviews it.

A translation and its review are envelopes like any other (`node.outgoing` seals, logs and queues
them, and the peer logs them): they travel on the channel of the message they are about, from
this side's office on that channel to the peer's, with the message's precedence, so that a FLASH
message's translation is not queued behind ROUTINE traffic and the side that wrote it sees at once
how it was read. The rules are `core.translations`'; this module reads the rows they judge, and
says who may act: a translator or supervisor bound to this side's office on the channel, or to one
of its alternates (the envelope still goes from the channel's office: a channel links two offices).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from detente.core import clocks, notifications, wire
from detente.core import translations as tr
from detente.core.envelope import Envelope
from detente.core.precedence import Precedence
from detente.errors import Conflict, Forbidden, Invalid, NotFound
from detente.node.auth import TRANSLATING_ROLES, may_read
from detente.node.context import NodeContext
from detente.node.events import Event
from detente.node.outgoing import Sent, record_outgoing
from detente.store import messages as db
from detente.store import translations as tr_db
from detente.store.messages import EnvelopeRow
from detente.store.operators import Operator


def require_translator(operator: Operator) -> None:
    """Raise `Forbidden` unless the operator holds a role that translates (translator, supervisor)."""
    if not any(operator.has(r) for r in TRANSLATING_ROLES):
        roles = ", ".join(operator.roles) or "no role"
        raise Forbidden(
            f"operator {operator.name} ({roles}) may not translate or review translations: "
            "only a translator or supervisor does"
        )


def own_office(row: EnvelopeRow) -> str:
    """Return this side's office on the channel of a message sent or received."""
    return str(row["to_office"] if row["direction"] == "in" else row["from_office"])


def _bound(ctx: NodeContext, operator: Operator, office: str) -> bool:
    """Whether the operator holds `office` or one of its alternates."""
    return office in operator.offices or any(o in operator.offices for o in ctx.agreement.alternates(office))


def _visible(ctx: NodeContext, operator: Operator, row: EnvelopeRow) -> bool:
    return may_read(operator, row["from_office"], row["to_office"]) or (
        row["direction"] in ("in", "out") and _bound(ctx, operator, own_office(row))
    )


def _require_bound(ctx: NodeContext, operator: Operator, office: str) -> None:
    if not _bound(ctx, operator, office):
        raise Forbidden(f"operator {operator.name} is not bound to office {office} or to one of its alternates")


def original_of(row: EnvelopeRow) -> tr.Original:
    """Return what the translation rules know of a stored message."""
    kind = notifications.CATALOG.get(str(row["type"]))
    lang = json.loads(row["raw"]).get("lang")
    return tr.Original(
        id=str(row["id"]), type=str(row["type"]), service=kind is None or kind.service,
        lang=lang if isinstance(lang, str) else None, direction=str(row["direction"]), peer=str(row["peer"]),
    )  # fmt: skip


def _reviewed(ctx: NodeContext, row: EnvelopeRow) -> tr.Reviewed:
    party = ctx.party if row["direction"] == "out" else str(row["peer"])
    return tr.Reviewed(id=str(row["id"]), type=str(row["type"]), author=str(row["author"]), party=party)


def _reviewers(conn: Connection, translation_id: str) -> list[str]:
    return [str(r["author"]) for r in tr_db.referring_of_type(conn, [translation_id], tr.REVIEW)]


def translate_job(
    ctx: NodeContext, operator: Operator, message_id: str, lang: str, text: str
) -> Callable[[Connection], Sent]:
    """Return the writer job that records a translation of message `message_id` into `lang`.

    Before the job: `Forbidden` for an operator who does not translate, `Invalid` (fields `lang`,
    `text`) for a bad body. The job raises `NotFound` for a message the operator cannot see,
    `Forbidden` for one of an office they are not bound to, `Invalid` for a service message or
    a language the message is already in, and `Conflict` when the peer runs an earlier release
    without translations (`wire.ACCEPTS`); nothing is written then.
    """
    require_translator(operator)
    body = {"lang": lang, "text": text}
    notifications.validate_body(tr.TRANSLATION, body, ctx.agreement)

    def job(conn: Connection) -> Sent:
        row = db.get_envelope(conn, message_id)
        if row is None or not _visible(ctx, operator, row):
            raise NotFound(f"no message {message_id} for your offices")
        original = original_of(row)
        # What the message is comes first: a link test is no one's to translate, bound or not (QA).
        tr.check_translatable(original, lang, ctx.agreement.languages)
        if original.direction in ("in", "out"):
            _require_bound(ctx, operator, own_office(row))
        return _record(conn, ctx, operator, row, tr.TRANSLATION, body, {"message": message_id, "lang": lang})

    return job


def review_job(
    ctx: NodeContext, operator: Operator, translation_id: str, verdict: str, note: str
) -> Callable[[Connection], Sent]:
    """Return the writer job that certifies or disputes translation `translation_id`.

    Before the job: `Forbidden` for an operator who does not translate, `Invalid` (fields
    `verdict`, `note`) for a bad verdict or a dispute that does not say why. The job raises
    `NotFound` for a translation the operator cannot see, `Invalid` for a message that is no
    translation, `Forbidden` for the other side's translation, the translation's own author (the
    two-person rule) or an office the operator is not bound to, and `Conflict` for a second review
    by the same operator or a peer of an earlier release without translations; nothing is written then.
    """
    require_translator(operator)
    body: dict[str, Any] = {"verdict": verdict, "note": note}
    notifications.validate_body(tr.REVIEW, body, ctx.agreement)

    def job(conn: Connection) -> Sent:
        row = db.get_envelope(conn, translation_id)
        if row is None or not _visible(ctx, operator, row):
            raise NotFound(f"no message {translation_id} for your offices")
        tr.check_reviewer(_reviewed(ctx, row), operator.id, ctx.party, _reviewers(conn, translation_id))
        _require_bound(ctx, operator, own_office(row))
        data = {"message": row["ref"], "translation": translation_id, "verdict": verdict}
        return _record(conn, ctx, operator, row, tr.REVIEW, body, data)

    return job


def _record(
    conn: Connection, ctx: NodeContext, operator: Operator, about: EnvelopeRow, kind: str,
    body: dict[str, Any], data: dict[str, Any],
) -> Sent:  # fmt: skip
    """Seal, log, store and queue `kind` about the message `about`, on its channel, with its precedence."""
    office = own_office(about)
    other = str(about["from_office"] if about["direction"] == "in" else about["to_office"])
    peer = str(about["peer"])
    if not ctx.takes(peer, wire.TRANSLATION):
        # Queued, it would be refused, and hold its channel (FLASH included) until the peer upgrades.
        raise Conflict(
            f"{peer}'s node runs an earlier release, which cannot take translations or their reviews: "
            f"nothing was sent; translate once {peer} has upgraded"
        )
    # No case: a translation moves no workflow, and a case would make the case's fold judge it.
    lang = body["lang"] if kind == tr.TRANSLATION else operator.lang
    sealed, index = record_outgoing(
        conn, ctx, channel=about["channel"], sender=office, recipient=other, author=operator.id,
        precedence=Precedence(about["precedence"]), kind=kind, body=body, refs=[str(about["id"])], case=None,
        lang=lang, strict=True,
    )  # fmt: skip
    offices = (office, *ctx.agreement.alternates(office))
    event = Event(kind, str(data["message"]), offices, {**data, "envelope": sealed.id, "by": operator.name})
    return Sent(sealed, index, "accepted", (event,))


def check_incoming(conn: Connection, ctx: NodeContext, party: str, env: Envelope) -> EnvelopeRow:
    """Check a peer's translation or review against what this node holds; return the row it is about.

    The message it is about must be stored here, between this node and `party`, on the same
    channel; a translation must be into another language than the message's, and a review must be
    of a translation `party` made, by another of its operators than the translation's author. Neither
    may be stamped before what it is about (`core.translations.check_not_before`).
    Raises `Invalid` (or `Forbidden`, `Conflict` for a review the sender's own node refuses) if not.
    """
    target = db.get_envelope(conn, env.refs[0])
    if target is None:
        raise Invalid(f"{env.type} refers to unknown envelope {env.refs[0]}")
    if target["peer"] != party or target["direction"] not in ("in", "out"):
        raise Invalid(f"{env.type} refers to a message that did not travel between {party} and this node")
    if target["channel"] != env.channel:
        raise Invalid(f"{env.type} travels on the channel of the message it is about, {target['channel']!r}")
    if env.type == tr.TRANSLATION:
        tr.check_translatable(original_of(target), str(env.body["lang"]), ctx.agreement.languages)
    else:
        tr.check_reviewer(_reviewed(ctx, target), env.data["author"], party, _reviewers(conn, str(target["id"])))
    # A message received here was stamped by `party`'s clock, as this envelope was; one sent from here by
    # ours, so the envelope's time is read in ours, with the offset the link tests measured.
    same_clock = target["direction"] == "in"
    created = env.created if same_clock else clocks.to_local(env.created, ctx.clock_offsets.get(party))
    tr.check_not_before(env.type, created, str(target["created"]), tr.SAME_CLOCK if same_clock else tr.OTHER_CLOCK)
    return target


def incoming_event(ctx: NodeContext, env: Envelope, target: EnvelopeRow) -> Event:
    """Return the live event of a peer's translation or review stored here."""
    message = str(target["id"]) if env.type == tr.TRANSLATION else str(target["ref"])
    data: dict[str, Any] = {"message": message, "envelope": env.id, "from": env.sender, "type": env.type}
    data.update(env.body)
    offices = (env.recipient, *ctx.agreement.alternates(env.recipient))
    return Event(env.type, message, offices, data)


def view(conn: Connection, ctx: NodeContext, message_id: str) -> list[dict[str, Any]]:
    """Return the translations of a message, both sides', each with its reviews and whether certified.

    `by` is the author's name for this node's operators, else the author's id on the peer's node.
    """
    rows = tr_db.referring_of_type(conn, [message_id], tr.TRANSLATION)
    reviews = tr_db.referring_of_type(conn, [str(r["id"]) for r in rows], tr.REVIEW)
    names = tr_db.operator_names(
        conn, [str(r["author"]) for r in (*rows, *reviews) if r["direction"] == "out"]
    )  # only this node's envelopes have authors it knows

    def by(row: EnvelopeRow) -> str:
        author = str(row["author"])
        return names.get(author, author) if row["direction"] == "out" else author

    out = []
    for row in rows:
        body = json.loads(row["raw"]).get("body", {})
        mine = [
            {"id": r["id"], "verdict": json.loads(r["raw"])["body"].get("verdict"),
             "note": json.loads(r["raw"])["body"].get("note", ""), "by": by(r), "office": r["from_office"],
             "created": r["created"], "log_index": r["log_index"]}
            for r in reviews if r["ref"] == row["id"]
        ]  # fmt: skip
        out.append(
            {"id": row["id"], "lang": body.get("lang"), "text": body.get("text"), "by": by(row),
             "office": row["from_office"], "side": ctx.party if row["direction"] == "out" else row["peer"],
             "created": row["created"], "log_index": row["log_index"], "reviews": mine,
             "certified": tr.certified(mine)}
        )  # fmt: skip
    return out


def counts(conn: Connection, message_ids: list[str]) -> dict[str, int]:
    """Return how many translations (both sides') each of these messages has; those with none are absent."""
    return tr_db.count_referring(conn, message_ids, tr.TRANSLATION)
