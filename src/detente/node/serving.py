"""What `detente serve` checks and holds before it says it serves: TLS files, sockets, DIR/serve.lock.

Each check fails with one line naming the file or address, before the node claims to serve:

    check_tls   tls.crt and tls.key exist, load as a pair, and are the certificate the agreement
                pins for this party (peers refuse any other)        NotFound, BadRequest, Invalid
                (`check_pinned_certificate`, which `ratify` checks too)
    address_warnings   whether peers can reach the node at the url the agreement gives for it
                (a warning only: a proxy or NAT may forward that address here)
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
import ipaddress
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
    check_pinned_certificate(config, agreement)
    cert, key = config.cert_path, config.tls_key_path
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


def check_pinned_certificate(config: NodeConfig, agreement: Agreement) -> None:
    """Check that the node's tls.crt is the certificate the agreement pins for this party.

    Checks nothing if the agreement pins none yet. Raises `NotFound` if tls.crt is missing,
    `BadRequest` if it cannot be read or is not a PEM certificate, and `Invalid` if its
    fingerprint is not the pinned one (naming both in full: a fingerprint copied wrong by one
    digit looks right when cut short).
    """
    cert = config.cert_path
    try:
        fingerprint = fingerprint_pem(cert.read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{cert} is missing: it holds the node's TLS certificate (made by `detente init`)") from None
    except ValueError:
        raise BadRequest(f"{cert} is not a PEM certificate: it holds the node's TLS certificate") from None
    except OSError as exc:
        raise BadRequest(f"cannot read {cert}: {exc.strerror or exc}") from exc
    pinned = agreement.parties[config.party].tls_fingerprint
    if pinned and fingerprint != pinned:
        at = next((i for i, (a, b) in enumerate(zip(fingerprint, pinned, strict=False)) if a != b), len(pinned))
        raise Invalid(
            f"{cert} is not the certificate the agreement pins for {config.party}: its fingerprint is {fingerprint}, "
            f"the agreement pins {pinned} (they differ from hex digit {at + 1} on): every peer would refuse this "
            f"node. Correct tls_fingerprint under [parties.{config.party}], or put back the certificate it pins"
        )


def address_warnings(config: NodeConfig, agreement: Agreement) -> list[str]:
    """Return why peers may not reach this node at the url the agreement gives for its party.

    Warns (never refuses: a proxy or NAT may forward a public address here) when the url's port is
    not the one the node listens on, when its host is a loopback address the node does not listen
    on, and when its host is 0.0.0.0 or ::, which no peer can connect to. Returns an empty list
    when nothing is amiss, or when the agreement names no url for the party yet. Raises nothing.
    """
    party = agreement.parties.get(config.party)
    if party is None or not party.url:
        return []
    url, where = party.url, _where(config.host, config.port)
    said = f"the agreement gives {party.id}'s address as {url}"
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port or 443
    except ValueError:
        return [f"{said}, which is not a usable URL: peers will not reach this node, which listens on {where}"]
    found: list[str] = []
    address = _ip(host)
    if not host or address is not None and address.is_unspecified:
        found.append(
            f"{said}, but {host or 'an empty host'} is no address a peer can connect to: give the address peers "
            f"reach this node at (it listens on {where})"
        )
    if port != config.port or (_is_loopback(host) and not _listens_on(config.host.lower(), host)):
        found.append(
            f"{said} but this node listens on {where}: peers will not reach it unless that address is forwarded here"
        )
    return found


def _where(host: str, port: int) -> str:
    """Return HOST:PORT as a URL writes it ([::1]:8443 for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a name


def _is_loopback(host: str) -> bool:
    address = _ip(host)
    return address.is_loopback if address is not None else host == "localhost" or host.endswith(".localhost")


def _listens_on(listen_host: str, url_host: str) -> bool:
    """Return whether a node listening on `listen_host` is reached at the loopback host `url_host`.

    Decided from the names alone, without resolving them (`localhost` stands for 127.0.0.1 and ::1).
    """
    listening, reached = _ip(listen_host), _ip(url_host)
    if listen_host in ("", url_host) or listening is not None and listening == reached:
        return True
    if listening is not None and listening.is_unspecified:
        # `listen` binds 0.0.0.0 and :: each to its own family (IPV6_V6ONLY).
        return reached is None or reached.version == listening.version
    usual = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    if listening is None and _is_loopback(listen_host):
        return reached is None or reached in usual
    return reached is None and listening in usual


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind a socket for each address `host` stands for (as asyncio's `create_server` would).

    Raises `Unavailable` naming HOST:PORT if an address is taken or cannot be bound.
    """
    where = _where(host, port)
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
