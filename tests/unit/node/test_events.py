"""The in-process event bus: fan-out, kinds filter, slow subscribers."""

from __future__ import annotations

from detente.node.events import Event, EventBus
from support import run_async


def test_subscribers_get_every_event_or_only_their_kinds() -> None:
    async def main() -> tuple[list[str | None], list[str | None], list[str | None]]:
        bus = EventBus()
        everything = bus.subscribe()
        evidence = bus.subscribe(frozenset({"evidence"}))
        gone = bus.subscribe()
        bus.unsubscribe(gone)
        bus.publish(Event("message", "m1", ("ir:dgmo",)), Event("evidence", "e1", ()), Event("receipt", "m1", ()))
        drained = []
        for queue in (everything, evidence, gone):
            ids = []
            while not queue.empty():
                event = queue.get_nowait()
                ids.append(f"{event.kind}/{event.id}")
            drained.append(ids)
        return drained[0], drained[1], drained[2]

    everything, evidence, gone = run_async(main())
    assert everything == ["message/m1", "evidence/e1", "receipt/m1"]
    assert evidence == ["evidence/e1"]
    assert gone == []


def test_a_slow_subscriber_loses_the_oldest_events_and_never_blocks() -> None:
    async def main() -> list[str | None]:
        bus = EventBus(queue_size=3)
        queue = bus.subscribe()
        bus.publish(*(Event("message", f"m{n}", ()) for n in range(5)))
        return [queue.get_nowait().id for _ in range(queue.qsize())]

    assert run_async(main()) == ["m2", "m3", "m4"]
