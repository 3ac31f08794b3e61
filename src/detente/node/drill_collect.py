"""After a drill: collect every envelope of the run from both nodes, and the facts the report needs.

Each node is read through its operator API as a supervisor: `GET /api/v1/messages?since=...&
all_types=true` lists what it sent and received since the run began (acknowledgements, declines,
overdue records and status messages included; link tests left out), each with the node's own log
index; anything the drill knows of but the listing missed is fetched by id. An envelope's record
names its log index on every node that holds it, so each figure of the report can be checked
against both logs. `facts` gathers these with the plan, the clock and the link events into the
JSON document `core.drill_report.compute` works from.

Last, each node's newest checkpoint (`GET /api/v1/log`), once it covers the run's envelopes and
every peer has cosigned it, goes into the facts as `checkpoints`: below its size, `detente log
export` and `detente audit` of that node prove every log index the report names. The nodes' keys
(`keys`, from the agreement they run) go beside them, so that a reader verifies each checkpoint's
signatures (`core.drill_consistency`); a checkpoint that does not verify with them is not kept. A
node without one is left out and `checkpoints_missing` says why; it never fails the run.

A run interrupted after STARTEX (Ctrl-C, SIGTERM) still collects what the nodes hold and returns
its facts, with a top-level `interrupted` object saying where it stopped (drill and wall time, the
step being played, the next step, how many were left), so that the partial run is written and
cannot pass for a complete one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from detente.core import drill_consistency
from detente.core.drill_clock import to_drill
from detente.core.note import parse_note
from detente.core.precedence import DEFAULT_DEADLINES, format_time
from detente.core.scenario_plan import Plan
from detente.errors import Error
from detente.node.drill import Drill, DrillOptions, FeedItem, RunRecord
from detente.node.drill_client import Clients, NodeRefused, Target, utcnow

LISTING_LIMIT = 1000


async def collect_envelopes(clients: Clients, record: RunRecord) -> list[dict[str, Any]]:
    """Return one record per envelope of the run (link tests left out), merged across the nodes."""
    since = format_time(record.wall_start - timedelta(seconds=1))
    views: dict[str, dict[str, dict[str, Any]]] = {}
    for party in clients.target.parties:
        rows = await clients.list_messages(party, since, LISTING_LIMIT)
        views[party] = {str(r["id"]): r for r in rows if r["type"] != "link.test"}
    wanted = set(record.ids.values())
    for _, _, event in record.events:
        for key in ("id", "response", "overdue"):
            value = event.get(key)
            if isinstance(value, str) and event.get("event") != "link":
                wanted.add(value)
    for envelope_id in sorted(wanted):
        for party in clients.target.parties:
            if envelope_id not in views[party]:
                found = await clients.get_message(party, envelope_id)
                if found is not None:
                    views[party][envelope_id] = found
    merged: dict[str, dict[str, Any]] = {}
    for party, view in views.items():
        for envelope_id, row in view.items():
            entry = merged.setdefault(envelope_id, _base(row))
            entry["log"][party] = row["log_index"]
            if row.get("direction") == "out" or entry["sender_view"] is None:
                _take_sender_view(entry, row, party)
            if row.get("overdue_at") and (entry["overdue_at"] is None or row["overdue_at"] < entry["overdue_at"]):
                entry["overdue_at"] = row["overdue_at"]
    return sorted(merged.values(), key=lambda e: (e["created"], e["id"]))


WORKFLOW_KINDS = {
    "cases": "case",
    "actions": "action",
    "clarifications": "clarification",
    "consultations": "consultation",
}
WORKFLOW_FIELDS = ("status", "unilateral", "outside_window", "late", "executed_at", "answered_at")


async def collect_workflows(clients: Clients, ids: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Return where each case, action, clarification and consultation of the run stands on each node.

    Reads `GET /api/v1/cases|actions|clarifications|consultations` where the nodes have them;
    returns {kind: {id: {party: {status, flags...}}}}, empty when the nodes have no such endpoints.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for plural, kind in WORKFLOW_KINDS.items():
        for party in clients.target.parties:
            try:
                body = await clients.call(
                    party, clients.target.parties[party].watcher, "GET", f"/{plural}", params={"limit": 500}
                )
            except NodeRefused as exc:
                if exc.status_code in (404, 405, 422):
                    continue
                raise
            for state in body.get(plural, []):
                if state.get("id") in ids:
                    entry = {k: state[k] for k in WORKFLOW_FIELDS if k in state}
                    out.setdefault(kind, {}).setdefault(str(state["id"]), {})[party] = entry
    return out


CHECKPOINT_WAIT = 15.0  # real seconds to wait for a cosigned checkpoint that covers the run


async def collect_checkpoints(
    clients: Clients, envelopes: list[dict[str, Any]], *, wait: float = CHECKPOINT_WAIT
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Return each node's newest checkpoint, {party: {size, note}}, and why a party has none.

    Asks each node `GET /api/v1/log` as its watcher. A checkpoint is kept only once it covers every
    envelope of the run in that node's log (its size is above their highest log index) and every
    peer has cosigned it, since `detente log export` ends at the newest checkpoint every peer
    cosigned: then an export and `detente audit` of the node prove every envelope below its size.
    Its signatures must verify with the agreement's keys, as a reader of the report checks them.
    The node signs a checkpoint about a second after an append and its peer cosigns it soon after,
    so it is asked again for up to `wait` real seconds. Never raises for a node: a node that
    cannot be asked, or has no such checkpoint by then, is left out, and the second map says why.
    """
    found: dict[str, dict[str, Any]] = {}
    why: dict[str, str] = {}
    table = drill_consistency.party_keys(clients.target.agreement)
    for party in clients.target.parties:
        highest = max((e["log"][party] for e in envelopes if party in e["log"]), default=-1)
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                state = await clients.call(party, clients.target.parties[party].watcher, "GET", "/log")
                checkpoint = state.get("checkpoint")
                problem = _checkpoint_problem(state, checkpoint, highest)
                if problem is None and checkpoint is not None:
                    # Kept only if the report's own check will take it: signed by the keys it carries.
                    note = parse_note(str(checkpoint["note"]).encode("utf-8"))
                    problem = drill_consistency.signature_problem(party, note, table, list(clients.target.parties))
            except (Error, KeyError, TypeError, ValueError) as exc:
                checkpoint, problem = None, f"its node did not say: {getattr(exc, 'detail', None) or exc}"
            if problem is None and checkpoint is not None:
                found[party] = {"size": int(checkpoint["size"]), "note": str(checkpoint["note"])}
                break
            if asyncio.get_running_loop().time() >= deadline:
                why[party] = problem or "its node answered without a checkpoint"
                break
            await asyncio.sleep(0.25)
    return found, why


def _checkpoint_problem(state: dict[str, Any], checkpoint: dict[str, Any] | None, highest: int) -> str | None:
    """Return why `checkpoint` (from `GET /api/v1/log`) cannot prove the run's envelopes, or None."""
    if checkpoint is None:
        return "its node has signed no checkpoint"
    size = int(checkpoint["size"])
    if size <= highest:
        return f"its newest checkpoint (size {size}) does not cover log index {highest} of the run"
    unsigned = [p for p, peer in (state.get("peers") or {}).items() if (peer.get("our_size_cosigned") or 0) < size]
    if unsigned:
        return f"{', '.join(sorted(unsigned))} had not cosigned its newest checkpoint (size {size})"
    return None


def _base(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "type": row["type"], "channel": row["channel"], "from": row["from"], "to": row["to"],
        "precedence": row["precedence"], "created": row["created"], "refs": list(row.get("refs") or []),
        "case": row.get("case"), "body": row.get("body", {}), "deadline": row.get("deadline"),
        "needs_ack": row.get("deadline") is not None, "state": row.get("state"), "response": row.get("response"),
        "delivered_at": row.get("delivered_at"), "overdue_at": None, "author": row.get("author"), "log": {},
        "sender_view": None,
    }  # fmt: skip


def _take_sender_view(entry: dict[str, Any], row: dict[str, Any], party: str) -> None:
    entry["sender_view"] = party
    for key in ("state", "response", "delivered_at", "deadline"):
        if row.get(key) is not None or key == "state":
            entry[key] = row.get(key)
    entry["needs_ack"] = entry["deadline"] is not None


def facts(
    plan: Plan, record: RunRecord, target: Target, envelopes: list[dict[str, Any]],
    workflows: dict[str, dict[str, dict[str, Any]]] | None = None,
    checkpoints: tuple[dict[str, dict[str, Any]], dict[str, str]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return everything the report is computed from, as one JSON document.

    `checkpoints` is what `collect_checkpoints` returned: the facts then hold `checkpoints`
    ({party: {size, note}}) and, for a node left out, `checkpoints_missing` ({party: why}).
    """
    scenario = plan.scenario
    agreement = target.agreement
    deadlines = {
        name: {p.value: (chan.deadlines.get(p) or DEFAULT_DEADLINES[p]).total_seconds() for p in DEFAULT_DEADLINES}
        for name, chan in agreement.channels.items()
    }
    samples = record.samples
    by_id = {r.id: r for r in record.steps if r.id}
    steps = []
    for step, result in zip(_steps_in_order(plan, record), record.steps, strict=False):
        message = step.message
        steps.append(
            {
                **result.to_json(),
                "type": message.type if message else None,
                "to": message.to if message else None,
                "target": step.target,
                "about": step.about,
                "incident": step.inject.incident is not None,
                "situation": step.inject.situation,
                **_provenance(step.inject),
                "party": step.party,  # an outage's node (the report sets it beside what the nodes saw)
                "duration": step.duration.total_seconds() if step.kind == "outage" else None,
            }
        )
    links = [
        {"node": party, "peer": event.get("peer"), "state": event.get("state"), "wall": format_time(wall),
         "reason": event.get("reason")}
        for party, wall, event in record.events if event.get("event") == "link"
    ]  # fmt: skip
    for envelope in envelopes:
        step = by_id.get(envelope["id"])
        envelope["step"] = step.label if step else None
        envelope["line"] = step.line if step else None
        envelope["drill"] = format_time(to_drill(samples, _time(envelope["created"])))
    kept, missing = checkpoints or ({}, {})
    party_keys = drill_consistency.party_keys(agreement)
    return {
        "format": "detente-drill-report/1",
        "scenario": {
            "title": scenario.title, "source": scenario.source, "description": scenario.description,
            "variant": plan.variant, "variant_title": scenario.variants.get(plan.variant or "", ""),
            "seed": scenario.seed, "notices": list(plan.notices),
        },
        "run": {
            "speed": record.options.speed, "skip": record.options.skip, "pause": record.options.pause,
            "target": target.source, "nodes": {p: n.url for p, n in target.parties.items()},
            "agreement": agreement.hash, "agreement_file": target.agreement_path,
            "node_dirs": {p: n.data for p, n in target.parties.items() if n.data},
            "wall_start": format_time(record.wall_start),
            "wall_end": format_time(record.wall_end or record.wall_start),
            "drill_start": format_time(plan.start), "drill_end": format_time(plan.end),
        },
        "clock": {
            "samples": [[format_time(w), format_time(d)] for w, d in samples],
            "jumps": [[format_time(a), format_time(b)] for a, b in record.clock.jumps()],
        },
        "deadlines": deadlines,
        "incidents": [
            {"label": s.label, "kind": i.kind, "place": i.place, "by": i.by, "where": i.where,
             "drill": format_time(s.at), "line": s.line, "text": _text(s.inject.situation), **_provenance(s.inject)}
            for s, i in plan.incidents
        ],
        "steps": steps,
        "envelopes": envelopes,
        "links": {"events": links, "before": record.links_before, "after": record.links_after},
        "workflows": workflows or {},
        **({"checkpoints": kept} if kept else {}),
        **({"checkpoints_missing": missing} if missing else {}),
        **({"keys": party_keys} if party_keys else {}),
    }  # fmt: skip


def _provenance(inject: Any) -> dict[str, str]:
    """The step's `assumed` and `uncertain` notes, where the scenario gives them: its time is not sourced."""
    return {k: v for k, v in (("assumed", inject.assumed), ("uncertain", inject.uncertain)) if v}


def _steps_in_order(plan: Plan, record: RunRecord) -> list[Any]:
    by_n = {s.n: s for s in plan.steps}
    return [by_n[r.n] for r in record.steps]


def _text(situation: dict[str, str]) -> str:
    return situation.get("all") or next(iter(situation.values()), "")


def _time(value: str) -> Any:
    from detente.core.precedence import parse_time

    return parse_time(value)


async def play(
    plan: Plan, target: Target, options: DrillOptions, *,
    feed: Callable[[FeedItem], None] | None = None, progress: Callable[[datetime, float], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run `plan` against `target`, collect the envelopes, and return the facts for the report.

    Cancelled after STARTEX (the command line's Ctrl-C), it still collects what the nodes hold, for
    at most `COLLECT_AFTER_INTERRUPT` seconds, and returns the facts with `interrupted` set; a
    second cancellation, or one before STARTEX, propagates (nothing was sent before STARTEX).
    """
    drill = Drill(plan, target, options, feed=feed, progress=progress)
    try:
        record = await drill.run()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not drill.started or task is None:
            raise
        task.uncancel()  # go on collecting: a second Ctrl-C cancels this too
        return await _partial(drill, plan, target)
    async with Clients(target) as clients:
        envelopes = await collect_envelopes(clients, record)
        workflows = await collect_workflows(clients, {e["id"] for e in envelopes})
        checkpoints = await collect_checkpoints(clients, envelopes)
    return facts(plan, record, target, envelopes, workflows, checkpoints)


COLLECT_AFTER_INTERRUPT = 20.0


async def _partial(drill: Drill, plan: Plan, target: Target) -> dict[str, Any]:
    record = drill.record
    envelopes: list[dict[str, Any]] = []
    workflows: dict[str, dict[str, dict[str, Any]]] = {}
    checkpoints: tuple[dict[str, dict[str, Any]], dict[str, str]] | None = None
    collected = "complete"
    try:
        async with asyncio.timeout(COLLECT_AFTER_INTERRUPT), Clients(target) as clients:
            envelopes = await collect_envelopes(clients, record)
            workflows = await collect_workflows(clients, {e["id"] for e in envelopes})
            # Asked once, not waited for: an interrupted drill is stopped within the 20 s.
            checkpoints = await collect_checkpoints(clients, envelopes, wait=0)
    except (TimeoutError, Error) as exc:
        # The steps still name every envelope the drill made (ids and log indexes).
        collected = f"not collected from the nodes: {getattr(exc, 'detail', None) or 'no answer within 20 s'}"
    result = facts(plan, record, target, envelopes, workflows, checkpoints)
    result["interrupted"] = interruption(drill, collected)
    return result


def interruption(drill: Drill, collected: str) -> dict[str, Any]:
    """Return where an interrupted run stopped: the `interrupted` object of its facts."""
    played = drill.record.steps[-1] if drill.record.steps else None
    following = next(iter(drill.pending), None)
    return {
        "drill": format_time(drill.clock.now),
        "wall": format_time(drill.record.wall_end or utcnow()),
        "variant": drill.plan.variant,
        "step": None if played is None else {
            "line": played.line, "label": played.label, "kind": played.kind, "drill": played.drill,
            "status": played.status,
        },
        "next": None if following is None else {
            "line": following.line, "label": following.label, "kind": following.kind,
            "drill": format_time(following.at),
        },
        "steps_played": len(drill.record.steps),
        "steps_left": len(drill.pending),
        "envelopes": collected,
    }  # fmt: skip
