"""A PostgreSQL server of a test's own, which it may stop, start and restart.

The server of the test run (`conftest.pg_server`) is shared by every PostgreSQL test; stopping it
would fail them. This one lives in its own temporary directory, on its own port, and answers with
trust authentication: a password in a URL is sent to no one and must never be shown either.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    exe = os.environ.get("PG_CTL") or (found[-1] if found else shutil.which("pg_ctl"))
    return os.path.dirname(os.path.realpath(exe)) if exe else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnServer:
    """One throwaway PostgreSQL cluster (run as `postgres` when we are root)."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.tmp = tempfile.mkdtemp(prefix="detente-own-pg-")
        self.data = os.path.join(self.tmp, "data")
        self.port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres", "postgres")
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self._databases = iter(range(10_000))

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, os.path.join(self.bindir, args[0]), *args[1:]],
            cwd=self.tmp, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def _ctl(self, action: str, *options: str) -> float:
        """Run `pg_ctl ACTION` and wait for it; return the seconds it took."""
        started = time.monotonic()
        self._run(
            "pg_ctl", "-D", self.data, "-l", f"{self.tmp}/postgres.log", "-w", "-t", "60", *options, "-o",
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} -c fsync=off -c max_connections=100",
            action,
        )  # fmt: skip
        return time.monotonic() - started

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")  # fmt: skip
        self.start()

    def start(self) -> float:
        """Start the server; return the seconds it took."""
        return self._ctl("start")

    def stop(self) -> float:
        """Stop the server (fast: sessions are ended); return the seconds it took."""
        return self._ctl("stop", "-m", "fast")

    def restart(self, mode: str = "fast") -> float:
        """Restart the server (`fast` or `immediate`, which needs crash recovery); return the seconds it took."""
        return self._ctl("restart", "-m", mode)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def remove(self) -> None:
        if os.path.exists(f"{self.data}/postmaster.pid"):
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def database(self, prefix: str, password: str = "") -> str:
        """Create a new, empty database; return its SQLAlchemy URL (with `password` in it, if given)."""
        name = f"{prefix}_{next(self._databases)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://postgres{secret}@127.0.0.1:{self.port}/{name}"


@contextmanager
def own_server() -> Iterator[OwnServer]:
    """A running server of the caller's own; removed afterwards. Skips without PostgreSQL's binaries."""
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing: apt-get install postgresql")
        pytest.skip("pg_ctl not found: apt-get install postgresql")
    server = OwnServer(bindir)
    try:
        server.init()
        yield server
    finally:
        server.remove()
