"""The log: appends through the writer, checkpoint signing, and proofs at 10^4, 10^5, 10^6 entries.

- Appends: `store.messages.append_log` (log row plus its Merkle `tree_hashes`) in jobs submitted
  all at once to a `store.writer.Writer` on a scratch SQLite database (WAL, synchronous=FULL):
  64 entries per job, as a node stores a delivery batch, and one per job, as it stores each
  message an operator sends; the writer's group commit joins the jobs into transactions.
- Checkpoints: `core.checkpoint.sign_checkpoint` alone, and, with `store.tlog`, the root read from
  `tree_hashes` plus the signature (what a node does per checkpoint).
- Proofs: inclusion and consistency, built and verified, over `core.merkle_memory.MemoryHashStore` and
  over the SQL `tree_hashes` table (`store.tlog.TableHashReader`) holding the same tree.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert

from bench.common import per_op, summary_ms
from detente.core import merkle, merkle_memory, merkle_verify
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from detente.store import messages, tables
from detente.store.db import make_engine, migrate, sqlite_url
from detente.store.writer import Writer

try:  # the SQL Merkle tree arrives with the checkpoint work; the bench runs without it too
    from detente.store import tlog
except ImportError:  # pragma: no cover - depends on the tree's state
    tlog = None  # type: ignore[assignment]

ENTRY = b'{"v":1,"body":{"text":"' + b"x" * 380 + b'"}}'  # about the size of a real envelope


def _leaf(i: int) -> bytes:
    return ENTRY + str(i).encode()


def appends(tmp: Path, n: int, per_job: int) -> dict[str, Any]:
    """Append `n` entries through the writer, `per_job` per writer job; return appends/s and a root check.

    A node stores a delivery batch from a peer in one job (`per_job` 64) and each message an
    operator sends in a job of its own (`per_job` 1); the writer's group commit joins jobs.
    """
    engine = make_engine(sqlite_url(tmp / f"appends-{per_job}.db"))
    migrate(engine)
    writer = Writer(engine)
    writer.start()
    try:

        def job(first: int, leaves: list[bytes]) -> Callable[[Connection], int]:
            def run(conn: Connection) -> int:
                for k, leaf in enumerate(leaves):
                    messages.append_log(conn, leaf, f"e-{first + k}")
                return len(leaves)

            return run

        for i in range(50):  # warm up: first connection, statement caches
            writer.run_sync(job(i, [_leaf(i)]))
        batches_before, size_before = writer.batches, 50
        leaves = [_leaf(size_before + i) for i in range(n)]
        start, cpu = time.perf_counter(), time.process_time()
        futures: list[Future[int]] = [
            writer.submit(job(size_before + i, leaves[i : i + per_job])) for i in range(0, n, per_job)
        ]
        for future in futures:
            future.result(timeout=300)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        batches = writer.batches - batches_before
        root_ok = None
        if tlog is not None:
            reference = merkle_memory.MemoryHashStore(_leaf(i) for i in range(size_before))
            for leaf in leaves:
                reference.append(leaf)
            with engine.connect() as conn:
                root_ok = tlog.tree_root(conn, size_before + n) == reference.root()
    finally:
        writer.stop()
        engine.dispose()
    return {
        "n": n,
        "per_job": per_job,
        "appends_per_s": round(n / elapsed, 1),
        "cpu_us_per_append": round(cpu / n * 1e6, 1),
        "commits": batches,
        "mean_per_commit": round(n / max(batches, 1), 1),
        "with_tree_hashes": tlog is not None,
        "sql_root_matches_memory": root_ok,
    }


def checkpoint_signing(budget: float) -> dict[str, Any]:
    """Checkpoints signed per second (Ed25519 note over origin, size and root), beside a raw sign."""
    signer = Signer.generate("pk.detente/log")
    root = hashlib.sha256(b"root").digest()
    text = Checkpoint(signer.name, 1_000_000, root).text().encode()
    seconds = per_op(
        {
            "checkpoint": lambda: sign_checkpoint(Checkpoint(signer.name, 1_000_000, root), signer).format(),
            "sign": lambda: signer.sign(text),
        },
        budget=budget,
    )
    return {
        "checkpoints_per_s": round(1 / seconds["checkpoint"], 1),
        "sign_us": round(seconds["checkpoint"] * 1e6, 1),
        "raw_signs_per_s": round(1 / seconds["sign"], 1),
    }


def _proofs(
    reader: merkle.HashReader, store: merkle_memory.MemoryHashStore, size: int, rng: random.Random, samples: int
) -> dict[str, Any]:
    root = store.root()
    inc_build, inc_verify, con_build, con_verify = [], [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        leaf = store.read_hashes([merkle.stored_hash_index(0, index)])[0]
        t0 = time.perf_counter()
        proof = merkle.prove_inclusion(index, size, reader)
        t1 = time.perf_counter()
        merkle_verify.verify_inclusion(index, size, leaf, proof, root)
        t2 = time.perf_counter()
        inc_build.append(t1 - t0)
        inc_verify.append(t2 - t1)
        old = rng.randrange(1, size)
        old_root = merkle.tree_hash(old, store)
        t0 = time.perf_counter()
        cproof = merkle.prove_consistency(old, size, reader)
        t1 = time.perf_counter()
        merkle_verify.verify_consistency(old, size, old_root, root, cproof)
        t2 = time.perf_counter()
        con_build.append(t1 - t0)
        con_verify.append(t2 - t1)
    return {
        "inclusion_build": summary_ms(inc_build),
        "inclusion_verify": summary_ms(inc_verify),
        "inclusion_total": summary_ms([a + b for a, b in zip(inc_build, inc_verify, strict=True)]),
        "consistency_build": summary_ms(con_build),
        "consistency_verify": summary_ms(con_verify),
        "consistency_total": summary_ms([a + b for a, b in zip(con_build, con_verify, strict=True)]),
    }


def proofs(tmp: Path, sizes: list[int], samples: int, step: Callable[[str], None]) -> dict[str, Any]:
    """Grow one tree through `sizes`; at each size time proofs in memory and from SQL."""
    rng = random.Random(6962)
    store = merkle_memory.MemoryHashStore()
    out: dict[str, Any] = {}
    engine = make_engine(sqlite_url(tmp / "tree.db")) if tlog is not None else None
    stored = 0
    try:
        if engine is not None:
            migrate(engine)
        for size in sizes:
            step(f"tree of {size:,} entries")
            start, grown = time.perf_counter(), size - store.size
            while store.size < size:
                store.append(_leaf(store.size))
            built = time.perf_counter() - start
            result: dict[str, Any] = {"memory": _proofs(store, store, size, rng, samples)}
            if engine is not None and tlog is not None:
                count = merkle.stored_hash_count(size)
                hashes = store.read_hashes(range(stored, count))
                with engine.begin() as conn:
                    for i in range(0, len(hashes), 50_000):
                        rows = [{"idx": stored + i + k, "hash": h} for k, h in enumerate(hashes[i : i + 50_000])]
                        conn.execute(insert(tables.tree_hashes), rows)
                stored = count
                with engine.connect() as conn:
                    result["sql"] = _proofs(tlog.TableHashReader(conn), store, size, rng, samples)
                    t0 = time.perf_counter()
                    for _ in range(50):
                        tlog.tree_root(conn, size)
                    result["sql_root_ms"] = round((time.perf_counter() - t0) / 50 * 1000, 3)
            result["tree_build_leaves_per_s"] = round(grown / max(built, 1e-9), 1)
            out[str(size)] = result
    finally:
        if engine is not None:
            engine.dispose()
    return out
