"""`detente serve` refuses what would stop it, in one line naming the file or address, before it
says "serving on" and without changing the node.

The nodes are prepared as the demo prepares them (real keys, certificates, databases, a ratified
agreement) and never started, except by the two tests that start one for real; the refusals run
through `detente.cli.main` in this process (`cli_support.detente`).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_support import Ran, assert_error, detente
from detente.node.config import load_config
from detente.node.demo import setup_demo
from detente.node.serving import ServeLock, running
from detente.node.tls import make_certificate
from support import NodeProc
from support import test_agreement as agreement_for_tests


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """demo.json of two nodes made as the demo makes them, not started."""
    work = tmp_path_factory.mktemp("serve")
    return setup_demo(work / "nodes", agreement_for_tests(work))


@pytest.fixture
def pk(nodes: dict[str, Any]) -> Iterator[Path]:
    """pk's data directory; each test must leave it as it found it, which is checked."""
    data = Path(nodes["nodes"]["pk"]["data"])
    before = _files(data)
    yield data
    assert _files(data) == before


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file() and p.name != "serve.lock"}


@contextlib.contextmanager
def changed(path: Path, content: bytes | None) -> Iterator[None]:
    """Give `path` this content (None: remove it) for the block, then put the original back."""
    original = path.read_bytes() if path.exists() else None
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    try:
        yield
    finally:
        if original is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(original)


def refused(data: Path, says: str) -> Ran:
    result = detente("serve", "--data", str(data))
    assert_error(result, says)
    assert "serving on" not in result.stdout
    assert running(data) is None
    return result


def test_missing_or_unusable_tls_files_are_named(pk: Path, tmp_path: Path) -> None:
    cert, key = pk / "tls.crt", pk / "tls.key"
    with changed(cert, None):
        refused(pk, f"NotFound: {cert} is missing: it holds the node's TLS certificate")
    with changed(key, None):
        refused(pk, f"NotFound: {key} is missing: it holds the node's TLS key")
    with changed(cert, b"not a certificate\n"):
        refused(pk, f"BadRequest: {cert} is not a PEM certificate")
    with changed(key, b"not a key\n"):
        refused(pk, f"BadRequest: {key} is not a PEM private key: it holds the key of {cert}")
    with changed(key, (pk.parent / "ir" / "tls.key").read_bytes()):
        refused(pk, f"BadRequest: {key} is the key of another certificate")
    make_certificate("pk.detente", "127.0.0.1", tmp_path / "new.crt", tmp_path / "new.key")
    with changed(cert, (tmp_path / "new.crt").read_bytes()), changed(key, (tmp_path / "new.key").read_bytes()):
        refused(pk, f"Invalid: {cert} is not the certificate the agreement pins for pk")


def test_an_address_in_use_is_refused_before_serving(pk: Path) -> None:
    config = load_config(pk)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((config.host, config.port))
        taken.listen()
        refused(pk, f"Unavailable: cannot listen on 127.0.0.1:{config.port}: the address is in use")


def test_a_second_serve_of_the_same_directory_is_refused(pk: Path) -> None:
    lock = ServeLock(pk, load_config(pk).agreement())
    try:
        serving = running(pk)
        assert serving is not None and serving.agreement == load_config(pk).agreement().hash
        result = detente("serve", "--data", str(pk))
        assert_error(result, f"Conflict: a node already serves from {pk} (pid ")
    finally:
        lock.release()
    assert running(pk) is None


def test_missing_or_damaged_node_files_are_named(pk: Path) -> None:
    toml = pk / "node.toml"
    text = toml.read_bytes()
    with changed(pk / "agreement.toml", None):
        refused(pk, f"NotFound: {pk}/agreement.toml is missing: it holds the agreement")
    with changed(pk / "agreement.toml", (pk / "agreement.toml").read_bytes() + b"\n# \xff\n"):
        refused(pk, f"MalformedError: {pk}/agreement.toml is not UTF-8 text")
    with changed(pk / "node.key", None):
        refused(pk, f"NotFound: {pk}/node.key is missing: it holds the node key")
    with changed(toml, b"\n".join(line for line in text.split(b"\n") if not line.startswith(b"party"))):
        refused(pk, f"BadRequest: {toml} is damaged: it has no 'party' setting")
    with changed(toml, text.replace(b"port = ", b"port = 'x' #")):
        refused(pk, f"BadRequest: {toml} is damaged: 'port' must be a number")


def test_a_damaged_database_is_named_and_left_alone(pk: Path) -> None:
    database = pk / "node.db"
    for sidecar in ("node.db-wal", "node.db-shm"):  # what SQLite may have left from the setup
        assert not (pk / sidecar).exists()
    with changed(database, b"this is not a database, but it is 32 bytes and more" * 100):
        refused(pk, f"Unavailable: cannot open the database sqlite:///{database}: file is not a database")
        assert database.read_bytes().startswith(b"this is not a database")
    with changed(database, None):
        refused(pk, f"NotFound: the database {database} named in {pk}/node.toml is missing")
        assert not database.exists()


def test_a_node_that_serves_says_so_and_lets_go_of_its_address_and_lock(nodes: dict[str, Any], tmp_path: Path) -> None:
    node = NodeProc(nodes["nodes"]["ir"], tmp_path / "ir.log")
    config = load_config(node.data)
    node.start()
    try:
        serving = running(node.data)
        assert node.proc is not None and serving is not None
        assert serving.pid == node.proc.pid and serving.agreement == config.agreement().hash
    finally:
        node.stop()
    log = (tmp_path / "ir.log").read_text()
    assert node.proc.returncode == 0, log
    assert log.startswith(f"node ir serving on {config.url}\n") and "Traceback" not in log
    assert log.endswith("node ir stopped\n")  # Ctrl-C (SIGINT) is a clean stop, and says so
    assert running(node.data) is None
    with socket.socket() as again:  # the address is free again
        again.bind((config.host, config.port))


def test_a_node_stops_at_once_though_clients_keep_idle_connections_open(nodes: dict[str, Any], tmp_path: Path) -> None:
    """A console tab or an operator's client between two requests reads nothing: over TLS it never
    answers the close the node sends it, and the node used to wait out its whole grace for them."""
    node = NodeProc(nodes["nodes"]["ir"], tmp_path / "ir.log")
    node.start()
    idle = [node.client("ir-dgmo"), node.client("ir-supervisor")]
    try:
        for client in idle:
            assert client.get("/api/v1/links").status_code == 200  # the connection stays open, idle
        node.stop()
    finally:
        for client in idle:
            client.close()
    log = (tmp_path / "ir.log").read_text()
    assert node.proc is not None and node.proc.returncode == 0, log
    # uvicorn writes this line only when the grace (5 s) ran out with connections still open.
    assert "timeout graceful shutdown exceeded" not in log, log
