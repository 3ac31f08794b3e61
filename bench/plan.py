"""How much a run measures: the full bench (`make bench`) and the quick one (`make bench-quick`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of every section."""

    floor_samples: int
    floor_seconds: float
    crypto_budget: float
    latency_n: int
    latency_warmup: int
    senders: int
    seconds: float
    drain_timeout: float
    appends: int
    proof_sizes: tuple[int, ...]
    proof_samples: int
    biglog_entries: int  # 0: skip the big-log section
    biglog_latency_n: int
    postgres: bool
    settle: float  # seconds a freshly started node gets before its idle memory is read
    audit_timeout: float


FULL = Plan(
    floor_samples=500,
    floor_seconds=4.0,
    crypto_budget=0.4,
    latency_n=1000,
    latency_warmup=20,
    senders=16,
    seconds=20.0,
    drain_timeout=180.0,
    appends=20_000,
    proof_sizes=(10**4, 10**5, 10**6),
    proof_samples=300,
    biglog_entries=10**6,
    biglog_latency_n=200,
    postgres=True,
    settle=3.0,
    audit_timeout=150.0,
)
QUICK = Plan(
    floor_samples=60,
    floor_seconds=1.0,
    crypto_budget=0.1,
    latency_n=30,
    latency_warmup=5,
    senders=16,
    seconds=3.0,
    drain_timeout=30.0,
    appends=2_000,
    proof_sizes=(10**4, 10**5),
    proof_samples=100,
    biglog_entries=0,
    biglog_latency_n=0,
    postgres=False,
    settle=1.0,
    audit_timeout=60.0,
)
