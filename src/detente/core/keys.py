"""Ed25519 node keys and their C2SP verifier-key strings.

A verifier key ("vkey", c2sp.org/signed-note) is written

    <name>+<key id as 8 lowercase hex digits>+<base64(signature type byte || public key)>

where the key id is the first four bytes of SHA-256(name || 0x0A || type || public key). Type 0x01
is an Ed25519 note signature and 0x04 an Ed25519 `cosignature/v1` (c2sp.org/tlog-cosignature).
Names are non-empty and contain no Unicode space and no "+". The base64 part may itself contain
"+", so a vkey is split on its first two "+" only.

A node uses one Ed25519 key for its note signatures, cosignatures, envelopes, receipts and
federation requests. Each of those messages starts differently (a note's origin line, the
"cosignature/v1" label, a JSON object "{", the "detente-request/v1" label), so a signature made
for one can never be taken for another.

Signatures are made and checked by libsodium (PyNaCl), twice as fast here as OpenSSL 3.0; the key
file stays PKCS#8 PEM through `cryptography`. libsodium's check is the stricter of the two (it also
refuses small-order keys and R points), which costs honest signers nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import NewType

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from detente.errors import MalformedError

KeyID = NewType("KeyID", bytes)

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04


def valid_key_name(name: str) -> bool:
    """Return whether `name` is a valid note key name: non-empty, no Unicode space, no "+"."""
    if not name or "+" in name:
        return False
    return not any(ch.isspace() or unicodedata.category(ch) == "Zs" for ch in name) and all(
        unicodedata.category(ch)[0] != "C" for ch in name
    )


def key_id(name: str, alg: int, public: bytes) -> KeyID:
    """Return the 4-byte key id: SHA-256(name || "\\n" || alg || public key)[:4]."""
    return KeyID(hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4])


@dataclass(frozen=True)
class Verifier:
    """A public key with its note name and signature type."""

    name: str
    alg: int
    public: bytes

    @property
    def key_id(self) -> KeyID:
        return key_id(self.name, self.alg, self.public)

    def vkey(self) -> str:
        """Return the C2SP verifier-key string."""
        blob = base64.b64encode(bytes([self.alg]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def with_alg(self, alg: int) -> Verifier:
        """Return the same key under another signature type (e.g. the cosignature form)."""
        return Verifier(self.name, alg, self.public)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Return whether `signature` is this key's Ed25519 signature over `message`."""
        try:
            # VerifyKey refuses a key that is not 32 bytes and a signature that is not 64 before
            # libsodium joins signature and message, so the join cannot shift bytes between them.
            _public_key(self.public).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True


@functools.lru_cache(maxsize=1024)
def _public_key(raw: bytes) -> nacl.signing.VerifyKey:
    # A node checks the same few keys forever; building the key object each time is waste.
    return nacl.signing.VerifyKey(raw)


@functools.lru_cache(maxsize=1024)
def parse_vkey(vkey: str) -> Verifier:
    """Parse a C2SP vkey string (Ed25519 note or cosignature key).

    Raises `MalformedError` for anything but a canonical vkey whose id matches its key.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedError("malformed verifier key")
    name, hex_id, blob = parts
    if not valid_key_name(name) or len(hex_id) != 8 or hex_id != hex_id.lower():
        raise MalformedError("malformed verifier key")
    try:
        wanted = bytes.fromhex(hex_id)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise MalformedError("malformed verifier key") from exc
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise MalformedError("malformed verifier key")
    # Re-encode and compare so that non-canonical base64 (stray padding bits) is refused.
    if base64.b64encode(raw).decode() != blob:
        raise MalformedError("malformed verifier key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id != wanted:
        raise MalformedError("malformed verifier key")
    return verifier


class Signer:
    """An Ed25519 private key with its note name."""

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        if not valid_key_name(name):
            raise MalformedError(f"invalid key name {name!r}")
        self.name = name
        self._private = private
        # libsodium signs with the same RFC 8032 key in 47 µs where OpenSSL 3.0 takes 68 µs (and
        # verifies in 110 µs where OpenSSL takes 216 µs; docs/performance.md). `cryptography` keeps
        # the key's file format (PKCS#8 PEM).
        seed = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        self._sodium = nacl.signing.SigningKey(seed)
        self.public = bytes(self._sodium.verify_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """Create a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """Create the key with this 32-byte seed (deterministic; for tests and vectors)."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> Signer:
        """Load a PKCS#8 PEM private key. Raises `MalformedError` if it is not Ed25519."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise MalformedError("could not load the node key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise MalformedError("the node key is not an Ed25519 key")
        return cls(name, key)

    def to_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM (the file is kept mode 0600)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, ALG_ED25519, self.public)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `message`."""
        return self._sodium.sign(message).signature
