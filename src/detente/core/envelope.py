"""Envelopes: one signed hotline message, canonicalised with RFC 8785 (JCS).

    { "v": 1, "id": "<uuid v7>", "agreement": "<hex>", "channel": "dgmo",
      "from": "pk:dgmo", "to": "ir:dgmo", "seq": 42, "author": "<operator id>",
      "precedence": "FLASH", "type": "incident.report", "lang": "en",
      "refs": ["<envelope id>", ...], "case": "<case id>" | null,
      "created": "2024-01-16T13:05:00.000Z", "body": {...}, "sig": "<base64 Ed25519>" }

The signature covers the JCS bytes of every member but `sig`. The log leaf for an envelope is the
JCS bytes of the whole object, `sig` included, so the sender's and the receiver's logs hold
byte-identical leaves. An envelope is at most `MAX_ENVELOPE_BYTES` long so that it fits a C2SP
tlog-tiles entry bundle (uint16 length prefix).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import rfc8785

from detente.core.keys import Signer, Verifier
from detente.core.precedence import Precedence, parse_precedence, parse_time
from detente.errors import Invalid, MalformedError, TooLarge, VerificationError

MAX_ENVELOPE_BYTES = 60_000
FIELDS = (
    "v", "id", "agreement", "channel", "from", "to", "seq", "author", "precedence",
    "type", "lang", "refs", "case", "created", "body", "sig",
)  # fmt: skip
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_OFFICE = re.compile(r"^[a-z]{2,8}:[a-z0-9][a-z0-9-]{0,31}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LANG = re.compile(r"^[a-z]{2,3}$")
MAX_REFS = 32


def uuid7() -> str:
    """Return a new UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    # The 8-4-4-4-12 text straight from the integer: `uuid.UUID` would check and store it first.
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


_SAFE_INT = 2**53


def _plain(obj: Any) -> bool:
    """Whether `obj` holds only values whose RFC 8785 form equals Python's sorted compact JSON.

    That is: no floats (ES6 number formatting differs from Python's), integers within ±2^53, and
    ASCII object keys (RFC 8785 sorts keys by UTF-16 code units, Python by code points; the two
    orders agree on ASCII). Strings may hold any text: both escape exactly `"`, `\\` and C0 controls.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_SAFE_INT < item < _SAFE_INT:
                return False
        elif kind is dict:
            for key, value in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(value)
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def canonical(obj: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of `obj`. Raises `Invalid` if it cannot be.

    Most envelopes hold no floats, and for those the C JSON encoder gives the same bytes as RFC 8785
    ten times faster; anything else goes through the `rfc8785` package. A property test checks
    that both paths agree.
    """
    if _plain(obj):
        try:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 refuse it with its own message
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise Invalid(f"value cannot be canonicalised: {exc}") from exc


def leaf_hash_hex(raw: bytes) -> str:
    """Return the hex SHA-256 of an envelope's bytes (its content hash, not the Merkle leaf hash)."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Envelope:
    """A parsed, structurally valid envelope and its canonical bytes."""

    data: dict[str, Any]
    raw: bytes

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def channel(self) -> str:
        return str(self.data["channel"])

    @property
    def sender(self) -> str:
        return str(self.data["from"])

    @property
    def recipient(self) -> str:
        return str(self.data["to"])

    @property
    def sender_party(self) -> str:
        return self.sender.split(":", 1)[0]

    @property
    def recipient_party(self) -> str:
        return self.recipient.split(":", 1)[0]

    @property
    def seq(self) -> int:
        return int(self.data["seq"])

    @property
    def type(self) -> str:
        return str(self.data["type"])

    @property
    def precedence(self) -> Precedence:
        return Precedence(self.data["precedence"])

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.data["body"]
        return body

    @property
    def refs(self) -> list[str]:
        return list(self.data["refs"])

    @property
    def created(self) -> str:
        return str(self.data["created"])

    @property
    def case(self) -> str | None:
        value = self.data["case"]
        return None if value is None else str(value)

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the envelope's canonical bytes."""
        return leaf_hash_hex(self.raw)

    def signed_bytes(self) -> bytes:
        """Return the bytes the signature covers: JCS of every member but `sig`."""
        # `raw` is the JCS form of every member, and JCS writes each member on its own, in key order:
        # cutting `,"sig":"..."` out of it gives the JCS form of the others, without walking and
        # encoding the envelope again (about 5% of an audit's time per entry). Only `to`, `type` and
        # `v` follow `sig`, and their checked values cannot hold that text, so the last match is the
        # member itself, and `to` must come right after it. Anything else takes the long way.
        sig = self.data.get("sig")
        if isinstance(sig, str):
            member = b',"sig":' + json.dumps(sig, ensure_ascii=False).encode()
            at = self.raw.rfind(b',"sig":')
            end = at + len(member)
            if at > 0 and self.raw.startswith(member, at) and self.raw.startswith(b',"to":', end):
                return self.raw[:at] + self.raw[end:]
        return canonical({k: v for k, v in self.data.items() if k != "sig"})

    def verify(self, verifier: Verifier) -> None:
        """Check the signature with `verifier`. Raises `VerificationError` if it does not verify."""
        try:
            sig = base64.b64decode(self.data["sig"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError(f"envelope {self.id}: signature is not base64") from exc
        if len(sig) != 64 or not verifier.verify(sig, self.signed_bytes()):
            raise VerificationError(f"envelope {self.id}: signature does not verify")


def check_structure(data: Any) -> None:
    """Check every member's presence and type. Raises `Invalid` naming the first bad member."""
    if not isinstance(data, dict):
        raise Invalid("envelope is not a JSON object")
    missing = [f for f in FIELDS if f not in data]
    extra = sorted(set(data) - set(FIELDS))
    if missing:
        raise Invalid(f"envelope lacks member(s): {', '.join(missing)}")
    if extra:
        raise Invalid(f"envelope has unknown member(s): {', '.join(extra)}")
    if data["v"] != 1 or isinstance(data["v"], bool):
        raise Invalid("envelope version must be 1")
    if not isinstance(data["id"], str) or not _UUID.match(data["id"]):
        raise Invalid("envelope id must be a lowercase UUID")
    if not isinstance(data["agreement"], str) or not _HEX64.match(data["agreement"]):
        raise Invalid("envelope agreement must be a 64-digit hex SHA-256")
    if not isinstance(data["channel"], str) or not _NAME.match(data["channel"]):
        raise Invalid("envelope channel is not a valid name")
    for member in ("from", "to"):
        if not isinstance(data[member], str) or not _OFFICE.match(data[member]):
            raise Invalid(f"envelope {member!r} is not an office id like 'pk:dgmo'")
    seq = data["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**53:
        raise Invalid("envelope seq must be a non-negative integer")
    if not isinstance(data["author"], str) or not 0 < len(data["author"]) <= 64:
        raise Invalid("envelope author must be a non-empty string of at most 64 characters")
    if not isinstance(data["precedence"], str):
        raise Invalid("envelope precedence must be a string")
    parse_precedence(data["precedence"])
    if not isinstance(data["type"], str) or not _NAME.match(data["type"]):
        raise Invalid("envelope type is not a valid name")
    if not isinstance(data["lang"], str) or not _LANG.match(data["lang"]):
        raise Invalid("envelope lang must be a language code like 'en'")
    refs = data["refs"]
    if not isinstance(refs, list) or len(refs) > MAX_REFS:
        raise Invalid(f"envelope refs must be a list of at most {MAX_REFS} ids")
    if any(not isinstance(r, str) or not _UUID.match(r) for r in refs) or len(set(refs)) != len(refs):
        raise Invalid("envelope refs must be distinct envelope ids")
    case = data["case"]
    if case is not None and (not isinstance(case, str) or not _UUID.match(case)):
        raise Invalid("envelope case must be null or a case id")
    if not isinstance(data["created"], str):
        raise Invalid("envelope created must be a time string")
    parse_time(data["created"])
    if not isinstance(data["body"], dict):
        raise Invalid("envelope body must be a JSON object")
    if not isinstance(data["sig"], str):
        raise Invalid("envelope sig must be a base64 string")


def seal(fields: dict[str, Any], signer: Signer) -> Envelope:
    """Check `fields` (every member but `sig`), sign them, and return the envelope.

    Raises `Invalid` if a member is missing or wrong and `TooLarge` if the result is too long.
    """
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    check_structure({**unsigned, "sig": ""})
    signed = canonical(unsigned)
    sig = base64.b64encode(signer.sign(signed)).decode()
    data = {**unsigned, "sig": sig}
    # The inverse of `Envelope.signed_bytes`: JCS writes members on their own in key order, and
    # `sig` sorts right before `to`, whose member is the last `,"to":` (the checked `to`, `type`
    # and `v` that end the object cannot hold that text). Splicing saves a second encoding.
    at = signed.rfind(b',"to":')
    raw = signed[:at] + b',"sig":"' + sig.encode() + b'"' + signed[at:]
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise TooLarge(f"envelope is {len(raw)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    return Envelope(data, raw)


def stored(raw: bytes) -> Envelope:
    """Return an envelope from the canonical bytes this node itself checked and stored.

    Only decodes: the structure and canonical form were checked when the bytes were sealed or
    received, and re-checking them for every delivery attempt would cost a third of a
    signature's time per envelope. Use `parse` for anything that crossed a boundary.
    """
    return Envelope(json.loads(raw), raw)


def parse(raw: bytes | str | dict[str, Any]) -> Envelope:
    """Parse an envelope from JSON bytes (or an already decoded object) and check its structure.

    The stored form is always the canonical re-encoding. Raises `MalformedError` for bytes that
    are not JSON, `Invalid` for a wrong structure and `TooLarge` past the size limit.
    """
    if isinstance(raw, dict):
        data: Any = raw
    else:
        if len(raw) > MAX_ENVELOPE_BYTES * 2:
            raise TooLarge(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedError("envelope is not valid JSON") from exc
    check_structure(data)
    canon = canonical(data)
    if len(canon) > MAX_ENVELOPE_BYTES:
        raise TooLarge(f"envelope is {len(canon)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    return Envelope(data, canon)
