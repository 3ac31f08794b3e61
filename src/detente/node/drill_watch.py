"""What the drill sees of the nodes and says of it: the live feed and both nodes' streams.

The drill watches each node's stream as a supervisor (`Clients.stream`), so it sees what people do
in the consoles as well as its own acts. `DrillWatch` records every event for the report, shows
each act once in the feed (both streams report it), marks what nobody scripted, follows the links
(the clock does not jump while a node sees its peer down), and lets a step wait, its clock held,
until what it reacts to has reached its node (`wait_for`). It is the base of `node.drill.Drill`,
which plays the steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from detente.core.drill_clock import ClockRun
from detente.node.drill_client import utcnow
from detente.node.drill_types import FeedItem, RunRecord


class DrillWatch:
    """The feed and the streams of one run: what was seen, by which node, and who waits for it."""

    # Set by the run (`node.drill.Drill`): where events are recorded, the clock that must not
    # jump while a link is down, and the nodes an outage has stopped.
    record: RunRecord
    clock: ClockRun
    paused: set[str]

    def __init__(self, feed: Callable[[FeedItem], None] | None) -> None:
        self.feed_cb = feed
        self.seen: set[tuple[str, str, str]] = set()
        self.waiters: dict[tuple[str, str, str], asyncio.Future[None]] = {}
        self.overdue_shown: set[str] = set()
        self.answering: set[str] = set()  # messages the drill itself answers
        self.shown: set[tuple[str, str]] = set()

    def feed(self, kind: str, party: str | None, text: str, label: str | None = None) -> None:
        """Show one line in the live feed, at the drill clock's time."""
        if self.feed_cb is not None:
            self.feed_cb(FeedItem(kind, self.clock.now, utcnow(), party, text, label))

    async def on_event(self, party: str, wall: datetime, event: dict[str, Any]) -> None:
        """Record one event of `party`'s stream, wake whoever waits for it and show it in the feed."""
        kind = str(event.get("event"))
        if kind == "hello":
            return
        self.record.events.append((party, wall, event))
        key = (party, kind, str(event.get("id")))
        self.seen.add(key)
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        ours = set(self.record.ids.values())
        if kind in ("message", "acknowledged", "declined", "status"):
            if (kind, key[2]) in self.shown:
                return  # each act once in the feed, though both nodes' streams report it
            self.shown.add((kind, key[2]))
        if kind == "message" and event.get("id") not in ours:
            text = (
                f"{event.get('from')} → {event.get('to')}: {event.get('precedence')} {event.get('type')} (not scripted)"
            )
            self.feed("seen", party, text)
        elif kind in ("acknowledged", "declined") and key[2] not in self.answering:
            self.feed("seen", party, f"{kind} …{str(event.get('id'))[-8:]} by {event.get('by')} (not scripted)")
        elif kind == "overdue" and key[2] not in self.overdue_shown:
            self.overdue_shown.add(key[2])
            self.feed("overdue", party, f"OVERDUE on the node: …{str(event.get('id'))[-8:]} (real-time deadline)")
        elif kind == "link":
            self.clock.see_link(party, str(event.get("peer")), str(event.get("state")), wall)  # no jump while down
            self.feed("link", party, f"link to {event.get('peer')} is {event.get('state')} ({event.get('reason')})")
        elif kind == "status" and event.get("id") not in ours:
            self.feed("seen", party, f"status from {event.get('peer')}: {event.get('code')} {event.get('note', '')}")

    async def wait_for(self, key: tuple[str, str, str], timeout: float) -> bool:
        """Wait until the stream of `key`'s party reports the event (party, kind, id); return whether it did.

        A node stopped by an outage reports nothing, so the wait for it is cut short.
        """
        if key in self.seen:
            return True
        if key[0] in self.paused:
            timeout = min(timeout, 0.3)
        future = self.waiters.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return key in self.seen
        return True


def gist(kind: str, body: dict[str, Any]) -> str:
    """Return the few words of a message's body the feed shows after its type (` — text…`), or ""."""
    for key in ("code", "text", "event", "description", "objective", "summary", "reason", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            text = " ".join(value.split())
            return f" — {text[:90]}{'…' if len(text) > 90 else ''}"
    if isinstance(body.get("questions"), list):
        return f" — {len(body['questions'])} question(s)"
    if isinstance(body.get("answers"), list):
        return f" — {len(body['answers'])} answer(s)"
    if isinstance(body.get("measures"), list):
        return f" — {body['measures'][0][:90]}"
    return ""
