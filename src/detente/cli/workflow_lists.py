"""Lists and details of the workflows, through the operator API, with the filters the API has.

    detente case list [--status S] [--limit N] [--json]          detente case show ID [--json]
    detente action list [--status S] [--case ID] [--unilateral | --not-unilateral] [--limit N] [--json]
    detente consultation list [--status S] [--case ID] [--limit N] [--json]
    detente clarification list [--status S] [--case ID] [--limit N] [--json]
    detente action|consultation|clarification show ID [--json]

Each filter is the query parameter of the same name of `GET /api/v1/<kind>s` (`web.api_workflow`);
a status is one of the kind's, so a typo is a usage error here, not a round trip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from detente.cli import client
from detente.cli.arguments import CheckedCommand, check_id, segment
from detente.cli.terminal import dump_json, print_records, printable, value_text
from detente.cli.transport import CertOpt, NodeOpt, TokenOpt, UrlOpt, api, call, shape
from detente.cli.workflow import JsonOpt, action_app, case_app, clarification_app, consultation_app
from detente.core.bodies import body_summary

# The statuses `GET /api/v1/<kind>s?status=` takes (`web.api_workflow`).
CaseStatus = Literal["open", "contained", "resolved"]
ActionStatus = Literal[
    "proposed", "info_requested", "consented", "objected", "withdrawn", "executed", "reported", "verified", "disputed"
]
ConsultationStatus = Literal["proposed", "agreed", "cancelled", "held", "minutes_proposed", "minutes_cosigned"]
ClarificationStatus = Literal["open", "answered"]


def _case_id(value: str | None) -> str | None:
    return None if value is None else check_id(value)


CaseOpt = Annotated[str | None, typer.Option("--case", help="only those of this case (its id)", callback=_case_id)]
LimitOpt = Annotated[int | None, typer.Option(help="the newest N, 1-1000 (the node's default: 100)", min=1, max=1000)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _get(
    token: str, node: Path | None, url: str | None, cacert: Path | None, path: str, key: str, kind: type, **params: Any
) -> dict[str, Any]:
    """GET `path` with the `params` that are not None; return the answer, which must hold `key` of type `kind`.

    Raises what `transport.call` raises (`UnexpectedAnswer` for an answer of another shape).
    """
    with api(node, url, cacert, token) as session:
        query = {k: v for k, v in params.items() if v is not None}
        return call(session, "GET", path, params=query, expect={key: kind})


def _print_list(
    token: str, node: Path | None, url: str | None, cacert: Path | None, path: str, key: str, as_json: bool,
    **params: Any,
) -> None:  # fmt: skip
    """Print the node's list at `path` (filtered by `params`): as JSON, or a table of `COLUMNS[key]`."""
    items = _get(token, node, url, cacert, path, key, list, **params)[key]
    if as_json:
        print(dump_json(items))
        return
    columns = COLUMNS[key]
    rows = []
    for item in items:
        row = shape(item, {}, "an item in the node's answer")
        rows.append([value_text(row.get(field)) for _, field in columns])
    print_records(client.out, [title for title, _ in columns], rows, f"no {key}")


COMMON = [("id", "id"), ("status", "status"), ("created", "created"), ("updated", "updated_at")]
COLUMNS = {
    "cases": [*COMMON, ("title", "title"), ("opened by", "opened_by")],
    "actions": [*COMMON, ("proposer", "proposer"), ("target", "target_group"), ("unilateral", "unilateral")],
    "consultations": [*COMMON, ("title", "title"), ("start", "start")],
    "clarifications": [
        *COMMON, ("requester", "requester"), ("deadline", "deadline"), ("late", "late"), ("overdue", "overdue"),
    ],
}  # fmt: skip


@case_app.command("list", cls=CheckedCommand)
def case_list(
    token: TokenOpt,
    status: Annotated[CaseStatus | None, typer.Option(help="only this status")] = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List cases, newest first."""
    _print_list(token, node, url, cacert, "/cases", "cases", as_json, status=status, limit=limit)


@action_app.command("list", cls=CheckedCommand)
def action_list(
    token: TokenOpt,
    status: Annotated[ActionStatus | None, typer.Option(help="only this status")] = None,
    case: CaseOpt = None,
    unilateral: Annotated[
        bool | None,
        typer.Option(
            "--unilateral/--not-unilateral",
            help="only those executed without consent (--unilateral), or only the others",
            show_default=False,
        ),
    ] = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List coordinated actions, newest first."""
    _print_list(token, node, url, cacert, "/actions", "actions", as_json, status=status, case=case,
                unilateral=unilateral, limit=limit)  # fmt: skip


@consultation_app.command("list", cls=CheckedCommand)
def consultation_list(
    token: TokenOpt,
    status: Annotated[ConsultationStatus | None, typer.Option(help="only this status")] = None,
    case: CaseOpt = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List consultations, newest first."""
    _print_list(token, node, url, cacert, "/consultations", "consultations", as_json, status=status, case=case,
                limit=limit)  # fmt: skip


@clarification_app.command("list", cls=CheckedCommand)
def clarification_list(
    token: TokenOpt,
    status: Annotated[ClarificationStatus | None, typer.Option(help="only this status")] = None,
    case: CaseOpt = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    node: NodeOpt = None,
    url: UrlOpt = None,
    cacert: CertOpt = None,
) -> None:
    """List clarification requests, newest first, with their deadline and whether the answer was late or is overdue."""
    _print_list(token, node, url, cacert, "/clarifications", "clarifications", as_json, status=status, case=case,
                limit=limit)  # fmt: skip


def _timeline(detail: dict[str, Any]) -> None:
    # Every step is read with defaults: a step of an unexpected shape shows blanks, not a KeyError.
    for item in _list(detail.get("timeline")):
        step, at = _dict(item), _dict(_dict(item).get("at"))
        local = "  ".join(f"{p} {str(t)[11:16]}" for p, t in _dict(at.get("local")).items())
        status = step.get("status") or step.get("note") or ""
        kind, sender = str(step.get("type", "")), str(step.get("sender", ""))
        print(printable(f"  {at.get('dtg', '')}  {local}  {kind:<24} {sender:<16} {status}"))
    for item in _list(detail.get("conflicts")):
        conflict = _dict(item)
        print(printable(f"  CONFLICT {conflict.get('type')} {conflict.get('envelope')}: {conflict.get('reason')}"))


def _papers(detail: dict[str, Any]) -> None:
    # An action's after-action report and its verdict, with what they say: the state holds only
    # their ids, and the verdict's reason is what the reporting side needs to read.
    for key in ("report", "verdict"):
        paper = detail.get(key)
        if isinstance(paper, dict):
            said = body_summary(paper.get("body"))
            print(printable(f"  {key}: {paper.get('type', '')} from {paper.get('sender', '')} at "
                            f"{paper.get('created', '')}: {said or '(no text)'}"))  # fmt: skip


def _shower(path: str, key: str, fields: list[str]) -> Any:
    def command(
        token: TokenOpt,
        target: Annotated[str, typer.Argument(help="its id", callback=check_id)],
        as_json: JsonOpt = False,
        node: NodeOpt = None,
        url: UrlOpt = None,
        cacert: CertOpt = None,
    ) -> None:
        detail = _get(token, node, url, cacert, f"{path}/{segment(target)}", key, dict)
        if as_json:
            print(dump_json(detail))
            return
        state = detail[key]
        shown = [f"{f}: {json.dumps(state.get(f), ensure_ascii=False)}" for f in fields if f in state]
        if detail.get("overdue") is True:  # past a deadline now: a clarification unanswered, an item open
            shown.append("overdue: true")
        print(printable("  ".join(shown)))
        _papers(detail)
        _timeline(detail)
        for office, types in _dict(detail.get("allowed")).items():
            allowed = ", ".join(str(t) for t in _list(types))
            print(printable(f"  {office} may send: {allowed or 'nothing now'}"))

    command.__doc__ = f"Show one {key}: state and timeline (UTC, each party's local time, DTG)."
    return command


SHOWN = {
    "case": ["title", "status", "escalation", "opened_by"],
    "action": ["status", "case", "proposer", "counterpart", "window_start", "window_end", "decision", "executed_at",
               "unilateral", "unilateral_reason", "outside_window", "report", "verdict", "evidence"],
    "consultation": ["title", "status", "case", "start", "venue", "held_at", "held_before_start", "minutes_sha256",
                     "cosigned_by", "items"],
    "clarification": ["status", "case", "requester", "addressee", "questions", "deadline", "response", "answered_at",
                      "late"],
}  # fmt: skip
for sub, noun in ((case_app, "case"), (action_app, "action"), (consultation_app, "consultation"),
                  (clarification_app, "clarification")):  # fmt: skip
    sub.command("show", cls=CheckedCommand)(_shower(f"/{noun}s", noun, SHOWN[noun]))
