"""Console sessions: stateless signed cookies, login rate limits and the session hook of `web.deps`.

A session is a cookie `__Host-detente-<party>` holding, in base64url JSON, the operator id, a
random nonce, the time it was issued, the time it was last seen and a fingerprint of the
operator's password hash, followed by an HMAC-SHA256 of all that under the key in DATA/console.key
(32 random bytes, created on first use with mode 0600):

    <base64url payload>.<base64url HMAC-SHA256(key, "session|" + payload)>

The cookie is Secure, HttpOnly, SameSite=Strict and Path=/ (the `__Host-` prefix makes the browser
refuse it otherwise). A session ends when it has been idle for `IDLE`, when it is older than
`ABSOLUTE`, when its nonce was logged out on this node, or when the operator's password changes or
the operator is disabled. Logged-out nonces are kept in memory until they would have expired anyway;
a restart forgets them, which is why the absolute lifetime is short (one shift).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

IDLE = 8 * 3600  # seconds without a request before a session ends
ABSOLUTE = 12 * 3600  # seconds after login at which a session ends regardless
REFRESH_AFTER = 60  # re-issue the cookie (sliding idle expiry) at most this often
KEY_FILE = "console.key"


def load_key(data: Path) -> bytes:
    """Return the console's HMAC key from DATA/console.key, creating it (mode 0600) on first use."""
    path = data / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(f"{path} is damaged: expected 32 random bytes") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A decoded, authentic session cookie."""

    operator: str
    nonce: str
    issued: int
    seen: int
    password: str  # fingerprint of the password hash at login

    def to_json(self) -> dict[str, Any]:
        return {"o": self.operator, "n": self.nonce, "i": self.issued, "s": self.seen, "p": self.password}


class Signer:
    """Signs and checks cookies and tokens with the console key, each under its own label."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def mac(self, label: str, value: str) -> str:
        """Return the base64url HMAC-SHA256 of `value` under `label`."""
        return _b64(hmac.new(self._key, f"{label}|{value}".encode(), hashlib.sha256).digest())

    def check(self, label: str, value: str, mac: str) -> bool:
        """Return whether `mac` is the MAC of `value` under `label` (in constant time)."""
        return hmac.compare_digest(self.mac(label, value), mac)

    def password_fingerprint(self, password_hash: str | None) -> str:
        """Return a short keyed fingerprint of a password hash (a new password ends old sessions)."""
        return self.mac("password", password_hash or "")[:16]


class Sessions:
    """Issues, reads and revokes session cookies for one node."""

    def __init__(self, signer: Signer, party: str) -> None:
        self.signer = signer
        self.cookie = f"__Host-detente-{party}"
        self._revoked: dict[str, int] = {}  # nonce -> when it would expire anyway

    def issue(self, operator_id: str, password_hash: str | None, now: int | None = None) -> Session:
        """Return a new session for an operator who just proved their password."""
        moment = int(time.time()) if now is None else now
        fingerprint = self.signer.password_fingerprint(password_hash)
        return Session(operator_id, secrets.token_urlsafe(16), moment, moment, fingerprint)

    def encode(self, session: Session) -> str:
        """Return the cookie value of `session`."""
        payload = _b64(json.dumps(session.to_json(), separators=(",", ":")).encode())
        return f"{payload}.{self.signer.mac('session', payload)}"

    def decode(self, value: str, now: int | None = None) -> Session | None:
        """Return the session in a cookie value if it is authentic, unexpired and not revoked."""
        payload, _, mac = value.partition(".")
        if not payload or not mac or len(value) > 1024 or not self.signer.check("session", payload, mac):
            return None
        try:
            doc = json.loads(_unb64(payload))
            session = Session(str(doc["o"]), str(doc["n"]), int(doc["i"]), int(doc["s"]), str(doc["p"]))
        except (ValueError, KeyError, TypeError):
            return None
        moment = int(time.time()) if now is None else now
        if moment - session.seen > IDLE or moment - session.issued > ABSOLUTE or session.seen > moment + 300:
            return None
        if session.nonce in self._revoked:
            return None
        return session

    def touch(self, session: Session, now: int | None = None) -> Session | None:
        """Return the session with `seen` moved to now if it is due for a refresh, else None."""
        moment = int(time.time()) if now is None else now
        return replace(session, seen=moment) if moment - session.seen >= REFRESH_AFTER else None

    def revoke(self, session: Session) -> None:
        """End a session on this node (logout), and forget revocations that expired on their own."""
        moment = int(time.time())
        self._revoked = {n: t for n, t in self._revoked.items() if t > moment}
        self._revoked[session.nonce] = session.issued + ABSOLUTE

    def read(self, conn: HTTPConnection) -> Session | None:
        """Return the session carried by a request or WebSocket, if any."""
        value = conn.cookies.get(self.cookie)
        return self.decode(value) if value else None


class RateLimiter:
    """Counts failed logins per key (an operator name, a client address) in a sliding window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, key: str, now: float | None = None) -> float:
        """Return how many seconds `key` must still wait (0 if it may try now)."""
        moment = time.monotonic() if now is None else now
        times = self._recent(key, moment)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - moment)

    def fail(self, key: str, now: float | None = None) -> None:
        """Record one failed attempt for `key`."""
        moment = time.monotonic() if now is None else now
        self._recent(key, moment).append(moment)
        if len(self._failures) > 10_000:  # bound memory under a spray of names: drop the idle keys
            self._failures = {k: v for k, v in self._failures.items() if v}

    def reset(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""
        self._failures.pop(key, None)


# Five wrong passwords per operator name, or twenty per client address, in fifteen minutes.
def name_limiter() -> RateLimiter:
    """Return the per-name limiter."""
    return RateLimiter(5, 15 * 60)


def address_limiter() -> RateLimiter:
    """Return the per-client-address limiter."""
    return RateLimiter(20, 15 * 60)
