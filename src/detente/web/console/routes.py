"""The console's screens and the forms posted from them: Now, Channel, Cases, Case.

Every page is server-rendered; `?fragment=1` returns only its live block, which the page's script
fetches again whenever the stream says something changed. Every POST checks the session's CSRF
token and then calls the same function the operator API calls, and answers with a redirect
(post/redirect/get), or with the page again and the node's errors on the form.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from detente.core.agreement import Channel
from detente.core.bodies import is_blank
from detente.core.precedence import format_time, now
from detente.errors import Forbidden, Invalid, NotFound
from detente.node.linkstate import link_views
from detente.web import api
from detente.web.console import compose, csrf, data, record, screens, translations, workflow_screens
from detente.web.console.addresses import back_to, before_index, with_notice
from detente.web.console.site import ConsoleRoute, Viewer, console_of, form_viewer
from detente.web.console.workflow_routes import workflow_page

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Token = Annotated[str, Form(alias=csrf.FIELD, max_length=128)]
Next = Annotated[str, Form(alias="next", max_length=512)]


def _channel(viewer: Viewer, name: str) -> Channel:
    """Return a channel the viewer may open. Raises `NotFound` or `Forbidden`."""
    agreement = viewer.presenter.agreement
    channel = agreement.channels.get(name)
    if channel is None:
        raise NotFound(f"no channel {name!r} in the agreement")
    if channel not in data.channels_for(agreement, viewer.presenter.party, viewer.operator):
        raise Forbidden(f"channel {name!r} is not one of your offices' channels")
    return channel


@router.get("/")
async def now_page(request: Request) -> Response:
    """The Now screen: links, messages waiting for an answer, cases, actions, consultations.

    `?all=1` lists every waiting message (up to `screens.ALL_LIMIT`) instead of the most urgent ones.
    `?status_sent=<peer>[,<peer>...]` (where sending a status leads) says that the status went out.
    """
    console = console_of(request)
    viewer = await console.viewer(request)
    peers = console.node.ctx.peers
    show_all = request.query_params.get("all") == "1"
    screen = await console.node.aread(lambda conn: screens.now_screen(conn, viewer, peers, show_all))
    await console.node.aread(lambda conn: translations.attach(conn, viewer, screen["incoming"]))
    alarms = record.alarm_list(await record.optional_json(console, request, "alarms"))
    # Each peer a status went to (several: "every peer", in a group of states).
    status_sent = [p for p in request.query_params.get("status_sent", "").split(",") if p in peers]
    # The links the status goes over that are not UP: the notice says the status waits for them.
    status_waits = [link for link in screen["links"] if link.peer in status_sent and link.state != "UP"]
    own = viewer.presenter.agreement.parties[viewer.presenter.party]
    return await console.page(
        request, "now.html", viewer, page="now", title=viewer.locale.gettext("Now"),
        live_url="/?all=1&fragment=1" if show_all else "/?fragment=1", alarms=alarms, now_iso=format_time(now()),
        clock_offset=int(own.utc_offset.total_seconds() // 60), parties=viewer.presenter.parties,
        can_status=data.may_send(viewer.operator), status_sent=status_sent, status_waits=status_waits, **screen,
    )  # fmt: skip


@router.get("/strip")
async def strip(request: Request) -> Response:
    """The status strip alone (link states, waiting FLASH messages), for the live updates."""
    console = console_of(request)
    viewer = await console.viewer(request)
    context = {**console.chrome(viewer), "strip": await console.strip(viewer)}
    return HTMLResponse(console.render("_strip.html", viewer.locale, context))


async def _channel_page(request: Request, viewer: Viewer, channel: Channel, panel: compose.Compose,
                        status: int = 200, before: int | None = None) -> Response:  # fmt: skip
    console = console_of(request)
    offices = viewer.offices
    party = viewer.presenter.party
    own = data.own_end(channel, party)
    peer = channel.other(own).split(":", 1)[0]
    sent = request.query_params.get("sent", "")

    def read(conn: Any) -> dict[str, Any]:
        escalated = data.escalated_to(viewer.presenter.agreement, viewer.operator)
        page = data.thread(conn, channel.name, offices, before)
        cards = [viewer.presenter.card(r, viewer.operator, escalated) for r in page.rows]
        translations.attach(conn, viewer, cards)  # each card's translations, and the forms the viewer may use
        ids = {c.id for c in cards}
        proj = data.projection(conn, offices, ids=sorted(ids))
        # The "Case" menu: every case not resolved, as the API and the case pages say (newest last).
        open_cases = data.projection(conn, offices, kinds=("case",), statuses={"case": data.OPEN_CASE}).cases
        cases = [(c.id, viewer.presenter.case_title(c)) for c in open_cases.values()]
        just_sent = next((c for c in cards if c.id == sent), None) if sent else None
        return {"cards": cards, "followups": screens.followups(viewer, proj, ids, channel), "cases": cases,
                "older": cards[0].log_index if page.more and cards else None,
                "newer": data.newer_page(conn, channel.name, offices, before) if before is not None else None,
                # The link a message just sent goes over: when it is not UP the notice says it waits for it.
                "sent_link": link_views(conn, [peer])[0] if sent else None,
                "sent_unilateral": _unilateral(conn, viewer, just_sent)}  # fmt: skip

    thread = await console.node.aread(read)
    paged = f"before={before}&" if before is not None else ""
    return await console.page(
        request, "channel.html", viewer, status=status, page="channel", channel=channel, own=own,
        other=channel.other(own), can_send=data.may_send(viewer.operator) and own in viewer.operator.offices,
        compose=panel, title=channel.name, live_url=f"/channel/{channel.name}?{paged}fragment=1",
        sent=sent, peer=peer, before=before, **thread,
    )  # fmt: skip


def _unilateral(conn: Any, viewer: Viewer, card: Any) -> list[str]:
    """Return why the record flags the execution just sent (`card`) unilateral, [] if it does not.

    The officer confirmed it before sending; the notice says it again, as the signed record now does.
    """
    if card is None or card.type != "action.execute" or not card.refs:
        return []
    action = data.projection(conn, viewer.offices, kinds=("action",), ids=[card.refs[0]]).actions.get(card.refs[0])
    return workflow_screens.reasons(viewer, action.unilateral_reason) if action and action.unilateral else []


@router.get("/channel/{name}")
async def channel_page(request: Request, name: str) -> Response:
    """A channel: the thread with the other office, newest last, and the compose panel.

    The thread holds the newest `data.THREAD_LIMIT` messages; `?before=<log index>` pages to older ones.
    """
    viewer = await console_of(request).viewer(request)
    channel = _channel(viewer, name)
    q = request.query_params
    before = before_index(request)
    panel = await compose.compose_page(viewer, console_of(request).node, channel, q.get("type"), q.get("precedence"),
                                       case=q.get("case", ""), refs=q.get("refs", ""))  # fmt: skip
    return await _channel_page(request, viewer, channel, panel, before=before)


@router.post("/channel/{name}/send")
async def channel_send(request: Request, name: str) -> Response:
    """Send a message from the compose panel (a generated form or a codebook button)."""
    form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
    viewer = await form_viewer(request, form.get(csrf.FIELD, ""))
    channel = _channel(viewer, name)
    sent, panel = await compose.send(viewer, console_of(request).node, channel, form)
    if sent is None:
        return await _channel_page(request, viewer, channel, panel, status=panel.status)
    return RedirectResponse(f"/channel/{channel.name}?sent={sent}#m-{sent}", status_code=303)


@router.post("/messages/{message_id}/ack")
async def acknowledge(request: Request, message_id: str, token: Token = "", next_url: Next = "/",
                      note: Annotated[str, Form(max_length=2000)] = "") -> Response:  # fmt: skip
    """Acknowledge a received message (a signed `ack` travels back to the sender)."""
    viewer = await form_viewer(request, token)
    node = console_of(request).node
    await api.ack_message(message_id, node, viewer.operator, api.AckRequest(note=note.strip()))
    # The page says it was done (a key press gives no other sign); the script keeps the focus on the
    # message after it (the `#m-<id>` of `next`).
    return RedirectResponse(with_notice(next_url, "acked", message_id), status_code=303)


@router.post("/messages/{message_id}/decline")
async def decline(request: Request, message_id: str, token: Token = "", next_url: Next = "/",
                  reason: Annotated[str, Form(max_length=2000)] = "") -> Response:  # fmt: skip
    """Decline a received message with a reason.

    A blank reason goes back to the form, open and saying so, with nothing written (as a blank
    dispute does, `translations.review`).
    """
    viewer = await form_viewer(request, token)
    if is_blank(reason):
        return back_to(next_url, "blank_reason", message_id, f"r-{message_id}")
    node = console_of(request).node
    await api.decline_message(message_id, api.DeclineRequest(reason=reason.strip()), node, viewer.operator)
    # As after Acknowledge: the page says it was done, and the focus goes on to the next message (QA).
    return RedirectResponse(with_notice(next_url, "declined", message_id), status_code=303)


EVERY_PEER = "*"  # the status form's choice of every peer


@router.post("/status")
async def send_status(request: Request, token: Token = "", peer: Annotated[str, Form(max_length=8)] = "",
                      code: Annotated[str, Form(max_length=24)] = "", note: Annotated[str, Form(max_length=2000)] = "",
                      office: Annotated[str, Form(max_length=48)] = "") -> Response:  # fmt: skip
    """Tell a peer why this side is (not) answering; `*`: every peer (a group of states), one status
    each, all sent or none (`api.send_statuses`)."""
    viewer = await form_viewer(request, token)
    node = console_of(request).node
    peers = list(node.ctx.peers) if peer == EVERY_PEER else [peer]
    try:
        status_request = api.StatusRequest(peer=peers[0], code=code, note=note.strip(), office=office or None)  # type: ignore[arg-type]
    except ValidationError as exc:  # only a form altered by hand gets here: the console offers valid choices
        raise Invalid("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    await api.send_statuses(peers, status_request, node, viewer.operator)
    return RedirectResponse(f"/?status_sent={quote(','.join(peers))}", status_code=303)


@router.get("/cases")
async def cases_page(request: Request) -> Response:
    """Every case this operator may see, open ones first."""
    console = console_of(request)
    viewer = await console.viewer(request)
    proj = await console.node.aread(lambda conn: data.projection(conn, viewer.offices, kinds=("case",)))
    cases = sorted(proj.cases.values(), key=lambda c: (c.status == "resolved", c.created), reverse=False)
    return await console.page(request, "cases.html", viewer, page="cases", title=viewer.locale.gettext("Cases"),
                        live_url="/cases?fragment=1", cases=cases, parties=viewer.presenter.parties)  # fmt: skip


@router.get("/case/{case_id}")
async def case_page(request: Request, case_id: str) -> Response:
    """A case: timeline in every party's time, escalation over time, actions, evidence, badges."""

    def title_of(viewer: Viewer, screen: dict[str, Any]) -> str:
        return viewer.presenter.case_title(screen["case"]) if screen["case"] else case_id

    return await workflow_page(request, "case", case_id, screens.case_screen, title_of)
