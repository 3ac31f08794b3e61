"""The machine's own tail: one fixed piece of CPU work, timed again and again, alone in one process.

On this shared virtual machine the same work does not always take the same time. The host takes
the CPU away for milliseconds at a time, the guest reports no steal time for it, and a thread's
own CPU clock stretches with the wall clock (measured on 2026-11-27: 1 ms of hashing had a p99 of
3.2 ms, 7 ms of it a p99 of 34 ms, with nothing else running). A latency percentile cannot beat
the same percentile of the same amount of work done with nothing of Détente in it, so the bench
measures that floor in the same run: once at 1 ms of work beside the other floors, and once at
the FLASH median after the latency run, where it says what that median's p99 would be if every
step of the path were pure computation in one process.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from typing import Any

from bench.common import summary_ms

PAUSE_S = 0.002  # between samples: a latency run's steps are separated by waits too


def _spin(rounds: int) -> bytes:
    """Chain SHA-256 over 32 bytes `rounds` times: fixed work that holds the CPU and no lock."""
    digest = b"\x00" * 32
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest


def calibrate(work_ms: float, tries: int = 7) -> int:
    """Return how many rounds of `_spin` take `work_ms` at the median of `tries` timings.

    Raises `ValueError` for a duration that is not positive.
    """
    if work_ms <= 0:
        raise ValueError(f"work must take some time, not {work_ms} ms")
    rounds = 1000
    for _ in range(3):  # converge on the size first, then take the median of several timings
        t0 = time.perf_counter()
        _spin(rounds)
        rounds = max(1, round(rounds * work_ms / 1000 / max(time.perf_counter() - t0, 1e-7)))
    timings = []
    for _ in range(tries):
        t0 = time.perf_counter()
        _spin(rounds)
        timings.append(time.perf_counter() - t0)
    return max(1, round(rounds * work_ms / 1000 / statistics.median(timings)))


def measure(work_ms: float, samples: int) -> dict[str, Any]:
    """Time `samples` runs of `work_ms` of fixed CPU work (calibrated first); return ms percentiles.

    The answer holds `work_ms`, the calibrated `rounds`, the summary of `summary_ms` and
    `stretch_p99`, how many times its p50 the p99 is. Raises `ValueError` for a duration that is
    not positive or fewer than 10 samples.
    """
    if samples < 10:
        raise ValueError(f"a percentile needs at least 10 samples, not {samples}")
    rounds = calibrate(work_ms)
    timings = []
    for _ in range(samples):
        t0 = time.perf_counter()
        _spin(rounds)
        timings.append(time.perf_counter() - t0)
        time.sleep(PAUSE_S)
    summary = summary_ms(timings)
    return {
        "work_ms": round(work_ms, 3),
        "rounds": rounds,
        **summary,
        "stretch_p99": round(summary["p99"] / summary["p50"], 2),
    }


def samples_within(work_ms: float, seconds: float, most: int) -> int:
    """How many samples of `work_ms` (plus the pause) fit in `seconds`, between 10 and `most`."""
    return max(10, min(most, int(seconds / (work_ms / 1000 + PAUSE_S))))
