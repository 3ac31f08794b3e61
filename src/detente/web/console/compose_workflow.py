"""What the compose panel shows of the workflow a reply moves: an operation about to be executed, minutes to co-sign.

A reply's first ref names its workflow (`refs[0]`, the opening envelope). `read` finds the action
or consultation there, if the viewer may see it, and `fill` puts on the panel what the officer must
know before sending:

- **Operation executed**: whether consent was given and when. The start time is prefilled to the
  second and never earlier than the consent or the notice (a time cut to the minute can be earlier
  than a consent received in the same minute, which the record would call unilateral). An
  execution the record will flag unilateral (`workflows_action.unilateral_reasons`) is not sent
  until the officer has confirmed it, with the record's own words (`needs_confirmation`).
- **Co-sign the minutes**: the minutes being co-signed (their text and action items), the refs
  completed to `[consultation, minutes]`, and the SHA-256 prefilled as the node computes it
  (`workflows.minutes_digest`) from the minutes shown, so that the person reads what they sign.
- **Minutes**: the owner of each action item is chosen among the offices of the consultation's parties.
- **Action item done**: the item is chosen among the consultation's open items, by id and text
  (`open_items`); the node still judges the choice (whose item it is, whether it is still open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Connection

from detente.core.precedence import parse_time
from detente.core.workflow_base import party
from detente.core.workflow_json import state_from_json
from detente.core.workflows import Action, Consultation, minutes_digest
from detente.core.workflows_action import REASON_SEPARATOR, unilateral_reasons
from detente.core.workflows_consultation import Item
from detente.errors import Error
from detente.store import workflow as workflow_db
from detente.web.console import data, forms
from detente.web.console.i18n import Stamp
from detente.web.console.site import Viewer

if TYPE_CHECKING:  # compose imports this module
    from detente.web.console.compose import Compose

SECOND = "%Y-%m-%d %H:%M:%S"  # how the form writes a prefilled time: to the second, as `forms.utc_time` reads it
CONFIRM_FIELD = "unilateral"  # the checkbox by which an officer confirms an execution flagged unilateral


@dataclass(frozen=True)
class ItemView:
    """An action item of minutes, as the panel lists it."""

    id: str
    title: str
    owner: str
    due: Stamp | None


@dataclass(frozen=True)
class MinutesView:
    """The minutes a co-signature is about, with the SHA-256 computed from what is shown."""

    id: str
    consultation: str
    title: str  # the consultation's
    sender: str
    created: Stamp | None
    text: str
    items: tuple[ItemView, ...]
    sha256: str


@dataclass(frozen=True)
class ExecuteView:
    """What an officer must know before recording that an operation was executed."""

    action: str
    status: str  # the action's status now
    consent_at: Stamp | None  # when the consent in force was given; None: there is none
    reasons_now: str  # what the record would say of an execution started now ("": nothing, it is consented)


@dataclass(frozen=True)
class Context:
    """The workflow a reply moves, as the viewer may see it."""

    action: Action | None = None
    consultation: Consultation | None = None
    minutes_body: dict[str, Any] | None = None  # of the pending minutes, if the viewer may read them
    minutes_row: Any = None


def _state(conn: Connection, viewer: Viewer, kind: str, target: str) -> Any:
    row = workflow_db.get(conn, kind, target)
    offices = viewer.offices
    if row is None or (offices is not None and not workflow_db.offices_of(conn, kind, target) & set(offices)):
        return None
    try:
        return state_from_json(kind, row.state)
    except Error:
        return None


def read(conn: Connection, viewer: Viewer, kind: str, refs: list[str]) -> Context:
    """Return the action or consultation that a message of type `kind` with these refs is about (if any)."""
    if not refs or len(refs[0]) > 64:
        return Context()
    if kind.startswith("action."):
        action = _state(conn, viewer, "action", refs[0])
        return Context(action=action if isinstance(action, Action) else None)
    if not kind.startswith("consultation."):
        return Context()
    consultation = _state(conn, viewer, "consultation", refs[0])
    if not isinstance(consultation, Consultation):
        return Context()
    if kind != "consultation.cosign" or consultation.status != "minutes_proposed" or consultation.minutes is None:
        return Context(consultation=consultation)
    row = data.message(conn, consultation.minutes, viewer.offices)
    body = json.loads(row["raw"]).get("body") if row is not None else None
    return Context(consultation=consultation, minutes_body=body if isinstance(body, dict) else None, minutes_row=row)


def _second_at_or_after(iso: str) -> datetime:
    """Return the first whole second not earlier than `iso`."""
    moment = parse_time(iso)
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def execution_start(action: Action, now: datetime) -> datetime:
    """Return the start time to prefill: now, to the second, but never before the notice or the consent in force."""
    earliest = [now.replace(microsecond=0), _second_at_or_after(action.created)]
    consent = _consent(action)
    if consent is not None:
        earliest.append(_second_at_or_after(consent))
    return max(earliest)


def _consent(action: Action) -> str | None:
    """Return when the consent in force was given, None if the action is not consented."""
    if action.status != "consented":
        return None
    return next((s.created for s in reversed(action.history) if s.status == "consented"), None)


def reasons_for(action: Action, started: str) -> str:
    """Return what the record would say of an execution that `started` then ("" if not unilateral or no time)."""
    try:
        moment = parse_time(started)
    except Error:
        return ""  # the node says what is wrong with the time
    return REASON_SEPARATOR.join(unilateral_reasons(action, moment))


def fill(panel: Compose, context: Context, viewer: Viewer, *, prefill: bool) -> None:
    """Put on the compose panel what the workflow tells: see the module's docstring.

    With `prefill` (a form opened, not one sent back), times and the digest are filled in too.
    """
    p = viewer.presenter
    if panel.type == "action.execute" and context.action is not None:
        action = context.action
        start = execution_start(action, datetime.now(UTC))
        if prefill:
            panel.values["started"] = start.strftime(SECOND)
        reasons = REASON_SEPARATOR.join(unilateral_reasons(action, start))
        panel.execute = ExecuteView(action.id, action.status, p.when(_consent(action)), reasons)
    if panel.type == "consultation.minutes":
        parties = context.consultation.parties if context.consultation else tuple(p.agreement.parties)
        offices = tuple(o for o in p.agreement.offices if party(o) in parties)
        panel.fields = [_owners(f, offices, viewer) if f.kind == "rows" else f for f in panel.fields]
    if panel.type == "consultation.item_done" and context.consultation is not None:
        choice = open_items(context.consultation, p.party, rtl=viewer.locale.dir == "rtl")
        panel.fields = [replace(f, kind="select", options=tuple(choice), option_texts=tuple(choice.values()),
                                max_length=None) if f.path == "item" else f for f in panel.fields]  # fmt: skip
    if panel.type == "consultation.cosign" and context.consultation and context.minutes_body is not None:
        try:
            panel.minutes = minutes_view(context, viewer)
        except ValidationError:  # stored minutes were checked on the way in; never let them break the page
            return
        if len(panel.refs.replace(",", " ").split()) <= 1:
            panel.refs = f"{context.consultation.id} {panel.minutes.id}"
        if prefill:
            panel.values["sha256"] = panel.minutes.sha256


def _owners(field: forms.FormField, offices: tuple[str, ...], viewer: Viewer) -> forms.FormField:
    """Return a `rows` field whose `owner` column is a choice of `offices`, each shown with its title."""
    texts = tuple(f"{o} — {viewer.presenter.office(o)}" for o in offices)
    columns = tuple(
        replace(c, kind="select", options=offices, option_texts=texts, max_length=None) if c.path == "owner" else c
        for c in field.columns
    )
    return replace(field, columns=columns)


def open_items(consultation: Consultation, side: str, *, rtl: bool = False) -> dict[str, str]:
    """Return the open action items an `item_done` of party `side` may close, id -> `A1 · text · owner`.

    The items its offices own; if they own none, every open item, so that the node's refusal says whose
    each is. On a right-to-left page the text is an isolate (FSI ... PDI): a Latin text would otherwise
    carry its neighbours along.
    """
    open_now = [i for i in consultation.items if i.status == "open"]
    ours = [i for i in open_now if party(i.owner) == side] or open_now

    def text(item: Item) -> str:
        title = f"\u2068{item.title}\u2069" if rtl else item.title
        return f"{item.id} · {title} · {item.owner}"

    return {i.id: text(i) for i in ours}


def minutes_view(context: Context, viewer: Viewer) -> MinutesView:
    """Return the pending minutes of the context's consultation as the panel shows them.

    Raises `ValidationError` for minutes that are not a valid `consultation.minutes` body.
    """
    assert context.consultation is not None and context.minutes_body is not None
    body, row, p = context.minutes_body, context.minutes_row, viewer.presenter
    items = tuple(
        ItemView(str(i.get("id", "")), str(i.get("title", "")), str(i.get("owner", "")), p.when(str(i.get("due", ""))))
        for i in body.get("items", [])
        if isinstance(i, dict)
    )
    return MinutesView(
        id=str(row["id"]), consultation=context.consultation.id, title=context.consultation.title,
        sender=str(row["from_office"]), created=p.when(str(row["created"])), text=str(body.get("text", "")),
        items=items, sha256=minutes_digest(body),
    )  # fmt: skip


def needs_confirmation(panel: Compose, context: Context, body: dict[str, Any], confirmed: str) -> str:
    """Return what the record would say of the execution `body` records, if the officer has not confirmed it.

    "" when the execution is not unilateral, when the officer confirmed exactly these reasons
    (`confirmed`, the checkbox's value), or when the panel is not an execution of a known action.
    """
    if panel.type != "action.execute" or context.action is None or not isinstance(body.get("started"), str):
        return ""
    reasons = reasons_for(context.action, body["started"])
    return "" if not reasons or confirmed == reasons else reasons
