"""Turning envelope rows into what a page shows: message cards, body lines, badges and times.

Everything here is a pure function of a row, the agreement and the interface language, so that the
same card is rendered on a full page and in the fragments the live updates fetch.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import RowMapping

from detente.core import clocks, notifications
from detente.core import codebook as codebook_mod
from detente.core.agreement import Agreement
from detente.core.bodies import SUMMARY_FIELDS  # the members that say what a message is about, as the CLI reads them
from detente.core.workflows import OPENERS, Case
from detente.errors import Error
from detente.store.operators import Operator
from detente.web.console import forms, texts
from detente.web.console.i18n import RTL_LANGUAGES, Locale, Stamp, Zone, stamp, text_language
from detente.web.console.labels import Labels, humanise
from detente.web.console.texts import SNIPPET as SNIPPET  # re-exported: a short row's length
from detente.web.console.texts import isolate, snippet, text_dir


@dataclass(frozen=True)
class BodyLine:
    """One field of a message body, labelled."""

    label: str
    value: str
    long: bool = False

    @property
    def html(self) -> Markup:
        """The value as a card shows it beside its label: each line an isolate (`texts.value_markup`)."""
        return texts.value_markup(self.value)


@dataclass(frozen=True)
class Badge:
    """One step of a message's delivery: accepted, delivered, acknowledged (or declined), verified."""

    key: str
    label: str
    done: bool
    detail: str = ""
    title: str = ""  # what the detail is, where it needs saying (whose log an index is in)


@dataclass(frozen=True)
class Card:
    """A message as the console shows it."""

    id: str
    direction: str
    type: str
    type_label: str
    precedence: str
    sender: str
    recipient: str
    author: str
    channel: str
    created: Stamp | None
    deadline: Stamp | None
    state: str
    state_label: str
    lines: tuple[BodyLine, ...]
    code_text: str
    case: str | None
    refs: tuple[str, ...]
    answerable: bool
    overdue: bool
    badges: tuple[Badge, ...]
    response_by: str | None
    response_at: Stamp | None
    response_note: str | None
    log_index: int
    peer_log_index: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    snippet: str = ""  # the start of its text (a codebook message's, in the reader's language), for short rows
    # The sender's own stamp, when its clock is off ours and `created` shows the moment in ours.
    created_theirs: Stamp | None = None
    snippet_dir: str = "auto"  # the snippet's direction: its language's for a codebook text, else its own
    code: str = ""  # a codebook message's code (STAND-DOWN)
    code_dir: str = "auto"  # the direction of its codebook text: the page's, unless it is in another language
    # The language of its codebook text when that is not the page's (Pashto on an English page), else "".
    code_lang: str = ""
    code_html: str = ""  # its text as HTML (markupsafe), each filled-in value an isolate of its own
    code_note: str = ""  # the note its sender added to it, as written

    @property
    def unanswered(self) -> bool:
        """Whether a person still owes this message an acknowledgement."""
        return self.state in ("accepted", "delivered", "overdue") and self.deadline is not None

    @property
    def workflow(self) -> str | None:
        """The console page of the action, consultation or clarification this message opened or moved, if any.

        Its kind and id are what `core.workflows.targets` reads from the type and first ref.
        """
        kind = OPENERS.get(self.type)
        if kind in ("action", "consultation", "clarification"):
            return f"/{kind}/{self.id}"
        moved = self.type.startswith(("action.", "consultation.")) or self.type == "clarification.response"
        return f"/{self.type.split('.', 1)[0]}/{self.refs[0]}" if moved and self.refs else None


class Presenter:
    """Renders rows for one viewer: their language, their party's clock and the agreement.

    Codebook texts are in `text_lang`: the page's language, or the viewer's own (`own_lang`) when
    the agreement has texts in it that the console has no pages in (`i18n.text_language`).

    `clock_offsets` (each peer's clock minus this node's, in ms, as link tests measured it) puts
    the times a peer stamped in this node's clock, as deadlines already are: a message from a peer
    4 minutes ahead must not look sent 4 minutes from now.
    """

    def __init__(
        self,
        agreement: Agreement,
        party: str,
        locale: Locale,
        clock_offsets: Mapping[str, float | None] | None = None,
        own_lang: str | None = None,
    ) -> None:
        self.agreement = agreement
        self.clock_offsets = clock_offsets or {}
        self.party = party
        self.locale = locale
        self.text_lang = text_language(own_lang, locale.code, agreement.languages)
        self.text_dir = "rtl" if self.text_lang in RTL_LANGUAGES else "ltr"
        self.labels = Labels(locale)
        own = agreement.parties[party]
        others = agreement.peers(party)
        self.own_zone = (Zone(own.id, own.utc_offset),)
        self.all_zones = self.own_zone + tuple(Zone(p.id, p.utc_offset) for p in others)
        self.parties = (party, *(p.id for p in others))  # this party first

    @functools.cached_property
    def codebook(self) -> dict[str, codebook_mod.CodeEntry]:
        """The agreement's codebook, read once for all the cards of a page."""
        return codebook_mod.codebook(self.agreement.raw)

    def when(self, iso: str | None) -> Stamp | None:
        """Return a time in UTC with this party's local time beside it."""
        return stamp(iso, self.own_zone, self.locale)

    def peer_time(self, iso: str | None, peer: str) -> str | None:
        """Return a time `peer` stamped, in this node's clock (unchanged within `clocks.TOLERANCE`)."""
        return clocks.to_local(iso, self.clock_offsets.get(peer)) if iso else iso

    def clock_difference(self, offset_ms: float) -> str:
        """Return a clock difference in the viewer's language, as the CLI writes it: "4 min 0 s"."""
        gettext = self.locale.gettext
        return clocks.amount(offset_ms / 1000, gettext("{minutes} min {seconds} s"), gettext("{seconds:.1f} s"))

    def among(self, parties: Collection[str]) -> Presenter:
        """Return this presenter for a workflow between `parties`: its escalation columns and local
        times are theirs only (this party's first), not every party's of a group of states."""
        narrowed = copy.copy(self)
        narrowed.all_zones = tuple(z for z in self.all_zones if z.party in parties)
        narrowed.parties = tuple(p for p in self.parties if p in parties)
        return narrowed

    def when_everywhere(self, iso: str | None) -> Stamp | None:
        """Return a time in UTC with every party's local time (for case timelines)."""
        return stamp(iso, self.all_zones, self.locale)

    def office(self, office_id: str) -> str:
        """Return an office's title from the agreement, in the viewer's text language (`text_lang`:
        a Pashto reader's on English pages) when the agreement gives one per language (its id if
        the agreement does not name it)."""
        office = self.agreement.offices.get(office_id)
        return office.title_in(self.text_lang) if office else office_id

    def office_lang(self, office_id: str) -> str:
        """Return the language of `office(office_id)` for a `lang` attribute where it is not the page's:
        `text_lang` if the agreement titles the office in it, else "" (the page's language, or one
        title in no stated language)."""
        office = self.agreement.offices.get(office_id)
        titled = office is not None and self.text_lang in office.titles
        return self.text_lang if titled and self.text_lang != self.locale.code else ""

    def alternates(self, office_id: str) -> list[str]:
        """Return the offices that may answer a message to `office_id` once it is overdue (escalation)."""
        return self.agreement.alternates(office_id)

    def code_text(self, body: dict[str, Any], lang: str | None = None) -> str:
        """Return a codebook message in `lang`, by default the viewer's (`text_lang`); else in the entry's first."""
        entry = self.codebook.get(str(body.get("code", "")))
        if entry is None:
            return str(body.get("code", ""))
        language = lang or self.text_lang
        if language not in entry.text:
            language = next(iter(entry.text))
        try:
            return codebook_mod.render(entry, body.get("params", {}), language)
        except Error:
            return f"{entry.code} {json.dumps(body.get('params', {}), ensure_ascii=False)}"

    def code_html(self, body: dict[str, Any]) -> str:
        """Return `code_text` as HTML, each filled-in value in an isolate (times, dates, numbers left to right)."""
        entry = self.codebook.get(str(body.get("code", "")))
        params = body.get("params", {})
        if entry is None or not isinstance(params, dict):
            return escape(self.code_text(body))
        language = self.text_lang if self.text_lang in entry.text else next(iter(entry.text))
        try:
            return texts.code_markup(entry, params, language)
        except Error:  # a message the codebook cannot render: shown as `code_text` shows it
            return escape(self.code_text(body))

    def snippet(self, kind: str, body: dict[str, Any]) -> str:
        """Return what a short row says of a message: its whole codebook text, else the start of its text, else ""."""
        if kind == "code":
            return " ".join(self.code_text(body).split())  # a bounded template: never cut
        text = next((body[k] for k in SUMMARY_FIELDS if isinstance(body.get(k), str) and body[k].strip()), "")
        return snippet(text)

    def snippet_dir(self, kind: str, text: str) -> str:
        """Return the direction of a short row's text: that of `text_lang` for a codebook text, else its own."""
        return self.text_dir if kind == "code" else text_dir(text)

    def case_title(self, case: Case) -> str:
        """Return a case's title in the reader's language where the node made it up (`texts.case_title`)."""
        return texts.case_title(case, self.locale, self.labels)

    def case_title_dir(self, case: Case) -> str:
        """Return the direction `case_title` runs in."""
        return texts.case_title_dir(case, self.locale)

    def start(self, text: str) -> str:
        """Return the start of a text, cut at a word, for the FLASH banner."""
        return snippet(text, texts.BANNER)

    def lines(self, kind: str, body: dict[str, Any]) -> tuple[BodyLine, ...]:
        """Return a body as labelled lines, nested members as `Location · Place`."""
        titles: dict[str, str] = {}
        enums: set[str] = set()
        rows: dict[str, forms.FormField] = {}
        if kind in notifications.CATALOG:
            schema_fields = forms.fields_for(notifications.CATALOG[kind].json_schema())
            titles = {f.path: f.title for f in schema_fields}
            enums = {f.path for f in schema_fields if f.kind == "select"}
            rows = {f.path: f for f in schema_fields if f.kind == "rows"}
        out: list[BodyLine] = []

        def walk(value: Any, path: str, label: str) -> None:
            if isinstance(value, dict) and value and all(not isinstance(v, dict | list) for v in value.values()):
                if set(value) <= {"lat", "lon"} and path not in titles:
                    out.append(BodyLine(label, f"{value.get('lat')}, {value.get('lon')}"))
                    return
            if isinstance(value, dict):
                # Canonical JSON sorts members by name; show them in the order of the type's form.
                order = {p.rsplit(".", 1)[-1]: i for i, p in enumerate(titles) if p.rsplit(".", 1)[0] == path
                         or ("." not in p and not path)}  # fmt: skip
                for key, item in sorted(value.items(), key=lambda kv: order.get(kv[0], len(order))):
                    sub = f"{path}.{key}" if path else key
                    name = self.labels.field(titles.get(sub, humanise(key)))
                    walk(item, sub, f"{label} · {name}" if label else name)
                return
            if isinstance(value, list) and path in rows and all(isinstance(v, dict) for v in value):
                out.append(BodyLine(label, "\n".join(self.row_text(rows[path], v) for v in value), True))
                return
            if isinstance(value, list):
                parts = [str(v) if not isinstance(v, dict | list) else json.dumps(v, ensure_ascii=False) for v in value]
                out.append(BodyLine(label, "\n".join(parts), True))
                return
            if value is None or value == "":
                return
            text = self.labels.value(value) if path in enums else str(value)
            out.append(BodyLine(label, text, len(text) > 80 or "\n" in text))

        walk(body, "", "")
        return tuple(out)

    def row_text(self, field: forms.FormField, item: Mapping[str, Any]) -> str:
        """Return one object of a list (an action item) as one line: `A1 · text · ir:fs · due 2026-12-01 06:00Z`.

        Its members in the order of the type's form, a time as the cards write times, members it
        does not declare after them.
        """
        parts: list[str] = []
        known = {c.path for c in field.columns}
        for column in field.columns:
            value = item.get(column.path)
            if value is None or value == "":
                continue
            moment = self.when(str(value)) if column.kind == "datetime" else None
            if moment is not None:
                word = self.locale.gettext("due") if column.path == "due" else self.labels.field(column.title)
                parts.append(f"{word} {moment.short}")
            else:
                parts.append(self.labels.value(value) if column.kind == "select" and column.options else str(value))
        parts += [f"{k}: {v}" for k, v in item.items() if k not in known]
        return " · ".join(parts)

    def answerer(self, row: RowMapping) -> Markup | None:
        """Return who answered a message, as its card says it: an office, and the alternate that answered.

        The peer's answer names its author by their id on the peer's node, so a sent message shows
        the office that answered; a received one, the name of this node's operator. When an
        alternate answered a message that went overdue, the card names it beside the addressee.
        Each part is an isolate (offices left to right), so that "ir:fs (alternate of ir:dgmo)"
        keeps its order inside an Urdu or Persian sentence.
        """
        if row["response_id"] is None:
            return isolate(row["to_office"], "ltr") if row["direction"] == "out" else None
        office = (row["response_office"] if "response_office" in row else None) or row["to_office"]
        who = isolate(office, "ltr") if row["direction"] == "out" else isolate(row["response_by"] or "")
        if office == row["to_office"]:
            return who
        alternate = isolate(
            escape(self.locale.gettext("alternate of %(office)s")) % {"office": isolate(row["to_office"], "ltr")}
        )
        if row["direction"] == "in":
            return Markup("{} ({}, {})").format(who, isolate(office, "ltr"), alternate)
        return Markup("{} ({})").format(who, alternate)

    def badges(self, row: RowMapping, receipt: dict[str, Any] | None) -> tuple[Badge, ...]:
        """Return the delivery steps of a message and which are done."""
        lab = self.labels.value
        answered = row["response_type"]
        answer_key = "declined" if answered == "decline" else "acknowledged"
        peer_index = receipt.get("log_index") if receipt else None
        delivered_detail = f"#{peer_index}" if peer_index is not None else ""
        ours = self.locale.gettext("position in this node's log")
        # A sent message's receipt gives its place in the peer's log; a received one's, in ours.
        where = (
            self.locale.gettext("position in %(party)s's log") % {"party": str(row["peer"]).upper()}
            if row["direction"] == "out"
            else ours
        )
        steps = [
            Badge("accepted", lab("accepted"), True, f"#{row['log_index']}", ours),
            Badge("delivered", lab("delivered"), row["delivered_at"] is not None, delivered_detail, where),
        ]
        overdue = self.when(row["overdue_at"])
        if overdue is not None:  # stays on the record once answered: the answer came late
            steps.append(Badge("overdue", lab("overdue"), True, overdue.short))
        if row["needs_ack"]:
            who: Markup | str = self.answerer(row) or ""
            if answered is not None and overdue is not None:
                late = self.locale.gettext("late")
                who = Markup("{} · {}").format(who, late) if who else late
            steps.append(Badge(answer_key, lab(answer_key), answered is not None, who))
        # Set by the record feature once the peer's log is proven to hold the envelope (sent messages).
        verified_at = row["verified_at"] if "verified_at" in row else None
        stamp_ = self.when(verified_at)
        steps.append(Badge("verified", lab("verified"), verified_at is not None, stamp_.short if stamp_ else ""))
        return tuple(steps)

    def card(
        self, row: RowMapping, operator: Operator, escalated: list[str] | None = None, brief: bool = False
    ) -> Card:
        """Return the card of one envelope row, as `operator` sees it.

        A `brief` card leaves out the body (its lines and codebook text), for the compact rows of a
        long list and the FLASH banner: reading the body of hundreds of messages slows every refresh.
        """
        envelope = json.loads(row["raw"])
        body = envelope.get("body", {})
        receipt = json.loads(row["receipt"]) if row["receipt"] else None
        offices = set(operator.offices)
        may_answer = row["to_office"] in offices or (
            row["overdue_at"] is not None and row["to_office"] in set(escalated or ())
        )
        answerable = (
            row["direction"] == "in" and bool(row["needs_ack"]) and row["response_id"] is None and may_answer
            and any(operator.has(r) for r in ("operator", "supervisor"))
        )  # fmt: skip
        # The peer stamped an incoming message's `created` (an answer's time is stored in ours).
        created = self.peer_time(row["created"], row["peer"]) if row["direction"] == "in" else row["created"]
        snippet_ = self.snippet(row["type"], body) if brief else ""
        return Card(
            id=row["id"], direction=row["direction"], type=row["type"], type_label=self.labels.type(row["type"]),
            precedence=row["precedence"], sender=row["from_office"], recipient=row["to_office"],
            author=row["author"], channel=row["channel"], created=self.when(created),
            created_theirs=self.when(row["created"]) if created != row["created"] else None,
            deadline=self.when(row["deadline"]) if row["needs_ack"] and row["response_id"] is None else None,
            state=row["state"], state_label=self.labels.value(row["state"]),
            lines=() if brief or row["type"] == "code" else self.lines(row["type"], body),
            code_text=self.code_text(body) if row["type"] == "code" and not brief else "",
            code_html=self.code_html(body) if row["type"] == "code" and not brief else "",
            code=str(body.get("code", "")) if row["type"] == "code" else "",
            code_dir=self.text_dir if row["type"] == "code" else "auto",
            code_lang=self.text_lang if row["type"] == "code" and self.text_lang != self.locale.code else "",
            code_note=str(body.get("note") or "") if row["type"] == "code" and not brief else "",
            case=row["case_id"], refs=tuple(envelope.get("refs", [])), answerable=answerable,
            overdue=row["overdue_at"] is not None, badges=self.badges(row, receipt),
            response_by=self.answerer(row) if row["response_id"] else None,
            response_at=self.when(row["response_at"]),
            response_note=row["response_note"], log_index=row["log_index"],
            peer_log_index=receipt.get("log_index") if receipt else None,
            snippet=snippet_ if brief else "", snippet_dir=self.snippet_dir(row["type"], snippet_),
        )  # fmt: skip
