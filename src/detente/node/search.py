"""Finding messages for an operator: a search checked against this node's agreement, and the one
listing the operator API, the console's Find screen and `detente inbox` read.

Who sees what is the listing's rule, unchanged by a search: an operator sees the messages of its
offices, and the received messages of an office it is an alternate of once they are overdue
(`auth.visible_offices`, `auth.escalated_to`); a supervisor, auditor or admin sees every office's.
Service messages (acks, link tests, translations, ...) are left out unless the search names their
type or the caller asks for every type.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from detente.core import codebook, notifications
from detente.core import search as core_search
from detente.core.search import Search
from detente.errors import Error
from detente.node import auth
from detente.node.context import NodeContext
from detente.store import messages as db
from detente.store.operators import Operator


def parse(
    ctx: NodeContext,
    *,
    q: str | None = None,
    since: str | None = None,
    until: str | None = None,
    precedences: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    party: str | None = None,
    message_id: str | None = None,
    channel: str | None = None,
) -> Search:
    """Return the search these filters make on this node: `party` one of its peers, and words that
    also find the codebook messages whose text holds them (`core.search.parse`).

    Raises `Invalid` naming every filter that is wrong.
    """
    try:
        book = codebook.codebook(ctx.agreement.raw)
    except Error:  # an agreement in force has a valid codebook; without one, words find bodies only
        book = {}
    return core_search.parse(
        q=q, since=since, until=until, precedences=precedences, types=types, party=party, message_id=message_id,
        channel=channel, parties=ctx.peers, channels=ctx.agreement.channels, codebook=book,
    )  # fmt: skip


def service_types() -> list[str]:
    """Return the message types a listing leaves out by default (acks, link tests, translations, ...)."""
    return [name for name, kind in notifications.CATALOG.items() if kind.service]


def find(
    conn: Connection,
    ctx: NodeContext,
    operator: Operator,
    search: Search,
    *,
    direction: str | None = None,
    channel: str | None = None,
    state: str | None = None,
    all_types: bool = False,
    before: int | None = None,
    limit: int = 100,
) -> db.Page:
    """Return the newest `limit` messages the operator may read that match, oldest first (`more`:
    older ones match too). `before` keeps those below a log index (the next page back)."""
    offices = auth.visible_offices(operator)
    escalated = [] if offices is None else auth.escalated_to(operator, ctx.agreement)
    # Who names a type gets it, service or not; otherwise service messages are not messages to list.
    left_out = [] if all_types or search.types else service_types()
    return db.list_envelopes(
        conn, offices=offices, escalated=escalated, direction=direction, channel=channel, state=state,
        exclude_types=left_out, search=search, before=before, limit=limit,
    )  # fmt: skip
