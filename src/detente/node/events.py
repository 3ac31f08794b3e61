"""In-process publish/subscribe of live events for the operators' streams.

Events are published only after the transaction that caused them has committed, so a stream
never shows something the node could still lose.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One live event: its kind, the envelope it is about, the offices it concerns, its data."""

    kind: str
    id: str | None
    offices: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict)
    everyone: bool = False  # link state changes concern every operator

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "id": self.id, "offices": list(self.offices), **self.data}


class EventBus:
    """Fan-out of events to subscriber queues; slow subscribers lose old events, never block."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[asyncio.Queue[Event], frozenset[str] | None] = {}
        self._queue_size = queue_size

    def subscribe(self, kinds: frozenset[str] | None = None) -> asyncio.Queue[Event]:
        """Return a new queue that receives the events published from now on (only `kinds`, if given)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = kinds
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        """Stop sending events to `queue`."""
        self._subscribers.pop(queue, None)

    def publish(self, *events: Event) -> None:
        """Send events to every subscriber that wants them (call from the event loop, after commit)."""
        for event in events:
            for queue, kinds in list(self._subscribers.items()):
                if kinds is not None and event.kind not in kinds:
                    continue
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; return whether it was set. Raises nothing of its own.

    Not `asyncio.wait_for`: on Python 3.11 it loses a cancellation that arrives while the awaited
    event is being set (CPython gh-86296), so a task cancelled at that moment runs on, and the node's
    shutdown waits for it forever. `asyncio.timeout` tells its own cancellation from another's.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
