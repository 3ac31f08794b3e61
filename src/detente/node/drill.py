"""The drill engine: plays a scenario's plan through real nodes, through their operator API.

For each step, when the drill clock reaches its time, the engine acts as the demo operator of the
step's office: it sends the message (`POST /api/v1/messages`), acknowledges or declines
(`POST /api/v1/messages/{id}/ack|decline`), sends a `status`, or shows a situation update. It does
nothing for offices without scripted steps, so people can play them in the consoles; it watches
every node's stream as a supervisor and measures everyone alike. While it acts on a node the clock
holds, so the compression does not magnify a request's latency, and a reaction waits, the clock
held, until what it reacts to has reached its node (`core.drill_clock`). When the plan is done it
waits for the outboxes to drain (what it sees of the nodes meanwhile: `node.drill_watch`; the bodies
it sends: `node.drill_body`); `node.drill_collect` then collects every envelope of the run from
both nodes for the report (`core.drill_report`).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from detente.core.drill_clock import ClockRun
from detente.core.precedence import format_time, parse_time
from detente.core.scenario import format_duration
from detente.core.scenario_plan import Plan, Step
from detente.errors import Error
from detente.node.drill_access import is_harness_failure
from detente.node.drill_body import wall_body
from detente.node.drill_client import Clients, NodeRefused, Target, collect_links, utcnow
from detente.node.drill_types import (
    OVERDUE_GRACE,
    DrillOptions,
    FeedItem,
    RunRecord,
    StepResult,
    clock_plan,
    preflight,
)
from detente.node.drill_watch import DrillWatch, gist


class Drill(DrillWatch):
    """One run of one plan against one target (what it sees of the nodes: `DrillWatch`)."""

    def __init__(
        self, plan: Plan, target: Target, options: DrillOptions, *,
        feed: Callable[[FeedItem], None] | None = None,
        progress: Callable[[datetime, float], None] | None = None,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.target = target
        self.options = options
        super().__init__(feed)
        self.progress_cb = progress
        self.clock_plan = clock_plan(plan, options)
        self.clock = ClockRun(self.clock_plan, utcnow())
        self.record = RunRecord(plan, options, self.clock_plan, self.clock.wall_start)
        self.bodies: dict[str, dict[str, Any]] = {}
        self.paused: set[str] = set()
        self.timers: list[tuple[datetime, str]] = []  # (drill time, party to resume)
        self.clients: Clients | None = None
        self.started = False  # STARTEX passed: from then on an interruption leaves a partial run
        self.pending: deque[Step] = deque(plan.steps)
        self.current: Step | None = None  # the step being played, if any

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> RunRecord:
        """Play the plan; return the record (the caller collects the envelopes and writes the report)."""
        stop = asyncio.Event()
        async with Clients(self.target) as clients:
            self.clients = clients
            connected = {p: asyncio.Event() for p in self.target.parties}
            streams = [
                asyncio.create_task(clients.stream(p, self.on_event, stop, connected[p])) for p in self.target.parties
            ]
            try:
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected.values())), 15)
            except TimeoutError:
                missing = ", ".join(p for p, event in connected.items() if not event.is_set())
                raise Error(f"the drill could not open the stream of every node within 15 s (not: {missing})") from None
            await self._links_up(clients)
            self.record.links_before = await collect_links(clients)
            try:
                await self._loop()
                await self._settle(clients)
            finally:
                for party in list(self.paused):
                    self._resume(party)
                self.record.wall_end = utcnow()
                self.clock.advance(self.record.wall_end)
                self.record.samples = list(self.clock.samples)
                self.record.links_after = await collect_links(clients)
                stop.set()
                await asyncio.gather(*streams, return_exceptions=True)
        return self.record

    async def _loop(self) -> None:
        self.clock = ClockRun(self.clock_plan, utcnow())
        self.record.wall_start = self.clock.wall_start
        pending = self.pending
        self.started = True
        self.feed("situation", None, f"STARTEX {self.plan.scenario.title}" + self._variant())
        while True:
            for before, after in self.clock.advance(utcnow(), until=_next(pending, self.timers)):
                self.feed(
                    "jump", None, f"time jump {_short(before)} → {_short(after)} ({format_duration(after - before)})"
                )
            if self.progress_cb is not None:
                self.progress_cb(self.clock.now, min(1.0, self.clock.e / max(self.clock_plan.duration, 1e-9)))
            for when, party in [t for t in self.timers if t[0] <= self.clock.now]:
                self.timers.remove((when, party))
                self._resume(party)
            while pending and pending[0].at <= self.clock.now:
                await self.execute(pending.popleft())
            if not pending and self.clock.done and not self.timers:
                break
            await asyncio.sleep(self.options.tick)
        self.feed("situation", None, "ENDEX")

    def _variant(self) -> str:
        return f" — {self.plan.variant}" if self.plan.variant else ""

    async def _links_up(self, clients: Clients, timeout: float = 20.0) -> None:
        """STARTEX only once every node sees every link UP (or after `timeout`, with a warning)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            states = [link.get("state") for links in (await collect_links(clients)).values() for link in links]
            if states and all(state == "UP" for state in states):
                return
            await asyncio.sleep(0.2)
        self.feed("error", None, f"the links were not all UP after {timeout:.0f} s; starting anyway")

    async def _settle(self, clients: Clients) -> None:
        deadline = asyncio.get_running_loop().time() + self.options.settle
        while asyncio.get_running_loop().time() < deadline:
            depths: list[int] = []
            for party in self.target.parties:
                try:
                    depths.extend(link["outbox"] for link in await clients.links(party))
                except Error:
                    depths.append(1)
            if not any(depths):
                return
            await asyncio.sleep(0.1)

    async def execute(self, step: Step) -> None:
        operator = self.plan.scenario.operator_for(step.office) if step.office else None
        result = StepResult(step.n, step.label, step.kind, step.line, step.office, operator, format_time(step.at))
        self.record.steps.append(result)
        self.current = step
        self.clock.hold(utcnow())
        result.wall = format_time(utcnow())
        try:
            if step.kind == "situation":
                self._situation(step)
                result.status = "shown"
            elif step.kind == "silence" and (step.target or "") not in self.record.ids:
                # Never shown as if the message existed: it was not sent (a failed or skipped step).
                result.status, result.error = "skipped", f"{step.target} was not sent"
                self.feed("error", _party(step.office), f"line {step.line}: skipped: {result.error}", step.label)
            elif step.kind == "silence":
                self.feed("silence", _party(step.office), f"{step.office} stays silent on {step.target}", step.label)
                result.status = "shown"
            elif step.kind == "outage":
                self._outage(step)
                result.status = "done"
            elif step.office is not None and _party(step.office) in self.paused:
                result.status, result.error = "skipped", f"{_party(step.office)}'s node is down (outage)"
                self.feed("error", _party(step.office), f"{step.office} cannot act: its node is down", step.label)
            elif step.kind == "message":
                await self._send(step, result)
            elif step.kind in ("ack", "decline"):
                await self._answer(step, result)
            elif step.kind == "status":
                await self._status(step, result)
        except Error as exc:
            result.status, result.error, result.harness = "failed", exc.detail, is_harness_failure(exc)
            self.feed("error", _party(step.office), f"line {step.line}: {exc.detail}", step.label)
        except asyncio.CancelledError:
            if result.status == "pending":
                result.status = "interrupted"
                result.notes.append(
                    "the drill was interrupted while it played this step: whether a node took it, "
                    "the envelopes collected from both nodes say"
                )
            raise
        finally:
            self.current = None
            self.clock.release(utcnow())

    def _situation(self, step: Step) -> None:
        incident = step.inject.incident
        for party, text in step.inject.situation.items():
            prefix = f"INCIDENT ({incident.kind}, {incident.place}) " if incident else ""
            self.feed("situation", None if party == "all" else party, prefix + text.strip(), step.label)

    def _outage(self, step: Step) -> None:
        party = step.party or ""
        pid = self.target.parties[party].pid
        if pid is None:
            raise Error(f"cannot take {party}'s node down: the drill did not start it")
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(party)
        self.timers.append((step.at + step.duration, party))
        self.feed("outage", party, f"{party}'s node goes dark for {format_duration(step.duration)}", step.label)

    def _resume(self, party: str) -> None:
        pid = self.target.parties[party].pid
        if pid is not None and party in self.paused:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.paused.discard(party)
            self.feed("outage", party, f"{party}'s node is back")

    async def _send(self, step: Step, result: StepResult) -> None:
        assert self.clients is not None and step.message is not None and result.operator is not None
        m = step.message
        party = _party(m.sender)
        needed = [*m.refs, *([m.case] if m.case else [])]
        missing = [label for label in needed if label not in self.record.ids]
        if missing:
            result.status, result.error = "skipped", f"needs {', '.join(missing)}, which was not sent"
            self.feed("error", party, f"line {step.line}: skipped: {result.error}", step.label)
            return
        for label in needed:
            if label in self.bodies and _party(self._sender_of(label)) != party:
                await self.wait_for((party, "message", self.record.ids[label]), self.options.hold_max)
        wall = utcnow()
        body = self._body(step, wall, result)
        request: dict[str, Any] = {
            "channel": m.channel, "to": m.to, "precedence": m.precedence.value, "type": m.type, "body": body,
            "refs": [self.record.ids[r] for r in m.refs], "case": self.record.ids[m.case] if m.case else None,
        }  # fmt: skip
        if m.lang:
            request["lang"] = m.lang
        sent = await self.clients.call(party, result.operator, "POST", "/messages", json=request)
        result.status, result.id, result.log_index = "done", str(sent["id"]), int(sent["log_index"])
        if step.label:
            self.record.ids[step.label] = result.id
            self.bodies[step.label] = body
        self.feed("sent", party, f"{m.sender} → {m.to}  {m.precedence.value} {m.type}{gist(m.type, body)}", step.label)

    async def _until_overdue(self, step: Step, party: str, target_id: str, result: StepResult) -> None:
        """Wait, the clock held, until `party`'s node marks the message overdue: only then may an
        alternate office answer it. The node's deadline runs on the wall clock, so in a compressed
        drill it falls after the drill-time deadline the plan checked; raise `Error` if it is more
        than `options.overdue_wait` real seconds away."""
        assert self.clients is not None
        key = (party, "overdue", target_id)
        if key in self.seen:
            return
        row = await self.clients.get_message(party, target_id)
        if row is None or row.get("overdue_at") or not row.get("deadline"):
            return
        wait = (parse_time(str(row["deadline"])) - utcnow()).total_seconds() + OVERDUE_GRACE
        if wait > self.options.overdue_wait:
            raise Error(
                f"{step.office} may answer {step.target} only once {party}'s node marks it overdue, at its "
                f"deadline {row['deadline']} on the wall clock ({wait:.0f} s from now; the drill waits at most "
                f"{self.options.overdue_wait:.0f} s): run the drill slower, or have {_addressee(row)} answer it"
            )
        self.feed("seen", party, f"waiting up to {wait:.0f} s for {party}'s node to mark {step.target} overdue")
        if not await self.wait_for(key, wait):
            result.notes.append(f"{party}'s node had not marked {step.target} overdue; answered it anyway")
        else:
            result.notes.append(f"waited for {party}'s node to mark {step.target} overdue (wall-clock deadline)")

    def _message_of(self, label: str) -> Any:
        step = self.plan.by_label().get(label)
        return step.message if step is not None else None

    def _sender_of(self, label: str) -> str:
        step = self.plan.by_label().get(label)
        return step.message.sender if step is not None and step.message is not None else ""

    async def _answer(self, step: Step, result: StepResult) -> None:
        assert self.clients is not None and step.office is not None and result.operator is not None
        target_id = self.record.ids.get(step.target or "")
        if target_id is None:
            result.status, result.error = "skipped", f"{step.target} was not sent"
            self.feed("error", _party(step.office), f"line {step.line}: skipped: {result.error}", step.label)
            return
        party = _party(step.office)
        if not await self.wait_for((party, "message", target_id), self.options.hold_max):
            result.notes.append(f"{step.target} had not reached {party}'s node; answered it anyway")
        addressee = self._message_of(step.target or "")
        if addressee is not None and step.office != addressee.to:
            await self._until_overdue(step, party, target_id, result)
        if step.kind == "ack":
            payload: dict[str, Any] = {"note": step.text}
        else:
            payload = {"reason": step.text}
        path = f"/messages/{target_id}/{'ack' if step.kind == 'ack' else 'decline'}"
        self.answering.add(target_id)
        try:
            sent = await self.clients.call(party, result.operator, "POST", path, json=payload)
        except NodeRefused as exc:
            if exc.status_code == 409:  # someone in a console answered first
                result.status, result.error = "skipped", exc.detail
                self.feed("seen", party, f"{step.target} was already answered: {exc.detail}", step.label)
                return
            raise
        result.status, result.id, result.log_index = "done", str(sent["id"]), int(sent["log_index"])
        if step.label:
            self.record.ids[step.label] = result.id
        verb = "acknowledges" if step.kind == "ack" else "DECLINES"
        note = f": {step.text}" if step.text else ""
        self.feed("answer", party, f"{step.office} {verb} {step.target}{note}", step.label)

    async def _status(self, step: Step, result: StepResult) -> None:
        assert self.clients is not None and step.office is not None and result.operator is not None
        party = _party(step.office)
        payload = {"peer": step.party, "code": step.code, "note": step.text, "office": step.office}
        sent = await self.clients.call(party, result.operator, "POST", "/status", json=payload)
        result.status, result.id, result.log_index = "done", str(sent["id"]), int(sent["log_index"])
        if step.label:
            self.record.ids[step.label] = result.id
        self.feed("status", party, f"{step.office} tells {step.party}: {step.code} {step.text}".rstrip(), step.label)

    def _body(self, step: Step, wall: datetime, result: StepResult) -> dict[str, Any]:
        """The step's body with drill times turned into wall times (`node.drill_body`)."""
        return wall_body(
            step,
            wall,
            result,
            clock=self.clock,
            bodies=self.bodies,
            agreement=self.target.agreement.raw,
            speed=self.options.speed,
        )


def _next(pending: deque[Step], timers: list[tuple[datetime, str]]) -> datetime | None:
    times = [t for t, _ in timers] + ([pending[0].at] if pending else [])
    return min(times) if times else None


def _addressee(row: dict[str, Any]) -> str:
    return str(row.get("to") or "its addressee")


def _party(office: str | None) -> str:
    return (office or "").split(":")[0]


def _short(moment: datetime) -> str:
    return moment.strftime("%d %b %H:%MZ")


__all__ = ["Drill", "DrillOptions", "FeedItem", "RunRecord", "StepResult", "clock_plan", "preflight"]
