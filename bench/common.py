"""Shared helpers of the bench: statistics, timing loops, process memory, machine facts, result rows."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = ROOT / "agreements" / "pk-ir.toml"


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(ordered: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) of an already sorted list, by linear interpolation."""
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples: list[float]) -> dict[str, float]:
    """Summarise durations in seconds as milliseconds: n, p50, p95, p99, max, mean."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50) * 1000, 3),
        "p95": round(percentile(ordered, 95) * 1000, 3),
        "p99": round(percentile(ordered, 99) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(statistics.fmean(ordered) * 1000, 3),
    }


def per_op(
    fns: dict[str, Callable[[], object]], *, budget: float = 0.5, rounds: int = 9, max_ops: int = 200_000
) -> dict[str, float]:
    """Return the median seconds per call of each function, measured interleaved.

    Each round times one batch of every function in turn, so a floor and the Détente operation
    compared with it see the same load on a shared machine; the median of the rounds resists the
    rest of the noise. Batch sizes make all rounds together take about `budget` seconds per
    function. Every loop is bounded by `max_ops`.
    """
    batch: dict[str, int] = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        for _ in range(3):
            fn()
        once = max((time.perf_counter() - start) / 3, 1e-7)
        batch[name] = int(max(1, min(max_ops, budget / rounds / once)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(batch[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / batch[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def proc_memory(pid: int) -> dict[str, float]:
    """Return VmRSS and VmHWM (peak RSS) of a process in MB, from /proc/<pid>/status."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def proc_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system, all threads) a process has used so far (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of /proc/<pid>/stat (utime, stime); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    """Describe the machine: cores, memory, CPU model, Python, OS, load."""
    mem_mb = 0
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count() or 0,
        "cpu": model,
        "memory_mb": mem_mb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "load_at_start": [round(x, 2) for x in load],
    }


@dataclass
class Row:
    """One reported figure, with its target and its ratio to the floor of the hops it includes."""

    section: str
    metric: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    floor: float | None = None
    ratio: float | None = None
    floor_of: str = ""
    note: str = ""


@dataclass
class Results:
    """Everything one run measured: report rows plus the raw details of each section."""

    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(
        self,
        section: str,
        metric: str,
        value: float | None,
        unit: str,
        *,
        target: tuple[str, float] | None = None,
        floor: float | None = None,
        floor_of: str = "",
        note: str = "",
    ) -> Row:
        """Record one figure; `target` is (operator, bound) with operator one of <=, <, >=."""
        text, met = "", None
        if target is not None:
            op, bound = target
            text = f"{op} {bound:,g} {unit}".strip()
            if value is not None:
                met = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]
        ratio = None
        if floor and value:
            # For a rate, how many times slower than the floor's rate; otherwise how many times the floor.
            ratio = floor / value if unit.endswith("/s") else value / floor
            ratio = round(ratio, 2 if ratio < 10 else 1)
        row = Row(section, metric, value, unit, text, met, floor, ratio, floor_of, note)
        self.rows.append(row)
        return row

    def skip(self, section: str, metric: str, why: str) -> None:
        """Record a figure this run did not measure, and why."""
        self.rows.append(Row(section, metric, None, "", note=why))
        self.skipped.append(f"{section}: {metric}: {why}")

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [asdict(r) for r in self.rows],
            "details": self.details,
            "skipped": self.skipped,
            "errors": self.errors,
        }
