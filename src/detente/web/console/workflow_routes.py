"""The pages of the shared workflows other than cases: `/action/<id>`, `/consultation/<id>`, `/clarification/<id>`.

Each is what `workflow_screens` assembles, refreshed live as a case's page is (`?fragment=1` returns
only its live block), and a 404 page for a workflow the viewer may not see, as the API answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from detente.errors import NotFound
from detente.web.console import translations, workflow_screens
from detente.web.console.site import ConsoleRoute, Viewer, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
MAX_ID = 64  # longer is no workflow id (they are UUIDs): not looked up


async def workflow_page(
    request: Request,
    kind: str,
    target: str,
    build: Callable[[Any, Viewer, str], dict[str, Any] | None],
    title_of: Callable[[Viewer, dict[str, Any]], str],
) -> Response:
    """Render the page of one workflow object of `kind` (a case's too), as `build` assembles it.

    `title_of` names the page from the screen. Raises `NotFound` if the viewer may not see it.
    """
    console = console_of(request)
    viewer = await console.viewer(request)
    if len(target) > MAX_ID:
        raise NotFound(f"no {kind} {target[:MAX_ID]}… for your offices")

    def read(conn: Any) -> dict[str, Any] | None:
        screen = build(conn, viewer, target)
        if screen is not None:  # each message's translations, and the forms the viewer may use, as on its channel
            translations.attach(conn, viewer, [t["card"] for t in screen["timeline"] if t["card"] is not None])
        return screen

    screen = await console.node.aread(read)
    if screen is None:
        raise NotFound(f"no {kind} {target} for your offices")
    return await console.page(request, f"{kind}.html", viewer, page=kind, title=title_of(viewer, screen),
                              live_url=f"/{kind}/{target}?fragment=1", **screen)  # fmt: skip


async def _page(request: Request, kind: str, target: str) -> Response:
    def title_of(viewer: Viewer, screen: dict[str, Any]) -> str:
        state = screen["state"]
        return str(getattr(state, "target_group", None) or getattr(state, "title", None) or target)

    return await workflow_page(request, kind, target, workflow_screens.BUILDERS[kind], title_of)


@router.get("/action/{action_id}")
async def action_page(request: Request, action_id: str) -> Response:
    """A coordinated action: status, flags and their reasons, window, report, evidence, verdict, timeline."""
    return await _page(request, "action", action_id)


@router.get("/consultation/{consultation_id}")
async def consultation_page(request: Request, consultation_id: str) -> Response:
    """A consultation: schedule, when it was held, minutes and their SHA-256, co-signatures, action items."""
    return await _page(request, "consultation", consultation_id)


@router.get("/clarification/{clarification_id}")
async def clarification_page(request: Request, clarification_id: str) -> Response:
    """A request for clarification: who asks whom, its deadline, the answer and whether it came late."""
    return await _page(request, "clarification", clarification_id)
