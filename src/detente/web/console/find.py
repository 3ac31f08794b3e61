"""The Find screen (`GET /find`): a search form, and the messages it finds as short rows, newest first.

The form is a GET form, so a search is an address an officer can keep, reload or send to a colleague.
It takes words, a first and a last day (UTC days, both included), precedences, a channel, a direction,
a peer and the end of an id; the node's search (`node.search`) decides what matches and who sees what,
as for `GET /api/v1/messages` and `detente inbox --find`. What the form itself can tell is wrong (a day
that is not one, the last day before the first, words too long, a value no list offers) is said on its
field in the page's language, and nothing is read; the page keeps what was typed. A page holds `PAGE`
messages; `?before=<log index>` pages back, as a channel's thread does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from detente.core import search as core_search
from detente.core.precedence import Precedence
from detente.core.search import Search
from detente.errors import Invalid
from detente.node import auth
from detente.node import search as node_search
from detente.node.context import NodeContext
from detente.web.console import data
from detente.web.console.addresses import before_index
from detente.web.console.i18n import N_, Locale
from detente.web.console.present import Card
from detente.web.console.site import ConsoleRoute, Viewer, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50  # messages on one page of results
DIRECTIONS = ("in", "out")
FIELDS = ("q", "from", "to", "channel", "direction", "state", "peer", "id")  # the inputs besides the precedences
# A message's states, as stored (`GET /api/v1/messages?state=`): a handover asks what is still unanswered
# (delivered, overdue) in a shift, which Find could not list (QA).
STATES = ("accepted", "delivered", "acknowledged", "declined", "overdue")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
TOO_LONG = N_("Write at most %(n)d characters.")
NOT_A_DAY = N_("Write a day as 2024-01-16: year, month, day.")
NOT_GREGORIAN = N_("Give the day in the Gregorian calendar, as 2024-01-16 (not a Solar Hijri one).")
FIRST_YEAR = 1900  # before it, a day is no day of this record: a Solar Hijri year (1405) is taken for one
DAYS_REVERSED = N_("The last day comes before the first.")
NOT_AN_ID_END = N_("Give the last 6 characters of the id or more (0-9, a-f), or the whole id.")
NOT_LISTED = N_("Choose one of the list.")
# The node's name of a filter (`core.search.parse`), as the field of this form that gave it.
_FIELD_OF = {"q": "q", "since": "from", "until": "to", "precedence": "precedence", "party": "peer", "id": "id"}


@dataclass(frozen=True)
class FindForm:
    """What the form holds: the values as typed, the precedences ticked, and each field's error."""

    values: dict[str, str]
    precedences: tuple[str, ...]
    errors: dict[str, str] = field(default_factory=dict)
    from_node: set[str] = field(default_factory=set)  # the fields whose error is in the node's words (English)

    @property
    def asked(self) -> bool:
        """Whether any filter was given: an empty form lists nothing."""
        return bool(self.precedences or any(self.values.values()))


def _day(value: str, name: str, errors: dict[str, str], gettext: Callable[[str], str]) -> date | None:
    """Return the day `value` names (ASCII, Persian or Arabic-Indic digits), or None with its error."""
    text = core_search.fold(value.strip())
    if not text:
        return None
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        errors[name] = gettext(NOT_A_DAY)
        return None
    if day.year < FIRST_YEAR:
        # A Persian page shows the Solar Hijri date beside each time: 1405-09-07 was searched as the
        # year 1405 AD, and listed everything (QA).
        errors[name] = gettext(NOT_GREGORIAN)
        return None
    return day


def read_form(params: Mapping[str, str], ticked: list[str], locale: Locale,
              channels: Collection[str], peers: Collection[str]) -> tuple[FindForm, dict[str, Any]]:  # fmt: skip
    """Return the form as sent, and the filters it gives the node's search (when it has no error).

    Each error is in the page's language (`locale`), on the field it concerns. Raises nothing.
    """
    gettext = locale.gettext
    values = {name: str(params.get(name, "")) for name in FIELDS}
    errors: dict[str, str] = {}
    if len(values["q"]) > core_search.MAX_QUERY:
        errors["q"] = gettext(TOO_LONG) % {"n": core_search.MAX_QUERY}
    first, last = _day(values["from"], "from", errors, gettext), _day(values["to"], "to", errors, gettext)
    # A day given in Persian or Arabic-Indic digits (an address) is shown as the date field takes it:
    # the field showed nothing while the search used it (QA).
    values.update({name: day.isoformat() for name, day in (("from", first), ("to", last)) if day is not None})
    if first is not None and last is not None and last < first:
        errors["to"] = gettext(DAYS_REVERSED)
    chosen = tuple(dict.fromkeys(p.strip().upper() for p in ticked))  # as the API takes them: in any case
    if any(p not in Precedence.__members__ for p in chosen):
        errors["precedence"] = gettext(NOT_LISTED)
    for name, offered in (("channel", channels), ("direction", DIRECTIONS), ("state", STATES), ("peer", peers)):
        if values[name] and values[name] not in offered:
            errors[name] = gettext(NOT_LISTED)
    if values["id"].strip():
        try:
            core_search.id_end(values["id"])
        except Invalid:
            errors["id"] = gettext(NOT_AN_ID_END)
    form = FindForm(values, chosen, errors)
    filters = {
        "q": values["q"], "precedences": list(chosen), "party": values["peer"] or None,
        "message_id": values["id"] or None,
        # Whole UTC days, both included: the search's `until` is the start of the day after the last.
        "since": f"{first.isoformat()}T00:00:00Z" if first else None,
        "until": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z" if last and last < date.max else None,
    }  # fmt: skip
    return form, filters


def search_of(ctx: NodeContext, form: FindForm, filters: dict[str, Any]) -> Search | None:
    """Return the node's search for the form, or None when the form has errors or asks nothing.

    An error the node finds that the form did not (it should find them all) goes on its field in the
    node's own words (English, like every node error on the console).
    """
    if form.errors or not form.asked:
        return None
    try:
        return node_search.parse(ctx, **filters)
    except Invalid as exc:
        fields = exc.extra.get("fields") or {"q": exc.detail}
        for key, problem in fields.items():
            name = _FIELD_OF.get(key, "q")
            form.errors[name] = str(problem)
            form.from_node.add(name)
        return None


def page_url(params: Mapping[str, str], ticked: list[str], before: int | None) -> str:
    """Return the address of this search's page before `before` (None: its newest page)."""
    kept = [(name, params[name]) for name in FIELDS if params.get(name)]
    kept += [("precedence", p) for p in ticked]
    if before is not None:
        kept.append(("before", str(before)))
    return "/find?" + urlencode(kept)


def results(conn: Any, viewer: Viewer, ctx: NodeContext, search: Search, form: FindForm,
            before: int | None) -> tuple[list[Card], bool]:  # fmt: skip
    """Return a page of what `search` finds, as short rows, newest first, and whether older ones match."""
    values = form.values
    page = node_search.find(
        conn, ctx, viewer.operator, search, direction=values["direction"] or None, channel=values["channel"] or None,
        state=values["state"] or None, before=before, limit=PAGE,
    )  # fmt: skip
    escalated = [] if viewer.offices is None else auth.escalated_to(viewer.operator, ctx.agreement)
    cards = [viewer.presenter.card(row, viewer.operator, escalated, brief=True) for row in reversed(page.rows)]
    return cards, page.more


@router.get("/find")
async def find_page(request: Request) -> Response:
    """The Find screen: the form, and with any filter given, the messages that match, newest first."""
    console = console_of(request)
    viewer = await console.viewer(request)
    ctx = console.node.ctx
    before = before_index(request)
    params = {name: request.query_params.get(name, "") for name in FIELDS}
    ticked = request.query_params.getlist("precedence")
    channels = [c.name for c in data.channels_for(ctx.agreement, ctx.party, viewer.operator)]
    form, filters = read_form(params, ticked, viewer.locale, channels, ctx.peers)
    search = search_of(ctx, form, filters)
    cards: list[Card] = []
    more = False
    if search is not None:
        cards, more = await console.node.aread(lambda conn: results(conn, viewer, ctx, search, form, before))
    return await console.page(
        request, "find.html", viewer, status=422 if form.errors else 200, page="find",
        title=viewer.locale.gettext("Find"), form=form, cards=cards, searched=search is not None,
        older=page_url(params, ticked, cards[-1].log_index) if more and cards else None,
        newest=page_url(params, ticked, None) if before is not None else None,
        channels=channels, peers=ctx.peers, precedences=[p.value for p in Precedence], directions=DIRECTIONS,
        states=STATES,
    )  # fmt: skip
