"""`make bench-quick` runs to the end and writes its JSON (nothing here is about speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_quick_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results", str(results), "--no-docs"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((results / "latest-quick.json").read_text(encoding="utf-8"))
    assert document["quick"] is True and document["errors"] == []
    metrics = {row["metric"] for row in document["rows"]}
    assert "delivered (POST on pk → WS on ir) p99" in metrics
    assert "lost (accepted but not on both nodes)" in metrics
    # The machine's own tail, beside the floors and beside the latency run.
    assert "1 ms of fixed CPU work, alone in one process: p99" in metrics
    assert "delivered p99 against the machine's p99 for the same work" in metrics
    # Both throughput runs: one message per request, and the batched sends, with nothing lost.
    sections = {row["section"] for row in document["rows"]}
    assert any(s.startswith("throughput (SQLite") and "per request" not in s for s in sections)
    assert any("10 messages per request" in s for s in sections)
    batched = document["details"]["throughput_sqlite_batched"]
    assert batched["per_request"] == 10 and batched["loss"]["lost"] == 0 and batched["errors"] == 0
    flashes = batched["flash_among_load"]["n"]
    assert batched["accepted"] > flashes and (batched["accepted"] - flashes) % 10 == 0
    # A FLASH on a channel of its own while the others carry the batched load.
    assert batched["channels"] == ["dgmo", "fs"] and batched["flash_among_load"]["n"] > 0
    assert "FLASH among the load: delivered (POST → WS on ir) p99" in metrics
    # ir's liaison officer acknowledged every FLASH, and pk's officer saw each answer.
    assert batched["flash_among_load"]["ack_seen"]["n"] == flashes
    assert "FLASH among the load: its ack seen (ack POST on ir → WS on pk) p99" in metrics
    # Proofs of delivery deferred during the load are all there once it is over.
    assert batched["proofs"]["verified"] == batched["proofs"]["of"] == batched["accepted"]
    assert "proofs of delivery: all verified, after the drain" in metrics
