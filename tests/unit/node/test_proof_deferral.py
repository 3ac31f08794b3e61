"""Proofs of delivery wait while the delivery link carries a backlog, but never longer than MAX_DEFER."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from detente.node import delivery_proofs
from detente.node.delivery_proofs import ProofFetcher
from support import run_async


class Rounds(ProofFetcher):
    """The real fetcher's loop; each round only notes when it ran (proving itself is tested on real nodes)."""

    def __init__(self, busy: Any) -> None:
        client = SimpleNamespace(peer=SimpleNamespace(id="ir", log_origin="ir.detente/log"))
        super().__init__(None, client, busy)  # type: ignore[arg-type]
        self.rounds: list[float] = []

    async def verify_once(self) -> bool:
        self.rounds.append(time.monotonic())
        await asyncio.sleep(0.001)  # a real round waits for the database and the peer
        self.wake.set()  # ask for the next round at once, as a full batch proven would
        return False


def run_for(fetcher: Rounds, seconds: float, *, rounds: int = 0) -> None:
    """Run the fetcher's loop for `seconds`, or, with `rounds`, until it has run that many (at most 20 s).

    Waiting for a number of rounds rather than counting them in a fixed time keeps the test true on
    a loaded machine, where a second of wall time may give the loop far less than a second.
    """

    async def scenario() -> None:
        task = asyncio.create_task(fetcher.run())
        if rounds:
            deadline = time.monotonic() + 20
            while len(fetcher.rounds) < rounds and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        else:
            await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_async(scenario())


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_proofs, "DEFER_STEP", 0.02)
    monkeypatch.setattr(delivery_proofs, "MAX_DEFER", 0.3)


def test_a_quiet_link_proves_at_once() -> None:
    fetcher = Rounds(lambda: False)
    run_for(fetcher, 0.2)
    assert len(fetcher.rounds) > 5 and fetcher.deferred == 0


def test_a_backlog_holds_proofs_back_until_it_clears() -> None:
    clears = time.monotonic() + 0.15
    fetcher = Rounds(lambda: time.monotonic() < clears)
    run_for(fetcher, 0.25)
    assert fetcher.rounds and fetcher.rounds[0] >= clears
    # Looked again within a few steps of 0.02 s, not at the next idle wake (IDLE, 3 s): a bound far
    # from both, so that a loaded machine does not make it fail.
    assert fetcher.rounds[0] - clears < delivery_proofs.IDLE / 3
    assert fetcher.deferred >= 5


def test_a_sustained_backlog_still_gets_a_round_every_max_defer() -> None:
    fetcher = Rounds(lambda: True)
    start = time.monotonic()
    run_for(fetcher, 0, rounds=3)
    # A round about every 0.3 s (MAX_DEFER), not one per loop turn: each waited its MAX_DEFER first.
    assert len(fetcher.rounds) >= 3, fetcher.rounds
    assert fetcher.rounds[0] - start >= 0.28
    gaps = [b - a for a, b in zip(fetcher.rounds, fetcher.rounds[1:], strict=False)]
    assert all(g >= 0.28 for g in gaps), gaps
