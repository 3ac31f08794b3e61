"""Fixtures: a real PostgreSQL server for the run, and pairs of real nodes."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from detente.node import auth
from detente.store.db import make_engine, migrate, sqlite_url
from support import Cluster, running_cluster


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes() -> Iterator[PasswordHasher]:
    """Hash the passwords tests set in this process with argon2id at its least cost; yield the product's hasher.

    Every pair of nodes the tests set up gives 14 operators a password: at the product's cost
    (0.16 s each here) that was 2.3 s of each of about 90 set-ups. A hash carries its parameters,
    so the nodes verify these at the same small cost. The product's parameters are checked with
    the hasher this yields (tests/unit/node/test_passwords.py), and a password a test sets through
    `detente user add` or `user passwd` in a subprocess is hashed at the product's cost.
    """
    product = auth._hasher
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield product


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    exe = os.environ.get("PG_CTL") or (found[-1] if found else shutil.which("pg_ctl"))
    return os.path.dirname(os.path.realpath(exe)) if exe else None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL cluster in a temporary directory (run as `postgres` when we are root)."""
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing: apt-get install postgresql")
        pytest.skip("pg_ctl not found: apt-get install postgresql")
    tmp = tempfile.mkdtemp(prefix="detente-pg-")
    data, port, prefix = os.path.join(tmp, "data"), _free_port(), []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, os.path.join(bindir, args[0]), *args[1:]],
            cwd=tmp, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    try:
        pg("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        pg(
            "pg_ctl", "-D", data, "-l", f"{tmp}/postgres.log", "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c max_connections=200",
            "start",
        )  # fmt: skip
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        if os.path.exists(f"{data}/postmaster.pid"):
            pg("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_database(pg_server: dict[str, Any]) -> Any:
    """A factory of fresh, empty PostgreSQL databases; returns a SQLAlchemy URL."""
    import psycopg

    counter = iter(range(10_000))

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{next(counter)}"
        with psycopg.connect(
            host=pg_server["host"], port=pg_server["port"], user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{pg_server['host']}:{pg_server['port']}/{name}"

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated node database: SQLite, and a real PostgreSQL database of the test run's server."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "node.db")
    else:
        url = request.getfixturevalue("pg_database")(request.module.__name__.rpartition(".")[2][:40])
    eng = make_engine(url)
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two real nodes (pk, ir) shared by the tests that do not stop them."""
    with running_cluster(tmp_path_factory.mktemp("pair")) as cluster:
        yield cluster


@pytest.fixture
def fresh_pair(tmp_path: Path) -> Iterator[Cluster]:
    """Two real nodes of this test's own, which it may kill and restart."""
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
