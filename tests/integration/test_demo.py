"""`detente demo` (what `make demo` runs): both nodes start, the feed runs, both stop cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_starts_both_nodes_prints_logins_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "DETENTE_DEMO_SECONDS": "4", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "detente", "demo", "--workdir", str(tmp_path / "demo"), "--no-drill"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads((tmp_path / "demo" / "demo.json").read_text())
    for party in ("pk", "ir"):
        node = info["nodes"][party]
        assert node["url"] in result.stdout
        for operator in node["operators"]:
            assert operator["token"] in result.stdout and operator["password"] in result.stdout
    assert "Live feed" in result.stdout
    assert "link to" in result.stdout  # link tests run and their state reaches the feed
    assert "both nodes stopped" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_setup_only_writes_what_scripts_need(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "detente", "demo", "--workdir", str(tmp_path / "d"), "--setup-only"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "d" / "demo.json").read_text())
    for party, node in info["nodes"].items():
        assert Path(node["data"], "node.toml").exists() and Path(node["cert"]).exists()
        assert node["api"] == node["url"] + "/api/v1"
        offices = {o for op in node["operators"] for o in op["offices"]}
        assert offices == {f"{party}:fs", f"{party}:dgmo", f"{party}:lo-{'zahedan' if party == 'pk' else 'turbat'}"}
