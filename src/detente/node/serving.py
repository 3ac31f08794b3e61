"""What `detente serve` checks and holds before it says it serves: TLS files, sockets, DIR/serve.lock.

Each check fails with one line naming the file or address, before the node claims to serve:

    check_tls   tls.crt and tls.key exist, load as a pair, and are the certificate the agreement
                pins for this party (peers refuse any other)        NotFound, BadRequest, Invalid
    listen      the listening sockets, bound here and handed to uvicorn, so that "serving on"
                is printed only once the address is ours            Unavailable
    ServeLock   an exclusive `flock` on DIR/serve.lock for as long as the process runs, holding
                its pid and the hash of the agreement it serves under  Conflict

The lock is how the other commands know that a node serves from DIR and under which agreement
(`running`): the kernel releases it when the process ends, however it ends, so a stale file is
never taken for a running node.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from detente.core.agreement import Agreement
from detente.core.precedence import format_time, now
from detente.errors import BadRequest, Conflict, Invalid, NotFound, Unavailable
from detente.node.config import NodeConfig
from detente.node.tls import fingerprint_pem

LOCK_NAME = "serve.lock"


def check_tls(config: NodeConfig, agreement: Agreement) -> None:
    """Check the node's TLS certificate and key before serving with them.

    Raises `NotFound` naming a missing file, `BadRequest` if either does not load or the key is
    not the certificate's, and `Invalid` if the certificate is not the one the agreement pins for this party.
    """
    for path, what in ((config.cert_path, "TLS certificate"), (config.tls_key_path, "TLS key")):
        if not path.is_file():
            raise NotFound(f"{path} is missing: it holds the node's {what} (made by `detente init`)")
    cert, key = config.cert_path, config.tls_key_path
    try:
        fingerprint = fingerprint_pem(cert.read_bytes())
    except ValueError:
        raise BadRequest(f"{cert} is not a PEM certificate: it holds the node's TLS certificate") from None
    except OSError as exc:
        raise BadRequest(f"cannot read {cert}: {exc.strerror or exc}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        # OpenSSL says KEY_VALUES_MISMATCH for a key of another certificate, and little more than
        # "PEM lib" for a file that holds no key.
        why = "the key of another certificate" if exc.reason == "KEY_VALUES_MISMATCH" else "not a PEM private key"
        raise BadRequest(f"{key} is {why}: it holds the key of {cert}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot read {key}: {exc.strerror or exc}") from exc
    pinned = agreement.parties[config.party].tls_fingerprint
    if pinned and fingerprint != pinned:
        raise Invalid(
            f"{config.cert_path} is not the certificate the agreement pins for {config.party} (its fingerprint "
            f"is {fingerprint[:16]}…, the agreement pins {pinned[:16]}…): every peer would refuse this node"
        )


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind a socket for each address `host` stands for (as asyncio's `create_server` would).

    Raises `Unavailable` naming HOST:PORT if an address is taken or cannot be bound.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Unavailable(f"cannot listen on {where}: {exc.strerror}") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        why = "the address is in use (another node, or another program)" if exc.errno == errno.EADDRINUSE else None
        raise Unavailable(f"cannot listen on {where}: {why or exc.strerror or exc}") from exc
    return sockets


@dataclass(frozen=True)
class Serving:
    """A `detente serve` process that holds DIR/serve.lock; its agreement is None until it is written."""

    pid: int | None
    agreement: str | None
    started: str | None


def running(data: Path) -> Serving | None:
    """Return the `detente serve` serving from `data` now, or None if none does."""
    try:
        fd = os.open(data / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_lock(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_lock(fd: int) -> Serving:
    try:
        raw = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        raw = {}  # written a moment after the lock was taken
    if not isinstance(raw, dict):
        raw = {}
    pid, agreement, started = raw.get("pid"), raw.get("agreement"), raw.get("started")
    return Serving(
        pid if isinstance(pid, int) else None,
        agreement if isinstance(agreement, str) else None,
        started if isinstance(started, str) else None,
    )


class ServeLock:
    """DIR/serve.lock, held by this process while it serves from DIR."""

    def __init__(self, data: Path, agreement: Agreement) -> None:
        """Take the lock and write this process's pid and the agreement it serves under into it.

        Raises `Conflict` if a node already serves from `data`, `BadRequest` if the file cannot be
        created.
        """
        path = data / LOCK_NAME
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BadRequest(f"cannot create {path}: {exc.strerror or exc}") from exc
        for attempt in range(2):
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_lock(self._fd)
                if holder.pid is None and attempt == 0:
                    time.sleep(0.2)  # `running` holds it for a moment to look, or a node is just starting
                    continue
                os.close(self._fd)
                pid = f" (pid {holder.pid})" if holder.pid else ""
                raise Conflict(f"a node already serves from {data}{pid}; stop it first") from None
        text = json.dumps({"pid": os.getpid(), "agreement": agreement.hash, "started": format_time(now())})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode("utf-8"), 0)

    def release(self) -> None:
        """Let go of the lock (the process ending does the same)."""
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = -1
