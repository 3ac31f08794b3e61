"""Certified translations on the console: each message card shows its translations and their reviews.

A translator (or supervisor) of this side's office on a message's channel, or of one of its
alternates, sees a Translate form under each message they may translate (a language other than
the message's, among the agreement's) and Certify / Dispute under each translation another
translator of their side made. The forms post here and call the operator API's own functions, so
the rules (`core.translations`, `node.translations`) are the same as for `detente translate`.

    POST /messages/<id>/translate         lang, text
    POST /translations/<id>/review        verdict (certified | disputed), note

Each goes back to the form's page at the translation, saying what was done (`?translated=<id>`,
`?certified=`, `?disputed=`: `templates/_translations.html`). A translation or a dispute left
blank goes back to the form, open, with the error on its field (`?blank_text=<message id>`,
`?blank_note=<translation id>`), and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import Connection
from starlette.responses import Response

from detente.core import notifications
from detente.core import translations as tr
from detente.core.bodies import is_blank
from detente.errors import Invalid
from detente.node.auth import TRANSLATING_ROLES
from detente.node.translations import require_translator
from detente.store import messages as db
from detente.store import translations as tr_db
from detente.web import api_translations
from detente.web.console import csrf
from detente.web.console.addresses import back_to
from detente.web.console.i18n import AUTONYMS, N_, Stamp
from detente.web.console.present import Card, Presenter
from detente.web.console.site import ConsoleRoute, Viewer, console_of, form_viewer

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Token = Annotated[str, Form(alias=csrf.FIELD, max_length=128)]
Next = Annotated[str, Form(alias="next", max_length=512)]
# Said when a form altered by hand gets past the page's own limits.
BAD_FORM = N_("The translation form was not filled in as the node takes it: %(problem)s")


@dataclass(frozen=True)
class Review:
    """One translator's verdict on a translation."""

    verdict: str
    note: str
    by: str
    created: Stamp | None


@dataclass(frozen=True)
class Shown:
    """A translation as a card shows it."""

    id: str
    lang: str
    lang_name: str
    text: str
    by: str
    office: str
    ours: bool  # made by this side's translators
    created: Stamp | None
    reviews: tuple[Review, ...]
    certified: bool
    reviewable: bool  # the viewer may certify or dispute it now

    @property
    def certifications(self) -> tuple[Review, ...]:
        return tuple(r for r in self.reviews if r.verdict == "certified")

    @property
    def disputes(self) -> tuple[Review, ...]:
        return tuple(r for r in self.reviews if r.verdict == "disputed")


@dataclass(frozen=True)
class Panel:
    """What a card shows of translations: those made, and the languages the viewer may translate into."""

    message: str
    items: tuple[Shown, ...]
    languages: tuple[tuple[str, str], ...]  # (code, name): empty when the viewer may not translate it


def translates(viewer: Viewer, office: str) -> bool:
    """Whether the viewer translates for `office`: a translating role, bound to it or one of its alternates."""
    operator = viewer.operator
    if not any(operator.has(r) for r in TRANSLATING_ROLES):
        return False
    alternates = viewer.presenter.agreement.alternates(office)
    return office in operator.offices or any(o in operator.offices for o in alternates)


def _own_office(card: Card) -> str:
    return card.recipient if card.direction == "in" else card.sender


def _when(presenter: Presenter, row: Any) -> Stamp | None:
    """Return when a translation or review was made, as a card's time is shown: a peer's stamp in this node's clock."""
    created = str(row["created"])
    return presenter.when(presenter.peer_time(created, str(row["peer"])) if row["direction"] == "in" else created)


def attach(conn: Connection, viewer: Viewer, cards: list[Card]) -> None:
    """Put each card's translations panel in `card.extra["translations"]` (one query for all the cards).

    A card gets a panel when it has translations or the viewer may translate it.
    """
    if not cards:
        return
    presenter = viewer.presenter
    ids = [c.id for c in cards]
    rows = tr_db.referring_of_type(conn, ids, tr.TRANSLATION)
    reviews = tr_db.referring_of_type(conn, [str(r["id"]) for r in rows], tr.REVIEW)
    names = tr_db.operator_names(conn, [str(r["author"]) for r in (*rows, *reviews) if r["direction"] == "out"])

    def by(row: Any) -> str:
        # The other side's author is an id on its own node: its office says more to a reader here.
        return (
            names.get(str(row["author"]), str(row["author"])) if row["direction"] == "out" else str(row["from_office"])
        )

    translatable = {c.id for c in cards if _translatable(viewer, c)}
    originals = db.get_envelopes(conn, sorted(translatable))
    for card in cards:
        items = []
        for row in (r for r in rows if r["ref"] == card.id):
            body = json.loads(row["raw"]).get("body", {})
            own = [r for r in reviews if r["ref"] == row["id"]]
            made = tuple(
                Review(str(b.get("verdict", "")), str(b.get("note", "")), by(r), _when(presenter, r))
                for r, b in ((r, json.loads(r["raw"]).get("body", {})) for r in own)
            )
            lang = str(body.get("lang", ""))
            ours = row["direction"] == "out"
            reviewable = (
                ours and str(row["author"]) != viewer.operator.id and translates(viewer, str(row["from_office"]))
                and viewer.operator.id not in {str(r["author"]) for r in own}
            )  # fmt: skip
            items.append(
                Shown(
                    id=str(row["id"]),
                    lang=lang,
                    lang_name=AUTONYMS.get(lang, lang),
                    text=str(body.get("text", "")),
                    by=by(row),
                    office=str(row["from_office"]),
                    ours=ours,
                    created=_when(presenter, row),
                    reviews=made,
                    certified=tr.certified([{"verdict": r.verdict} for r in made]),
                    reviewable=reviewable,
                )  # fmt: skip
            )
        languages: tuple[tuple[str, str], ...] = ()
        if card.id in originals:
            original = json.loads(originals[card.id]["raw"]).get("lang")
            languages = tuple(
                (code, AUTONYMS.get(code, code)) for code in presenter.agreement.languages if code != original
            )
        if items or languages:
            card.extra["translations"] = Panel(card.id, tuple(items), languages)


def _translatable(viewer: Viewer, card: Card) -> bool:
    """Whether the viewer may translate the card's message: one between offices, of an office they translate for."""
    kind = notifications.CATALOG.get(card.type)
    return (
        kind is not None
        and not kind.service
        and card.direction in ("in", "out")
        and translates(viewer, _own_office(card))
    )


def _problem(viewer: Viewer, exc: ValidationError) -> Invalid:
    problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return Invalid(viewer.locale.gettext(BAD_FORM) % {"problem": problem})


@router.post("/messages/{message_id}/translate")
async def translate(request: Request, message_id: str, token: Token = "", next_url: Next = "/",
                    lang: Annotated[str, Form(max_length=3)] = "",
                    text: Annotated[str, Form(max_length=tr.TEXT_MAX)] = "") -> Response:  # fmt: skip
    """Translate a message (a signed `translation` travels to the other side too).

    Raises `Forbidden` for an operator who does not translate, and what the operator API raises;
    a blank text goes back to the form, open and saying so, with nothing written.
    """
    viewer = await form_viewer(request, token)
    require_translator(viewer.operator)  # an operator is told that, not that the form was blank
    if is_blank(text):
        return back_to(next_url, "blank_text", message_id, f"tt-{message_id}")
    try:
        asked = api_translations.TranslateRequest(lang=lang, text=text.strip())
    except ValidationError as exc:
        raise _problem(viewer, exc) from None
    sent = await api_translations.translate(message_id, asked, console_of(request).node, viewer.operator)
    return back_to(next_url, "translated", str(sent["id"]), f"t-{sent['id']}")


@router.post("/translations/{translation_id}/review")
async def review(request: Request, translation_id: str, token: Token = "", next_url: Next = "/",
                 verdict: Annotated[str, Form(max_length=16)] = "",
                 note: Annotated[str, Form(max_length=tr.NOTE_MAX)] = "") -> Response:  # fmt: skip
    """Certify or dispute a translation another translator of this side made.

    Raises `Forbidden` for an operator who does not translate, and what the operator API raises;
    a dispute without a note goes back to the form, open and saying so, with nothing written.
    """
    viewer = await form_viewer(request, token)
    require_translator(viewer.operator)
    if verdict == "disputed" and is_blank(note):
        return back_to(next_url, "blank_note", translation_id, f"dn-{translation_id}")
    try:
        asked = api_translations.ReviewRequest(verdict=verdict, note=note.strip())  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _problem(viewer, exc) from None
    await api_translations.review(translation_id, asked, console_of(request).node, viewer.operator)
    # `verdict` is one of the two (ReviewRequest): the notice says which, at the translation.
    return back_to(next_url, verdict, translation_id, f"t-{translation_id}")
