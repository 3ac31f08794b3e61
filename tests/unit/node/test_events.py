"""The in-process event bus: fan-out, kinds filter, slow subscribers; waiting for an event with a timeout."""

from __future__ import annotations

import asyncio

from detente.node.events import Event, EventBus, wait_set
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


def test_wait_set_answers_whether_the_event_came() -> None:
    async def scenario() -> tuple[bool, bool]:
        event = asyncio.Event()
        missed = await wait_set(event, 0.01)
        event.set()
        return missed, await wait_set(event, 5)

    assert run_async(scenario()) == (False, True)


def test_a_cancellation_that_meets_the_event_is_never_lost() -> None:
    # asyncio.wait_for (Python 3.11) returns the result instead when the awaited event completes just
    # before the cancellation reaches the waiting task; a deliverer cancelled then ran on forever.
    async def waits_twice(event: asyncio.Event) -> None:
        await wait_set(event, 5)
        event.clear()
        await wait_set(event, 5)  # a cancelled task never gets here

    async def cancel_after(turns: int) -> bool:
        event = asyncio.Event()
        event.set()
        task = asyncio.create_task(waits_twice(event))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1)
        return task in done and task.cancelled()

    async def every_moment() -> list[bool]:
        return [await cancel_after(turns) for turns in range(6)]

    assert run_async(every_moment()) == [True] * 6
