"""C2SP signed notes (c2sp.org/signed-note v1.0.0) and Ed25519 cosignatures (c2sp.org/tlog-cosignature).

A signed note is UTF-8 text ending in a newline, a blank line, then one or more signature lines:

    example.com/research-log
    1000
    NGxrnLicS3b6ydyyDNqG46AcCldBfBOQKOrNRTj96Vs=

    — example.com/research-log E5PKraixNBAGkOWFLuLhOfM6/OVHjTkJ2nymyW/UL9b8wpNcM0g[...]mAI=
    — witness.example/w1 O3etTwAAAABlU/EAc928G5oXguDBfcqdJfvBirVnK3InuYMHGpenz3+0[...]AQ==

(signatures abridged; the full lines are the golden vector in tests/unit/core/test_checkpoint.py)

- The whole note is valid UTF-8 with no character below U+0020 other than "\\n" (so no "\\r").
- The text includes its final newline but not the separating blank line. It may contain blank
  lines itself: the text ends at the *last* blank line of the note.
- A signature line is EM DASH (U+2014), space, key name, space, base64(key id[4] || signature),
  newline. Key names are non-empty, with no Unicode space and no "+" (`keys.valid_key_name`).
  The base64 is standard RFC 4648 §4 with padding and must be canonical (re-encoding it gives the
  same string), and decode to at least 5 bytes.
- Key id = SHA-256(name || 0x0A || type || public key)[:4] (`keys.key_id`). Types used here:
    0x01  Ed25519 over the note text; the signature is 64 bytes.
    0x04  Ed25519 cosignature/v1; the signature is a `timestamped_signature`, an 8-byte big-endian
          POSIX timestamp (at most 2^63 - 1) followed by the 64-byte Ed25519 signature of
              "cosignature/v1\\n" "time <decimal timestamp>\\n" <the whole note text>
          The message does not bind the cosigner name, so each cosigner needs its own key.

Our limits, checked by `parse_note` (the spec requires accepting at least 16 signatures): at most
1,000,000 bytes and 100 signature lines, and no two lines with the same (name, key id) (Go drops
such duplicates; we refuse them so that `parse_note(x).format() == x` always holds).

Verification (`open_note`): a signature whose (name, key id) matches no known verifier is ignored;
one that matches must verify, otherwise the whole note is rejected; at least one known signature
must verify. Any malformed note gets the same flat `MalformedError("malformed note")`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from detente.core import keys
from detente.errors import MalformedError, VerificationError

MAX_NOTE_BYTES = 1_000_000
MAX_SIGNATURES = 100
MAX_TIMESTAMP = 2**63 - 1
ED25519_SIGNATURE_SIZE = 64
COSIGNATURE_SIZE = 8 + ED25519_SIGNATURE_SIZE

_DASH = "\u2014 "  # EM DASH, space: the start of every signature line.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls but "\n" (signed-note §Format).
_MALFORMED = "malformed note"


def canonical_b64decode(text: str) -> bytes | None:
    """Return the bytes of canonical padded standard base64 `text`, or None if it is anything else.

    `base64.b64decode(validate=True)` still accepts non-zero padding bits ("AB==" and "AC==" both
    decode to b"\\x00"), so the result is re-encoded and compared.
    """
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def valid_text(text: str) -> bool:
    """Return whether `text` can be a note text: non-empty UTF-8 ending in "\\n", no control chars."""
    if not text.endswith("\n") or _CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")  # a lone surrogate cannot be encoded
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the signer's key name, its 4-byte key id, and the signature bytes.

    For a cosignature/v1 (type 0x04) `sig` is the 72-byte timestamp || Ed25519 signature.
    Raises `MalformedError` if the name is not a valid key name or the id is not 4 bytes.
    """

    name: str
    key_id: bytes
    sig: bytes

    def __post_init__(self) -> None:
        if not keys.valid_key_name(self.name) or len(self.key_id) != 4 or not self.sig:
            raise MalformedError(_MALFORMED)

    def line(self) -> str:
        """Return the signature line, "— <name> <base64(key id || sig)>\\n"."""
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.sig).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    """A note text and its signature lines, in order.

    Construction enforces everything `parse_note` does, so `format()` always gives a note that
    parses back to an equal object. Raises `MalformedError` otherwise.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not valid_text(self.text) or not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise MalformedError(_MALFORMED)
        if len({(s.name, s.key_id) for s in self.signatures}) != len(self.signatures):
            raise MalformedError(_MALFORMED)
        size = len(self.text.encode()) + 1 + sum(len(s.line().encode()) for s in self.signatures)
        if size > MAX_NOTE_BYTES:
            raise MalformedError(_MALFORMED)

    def format(self) -> bytes:
        """Return the note's bytes: text, a blank line, the signature lines."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise MalformedError(_MALFORMED)
    name, sep, b64 = line[len(_DASH) :].partition(" ")
    raw = canonical_b64decode(b64)
    if not sep or raw is None or len(raw) < 5 or not keys.valid_key_name(name):
        raise MalformedError(_MALFORMED)
    return NoteSignature(name, raw[:4], raw[4:])


def parse_signature_lines(data: bytes) -> tuple[NoteSignature, ...]:
    """Parse one or more signature lines, each ending in "\\n" (a tlog-witness 200 reply body).

    The same limits as in a note apply. Raises `MalformedError("malformed note")`.
    """
    if len(data) > MAX_NOTE_BYTES:
        raise MalformedError(_MALFORMED)
    try:
        block = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(_MALFORMED) from exc
    if _CONTROL.search(block):
        raise MalformedError(_MALFORMED)
    return _parse_block(block)


def _parse_block(block: str) -> tuple[NoteSignature, ...]:
    if not block.endswith("\n"):
        raise MalformedError(_MALFORMED)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:  # checked first, to bound the work on hostile input
        raise MalformedError(_MALFORMED)
    sigs = tuple(_parse_signature_line(line) for line in lines)
    if len({(s.name, s.key_id) for s in sigs}) != len(sigs):
        raise MalformedError(_MALFORMED)
    return sigs


def format_signature_lines(sigs: Iterable[NoteSignature]) -> bytes:
    """Return the signature lines of `sigs`, concatenated (a tlog-witness 200 reply body)."""
    return "".join(s.line() for s in sigs).encode()


def parse_note(data: bytes) -> Note:
    """Parse a signed note strictly, without verifying it. Raises `MalformedError("malformed note")`."""
    if len(data) > MAX_NOTE_BYTES:
        raise MalformedError(_MALFORMED)
    try:
        whole = data.decode("utf-8")  # strict: also refuses encoded surrogates and overlong forms
    except UnicodeDecodeError as exc:
        raise MalformedError(_MALFORMED) from exc
    if _CONTROL.search(whole):
        raise MalformedError(_MALFORMED)
    # Signature lines are never empty, so the last "\n\n" is the text's final newline followed by
    # the separating blank line.
    split = whole.rfind("\n\n")
    if split < 0:
        raise MalformedError(_MALFORMED)
    return Note(whole[: split + 1], _parse_block(whole[split + 2 :]))


def sign_note(text: str, signer: keys.Signer) -> Note:
    """Return `text` signed by `signer` with an Ed25519 (type 0x01) note signature.

    Raises `MalformedError` if `text` is not a valid note text.
    """
    if not valid_text(text):
        raise MalformedError(_MALFORMED)
    kid = keys.key_id(signer.name, keys.ALG_ED25519, signer.public)
    return Note(text, (NoteSignature(signer.name, kid, signer.sign(text.encode())),))


def add_signatures(note: Note, *sigs: NoteSignature) -> Note:
    """Return `note` with `sigs` appended, skipping any whose (name, key id) it already has.

    The first signature for a (name, key id) wins. Raises `MalformedError` past 100 signatures.
    """
    have = {(s.name, s.key_id) for s in note.signatures}
    extra: list[NoteSignature] = []
    for sig in sigs:
        if (sig.name, sig.key_id) not in have:
            have.add((sig.name, sig.key_id))
            extra.append(sig)
    return Note(note.text, note.signatures + tuple(extra))


def cosignature_message(text: str, timestamp: int) -> bytes:
    """Return the message a cosignature/v1 signs: the two header lines, then the note text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, signer: keys.Signer, timestamp: int) -> NoteSignature:
    """Return the cosignature/v1 (type 0x04) signature line of `signer` over `text` at `timestamp`.

    Raises `MalformedError` if `text` is not a valid note text or `timestamp` is not in
    1..2^63-1 (tlog-witness requires non-zero timestamps).
    """
    if not valid_text(text) or not 0 < timestamp <= MAX_TIMESTAMP:
        raise MalformedError("invalid cosignature input")
    sig = signer.sign(cosignature_message(text, timestamp))
    kid = keys.key_id(signer.name, keys.ALG_COSIGNATURE_V1, signer.public)
    return NoteSignature(signer.name, kid, timestamp.to_bytes(8, "big") + sig)


def cosignature_time(sig: NoteSignature) -> int:
    """Return the timestamp of a cosignature/v1 signature. Raises `MalformedError` if it is not one."""
    if len(sig.sig) != COSIGNATURE_SIZE:
        raise MalformedError("malformed cosignature")
    timestamp = int.from_bytes(sig.sig[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedError("malformed cosignature")
    return timestamp


def signature_for(note: Note, verifier: keys.Verifier) -> NoteSignature | None:
    """Return the signature line of `note` with the name and key id of `verifier`, if any."""
    kid = verifier.key_id
    return next((s for s in note.signatures if s.name == verifier.name and s.key_id == kid), None)


def _verifies(verifier: keys.Verifier, sig: bytes, text: str) -> bool:
    if verifier.alg == keys.ALG_ED25519:
        return len(sig) == ED25519_SIGNATURE_SIZE and verifier.verify(sig, text.encode())
    # ALG_COSIGNATURE_V1 (checked in open_note)
    if len(sig) != COSIGNATURE_SIZE:
        return False
    timestamp = int.from_bytes(sig[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        return False
    return verifier.verify(sig[8:], cosignature_message(text, timestamp))


def open_note(data: bytes | Note, verifiers: Sequence[keys.Verifier]) -> tuple[Note, list[keys.Verifier]]:
    """Parse (if given bytes) and verify a signed note against the known `verifiers`.

    Returns the note and the verifiers whose signatures verified, in signature-line order.
    Verifiers may be Ed25519 note keys (type 0x01) or cosignature/v1 keys (type 0x04).
    Raises `MalformedError` for a malformed note, `VerificationError` if a known key's signature
    fails or no known signature verifies, and `ValueError` for a verifier of another type or two
    different verifiers with the same name and key id.
    """
    note = parse_note(data) if isinstance(data, bytes) else data
    known: dict[tuple[str, bytes], keys.Verifier] = {}
    for v in verifiers:
        if v.alg not in (keys.ALG_ED25519, keys.ALG_COSIGNATURE_V1):
            raise ValueError(f"unsupported verifier type {v.alg:#04x}")
        if known.setdefault((v.name, v.key_id), v) != v:
            raise ValueError("ambiguous verifiers: same name and key id")
    matched: list[keys.Verifier] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue  # unknown (name, key id): ignored, as the spec requires
        if not _verifies(verifier, sig.sig, note.text):
            raise VerificationError("invalid note signature")
        matched.append(verifier)
    if not matched:
        raise VerificationError("note has no verified signature")
    return note, matched
