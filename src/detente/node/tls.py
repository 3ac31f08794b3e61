"""TLS between nodes: a self-signed certificate per node, pinned by its SHA-256 fingerprint.

The agreement pins each node's certificate fingerprint. A client first reads the peer's
certificate, refuses it unless its fingerprint is the pinned one, and then connects with a context
that trusts exactly that certificate, so no certificate authority is involved.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from detente.errors import Unavailable, VerificationError


def make_certificate(common_name: str, host: str, cert_path: Path, key_path: Path) -> str:
    """Write a new self-signed certificate and key; return the certificate's fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint_pem(cert_path.read_bytes())


def fingerprint_der(der: bytes) -> str:
    """Return the hex SHA-256 of a DER certificate."""
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem(pem: bytes) -> str:
    """Return the hex SHA-256 of a PEM certificate's DER bytes."""
    return fingerprint_der(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))


def trust_exactly(cert_pem: str) -> ssl.SSLContext:
    """Return a client context that trusts this one certificate and nothing else."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=cert_pem)
    # The certificate itself is pinned, so the name it was issued for adds nothing.
    context.check_hostname = False
    return context


def pinned_context(url: str, fingerprint: str, timeout: float = 5.0) -> ssl.SSLContext:
    """Fetch the certificate at `url`, check it against `fingerprint`, and return a context for it.

    Raises `Unavailable` if the peer cannot be reached and `VerificationError` if it presents
    another certificate than the pinned one.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        raise Unavailable(unreachable(url, exc)) from exc
    found = fingerprint_der(ssl.PEM_cert_to_DER_cert(pem))
    if found != fingerprint:
        raise VerificationError(f"{url} presents TLS certificate {found[:16]}…, not the pinned one")
    return trust_exactly(pem)


def unreachable(url: str, exc: BaseException) -> str:
    """Return "cannot reach URL: why", in plain words, for a link's last error and the node's log.

    The first connection to a peer fails in `pinned_context` and the later ones in aiohttp, which
    word the same refusal differently ("[Errno 111] Connection refused", "Cannot connect to host
    … [Connect call failed …]"); a technician reading `detente links` should see one sentence.
    """
    return f"cannot reach {url}: {_why(exc)}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there: is the node serving, at that address?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):  # before OSError, of which it is one
        return f"TLS failed ({getattr(exc, 'reason', None) or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return f"{type(exc).__name__}: {exc}"
