"""Two real nodes (pk, ir), prepared like the demo and run as `python -m detente serve` processes."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from bench.common import AGREEMENT, proc_memory
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.node.tls import trust_exactly
from detente.store.db import make_engine
from detente.store.tables import envelopes, log, outbox

# Link tests are part of a node's normal traffic; one every 30 s keeps them in the run without
# letting them dominate a short measurement.
LINK_TEST_SECONDS = 30.0
START_TIMEOUT = 60.0


class Node:
    """One node process, started and ended by its pid."""

    def __init__(self, info: dict[str, Any], log_path: Path) -> None:
        self.info = info
        self.party: str = info["party"]
        self.data = Path(info["data"])
        self.url: str = info["url"]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.context: ssl.SSLContext = trust_exactly(Path(info["cert"]).read_text())
        self._engine: Engine | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "node not started"
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return self.url.replace("https://", "wss://", 1) + "/api/v1/stream"

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "detente", "serve", "--data", str(self.data)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_up(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.party} exited: {self.log_path.read_text()[-2000:]}")
            try:
                url = self.url + "/api/v1/openapi.json"
                if httpx.get(url, verify=self.context, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node {self.party} did not start within {timeout:g} s (log: {self.log_path})")

    def stop(self) -> None:
        """Stop the process we started: SIGINT, then SIGKILL after 15 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def memory(self) -> dict[str, float]:
        return proc_memory(self.pid) if self.proc is not None else {}

    def token(self, name: str) -> str:
        return str(next(o["token"] for o in self.info["operators"] if o["name"] == name))

    def engine(self) -> Engine:
        """A SQLAlchemy engine on the node's own database (SQLite file or PostgreSQL)."""
        if self._engine is None:
            self._engine = make_engine(load_config(self.data).db)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def counts(self) -> dict[str, int]:
        """Rows in the log, envelopes and outbox tables, read straight from the database."""
        with self.engine().connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for name, table in (("log", log), ("envelopes", envelopes), ("outbox", outbox))
            }

    def outbox_depth(self) -> int:
        with self.engine().connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)).scalar() or 0)


class Cluster:
    """pk and ir, set up with `setup_demo` under the shipped agreement."""

    def __init__(self, workdir: Path, *, db_urls: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.backend = "postgresql" if db_urls else "sqlite"
        self.info = setup_demo(workdir / "nodes", AGREEMENT, db_urls=db_urls, link_test_seconds=LINK_TEST_SECONDS)
        self.nodes = {p: Node(n, workdir / f"{p}.log") for p, n in self.info["nodes"].items()}

    def __getitem__(self, party: str) -> Node:
        return self.nodes[party]

    def start(self) -> Cluster:
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_up()
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            try:
                node.stop()
            finally:
                node.dispose()
