"""A throwaway PostgreSQL server for the bench, started like the tests' (tests/conftest.py).

The cluster lives in a temporary directory, listens on 127.0.0.1 only, and runs as `postgres`
when the bench runs as root (initdb and pg_ctl refuse root). It keeps PostgreSQL's durable
defaults (fsync on, synchronous_commit on), so its commits are as durable as SQLite's FULL.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import free_port


def bindir() -> str | None:
    """Return the newest PostgreSQL server binary directory, or None if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    exe = os.environ.get("PG_CTL") or (found[-1] if found else shutil.which("pg_ctl"))
    return os.path.dirname(os.path.realpath(exe)) if exe else None


class Postgres:
    """Start with `start()`, create databases with `database(name)`, end with `stop()`."""

    def __init__(self) -> None:
        found = bindir()
        if found is None:
            raise RuntimeError("PostgreSQL server binaries are missing (apt-get install postgresql)")
        self.bindir = found
        self.tmp = tempfile.mkdtemp(prefix="detente-bench-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, os.path.join(self.bindir, args[0]), *args[1:]],
            cwd=self.tmp,
            check=check,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )

    def start(self) -> Postgres:
        try:
            self._pg(
                "initdb",
                "-D",
                self.data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} -c max_connections=200"
            self._pg(
                "pg_ctl", "-D", self.data, "-l", f"{self.tmp}/postgres.log", "-w", "-t", "60", "-o", options, "start"
            )
        except subprocess.CalledProcessError as exc:
            log = Path(self.tmp, "postgres.log")
            detail = log.read_text()[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stdout}\n{detail}") from exc
        return self

    def database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def version(self) -> str:
        out = subprocess.run([os.path.join(self.bindir, "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self) -> None:
        """Stop the server (pg_ctl signals the postmaster we started) and remove its directory."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def commit_floor(url: str, n: int) -> dict[str, float]:
    """One INSERT + COMMIT round trip on this server, `n` times; the latency summary (ms)."""
    import time

    import psycopg

    from bench.common import summary_ms

    samples = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute("CREATE TABLE floor (id serial PRIMARY KEY, data bytea NOT NULL)")
        conn.commit()
        payload = b"m" * 400
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO floor (data) VALUES (%s)", (payload,))
            conn.commit()
            samples.append(time.perf_counter() - t0)
    return summary_ms(samples)
