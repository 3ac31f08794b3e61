"""The sections of a run, in order, each behind its own progress bar; a failing section is recorded.

Every process a section starts (nodes, PostgreSQL, the floor server, py-spy, the CLI) is ended by
its pid (or by `pg_ctl stop` for the PostgreSQL server it started) before the section returns.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.progress import Progress, TaskID

from bench import biglog, figures, floors, jitter, latency, log, throughput
from bench.common import Results
from bench.nodes import Cluster
from bench.postgres import Postgres, commit_floor
from bench.profile import Profiler

T = TypeVar("T")


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
    jitter_seconds: float  # the machine's tail at the FLASH median, after each latency run
    per_request: int  # messages per request in the batched throughput run (1: no such run)
    flash_every: float  # in the batched run, a FLASH on a channel of its own every so many seconds


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
    audit_timeout=180.0,  # the whole 10^6 audit: about 90 s here, 3 minutes at most
    jitter_seconds=6.0,
    per_request=10,
    flash_every=0.25,
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
    jitter_seconds=0.5,
    per_request=10,
    flash_every=0.25,
)


class Tick:
    """What a section may tell its progress bar."""

    def __init__(self, progress: Progress, task: TaskID, name: str) -> None:
        self.progress, self.task, self.name = progress, task, name

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.task, n)

    def set(self, completed: float) -> None:
        self.progress.update(self.task, completed=completed)

    def step(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.name}: {text}")
        self.progress.advance(self.task, 1)


class Runner:
    """Runs the sections of one plan, filling `results`."""

    def __init__(self, progress: Progress, results: Results, workdir: Path, plan: Plan, profile: Path | None) -> None:
        self.progress = progress
        self.results = results
        self.workdir = workdir
        self.plan = plan
        self.profile = profile

    def section(self, name: str, total: float | None, work: Callable[[Tick], T]) -> T | None:
        """Run `work` under a progress bar; on an exception record it and return None."""
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()
        try:
            return work(Tick(self.progress, task, name))
        except Exception as exc:  # recorded, shown, and the run goes on with the other sections
            self.results.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.progress.console.print(f"[red]{name} failed[/]\n{traceback.format_exc(limit=6)}")
            return None
        finally:
            self.progress.update(task, description=name, completed=total if total is not None else 1, total=total or 1)
            self.results.details.setdefault("section_seconds", {})[name] = round(time.perf_counter() - started, 1)

    def floors(self) -> dict[str, Any] | None:
        """Measure the floors; every later figure is put beside them."""
        plan = self.plan
        measured = self.section(
            "floors",
            4,
            lambda t: floors.measure(plan.floor_samples, plan.senders, plan.floor_seconds, plan.crypto_budget, t.step),
        )
        if measured is not None:
            self.results.details["floors"] = measured
            figures.floor_rows(self.results, measured)
        return measured

    # --- SQLite: latency, throughput, memory, the big log ---

    def sqlite_cluster(self, f: dict[str, Any]) -> None:
        cluster = self.section("prepare two SQLite nodes", 1, lambda _: Cluster(self.workdir / "sqlite"))
        if cluster is None:
            return
        try:
            if self.section("start the SQLite nodes", 1, lambda _: cluster.start()) is None:
                return
            time.sleep(self.plan.settle)
            idle = {p: cluster[p].memory() for p in ("pk", "ir")}
            self.results.details["memory"] = {"idle": idle}
            figures.memory_rows(self.results, {"idle": idle}, f)
            self.latency(cluster, f, "SQLite", "sqlite")
            self.throughput(cluster, f, "SQLite", "sqlite", profile=self.profile)
            if self.plan.per_request > 1:
                self.throughput(
                    cluster,
                    f,
                    "SQLite",
                    "sqlite_batched",
                    per_request=self.plan.per_request,
                    flash=self.plan.flash_every,
                )
            if self.plan.biglog_entries:
                self.big_log(cluster, f)
        finally:
            cluster.stop()

    def latency(self, cluster: Cluster, f: dict[str, Any], label: str, key: str, commit: float | None = None) -> None:
        n, warmup = self.plan.latency_n, self.plan.latency_warmup
        res = self.section(f"FLASH latency ({label})", n + warmup, lambda t: latency.run(cluster, n, warmup, t.advance))
        if res is None:
            return
        # The machine's p99 for as much work as the median message: measured now, beside the run.
        work = res["deliver"].get("p50")
        if work:
            samples = jitter.samples_within(work, self.plan.jitter_seconds, n)
            res["jitter"] = self.section(
                f"the machine's tail for {work:.1f} ms of work", 1, lambda _: jitter.measure(work, samples)
            )
        self.results.details[f"latency_{key}"] = res
        figures.latency_rows(self.results, res, f, label, commit)

    def throughput(
        self,
        cluster: Cluster,
        f: dict[str, Any],
        label: str,
        key: str,
        profile: Path | None = None,
        per_request: int = 1,
        flash: float = 0.0,
    ) -> None:
        plan = self.plan

        def work(t: Tick) -> dict[str, Any]:
            profiler = None
            if profile is not None:
                pids = {p: cluster[p].pid for p in ("pk", "ir")}
                profiler = Profiler(profile, pids, plan.seconds)
            try:
                load = throughput.Load(plan.senders, plan.seconds, plan.drain_timeout, per_request, flash)
                return throughput.run(cluster, load, t.set)
            finally:
                if profiler is not None:
                    written = profiler.finish()
                    self.results.details.setdefault("profiles", {}).update({k: str(v) for k, v in written.items()})

        shape = f", {per_request} per request" if per_request > 1 else ""
        res = self.section(f"throughput ({label}, {plan.senders} senders{shape})", plan.seconds, work)
        if res is not None:
            self.results.details[f"throughput_{key}"] = res
            figures.throughput_rows(self.results, res, f, label)

    def big_log(self, cluster: Cluster, f: dict[str, Any]) -> None:
        entries = self.plan.biglog_entries
        pk, ir = cluster["pk"], cluster["ir"]
        out: dict[str, Any] = {}
        can_audit = biglog.audit_available()
        agreement = Path(cluster.info["agreement"])
        if can_audit:  # first the log as the runs above left it: a rate to compare the big audit with
            out["audit_small"] = self.section(
                "detente log export + audit (before the fill)",
                None,
                lambda _: biglog.export_and_audit(pk.data, agreement, self.workdir / "export-small", 120),
            )

        def grow(t: Tick) -> dict[str, Any]:
            pk.stop()
            pk.dispose()
            filled = biglog.fill(pk.data, entries, t.advance)
            pk.start()
            pk.wait_up(timeout=180)
            return filled

        filled = self.section(f"grow pk's log to {entries:,} entries", entries, grow)
        if filled is None:
            return
        time.sleep(self.plan.settle)
        out.update(fill=filled, idle=pk.memory())
        n = self.plan.biglog_latency_n
        out["latency"] = self.section(
            "FLASH latency with the big log", n + 5, lambda t: latency.run(cluster, n, 5, t.advance)
        )
        out["peak"] = {"pk": pk.memory(), "ir": ir.memory()}
        if can_audit:
            out["audit"] = self.section(
                f"detente log export + audit ({entries:,} entries)",
                None,
                lambda _: biglog.export_and_audit(pk.data, agreement, self.workdir / "export", self.plan.audit_timeout),
            )
        else:
            self.results.skip("log", "detente audit of 10^6 entries", "not available yet (no `detente audit` CLI)")
        self.results.details["biglog"] = out
        figures.biglog_rows(self.results, out, f)

    # --- the log on its own ---

    def log_section(self, f: dict[str, Any]) -> None:
        plan = self.plan
        out: dict[str, Any] = {}
        out["appends"] = self.section(
            f"log: {plan.appends:,} appends, 64 per job", 1, lambda _: log.appends(self.workdir, plan.appends, 64)
        )
        out["appends_single"] = self.section(
            f"log: {plan.appends:,} appends, 1 per job", 1, lambda _: log.appends(self.workdir, plan.appends, 1)
        )
        out["checkpoints"] = self.section(
            "log: checkpoint signing", 1, lambda _: log.checkpoint_signing(plan.crypto_budget)
        )
        out["proofs"] = self.section(
            "log: proofs",
            len(plan.proof_sizes),
            lambda t: log.proofs(self.workdir, list(plan.proof_sizes), plan.proof_samples, t.step),
        )
        self.results.details["log"] = out
        figures.log_rows(self.results, out, f)

    # --- PostgreSQL ---

    def postgres_cluster(self, f: dict[str, Any]) -> None:
        server = self.section("start a throwaway PostgreSQL", 1, lambda _: Postgres().start())
        if server is None:
            return
        cluster: Cluster | None = None
        try:
            urls = {"pk": server.database("bench_pk"), "ir": server.database("bench_ir")}
            floor = self.section("PostgreSQL commit floor", 1, lambda _: commit_floor(server.database("floor"), 200))
            self.results.details["postgresql"] = {"version": server.version(), "commit_floor": floor}
            commit = None
            if floor is not None:
                commit = floor["p50"]
                self.results.add("floors (same run)", "PostgreSQL INSERT + COMMIT p50 (loopback)", commit, "ms")
            cluster = self.section(
                "prepare two PostgreSQL nodes", 1, lambda _: Cluster(self.workdir / "pg", db_urls=urls)
            )
            if cluster is None or self.section("start the PostgreSQL nodes", 1, lambda _: cluster.start()) is None:
                return
            self.latency(cluster, f, "PostgreSQL", "postgresql", commit)
            self.throughput(cluster, f, "PostgreSQL", "postgresql")
        finally:
            if cluster is not None:
                cluster.stop()
            server.stop()
