"""C2SP checkpoints (c2sp.org/tlog-checkpoint), tlog-witness bodies and tlog-proof bundles.

A checkpoint is the text of a signed note (`core.note`), at least three non-empty lines:

    <origin>                 non-empty; the log's identity, and the name of its signing key
    <tree size>              ASCII decimal, no sign, no leading zero ("0" for the empty tree)
    <root hash>              canonical base64 of the 32-byte RFC 6962 root
    [<extension line> ...]   optional, non-empty, opaque (NOT RECOMMENDED)

tlog-witness `POST <prefix>/add-checkpoint` request body (c2sp.org/tlog-witness):

    old <size>\\n                decimal, no leading zero
    <base64 hash>\\n             0 to 63 lines: the RFC 6962 §2.1.2 consistency proof, old -> new
    \\n
    <signed checkpoint note>

A 409 reply says the witness's latest cosigned size as "<size>\\n" (`text/x.tlog.size`); a 200
reply is signature lines (`note.parse_signature_lines`).

tlog-proof bundle, file extension `.tlog-proof` (c2sp.org/tlog-proof):

    c2sp.org/tlog-proof@v1\\n
    [extra <base64>\\n]          optional opaque data; NOT authenticated
    index <n>\\n                 zero-based leaf index, decimal, no leading zero
    <base64 hash>\\n             0 to 63 lines: the RFC 6962 §2.1.1 inclusion proof, leaf sibling first
    \\n
    <signed checkpoint note, verbatim, with its cosignatures>

Every number here is at most 2^63 - 1 and is parsed by re-formatting and comparing, so "02",
"+2", " 2" and "2_0" are refused. Every hash is exactly 32 bytes of canonical base64. Parsers raise
`MalformedError` with one flat message per format.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from detente.core import keys
from detente.core.note import (
    Note,
    canonical_b64decode,
    cosignature_time,
    open_note,
    parse_note,
    sign_note,
    signature_for,
)
from detente.errors import MalformedError, VerificationError

HASH_SIZE = 32
MAX_SIZE = 2**63 - 1
MAX_PROOF_LINES = 63
PROOF_BUNDLE_HEADER = b"c2sp.org/tlog-proof@v1"
SIZE_CONTENT_TYPE = "text/x.tlog.size"

_BAD_LINE = re.compile("[\x00-\x1f]")  # control characters, "\n" included
_MALFORMED = "malformed checkpoint"
_MALFORMED_BODY = "malformed add-checkpoint body"
_MALFORMED_SIZE = "malformed size body"
_MALFORMED_PROOF = "malformed proof bundle"


def _parse_decimal(text: str) -> int | None:
    # Canonical decimal only: re-format and compare (Go `ParseTree`); the length cap keeps int()
    # cheap on hostile input.
    if not 0 < len(text) <= 19 or not text.isascii() or not text.isdigit():
        return None
    n = int(text)
    return n if str(n) == text and n <= MAX_SIZE else None


def _parse_hash(text: str) -> bytes | None:
    raw = canonical_b64decode(text)
    return raw if raw is not None and len(raw) == HASH_SIZE else None


def _valid_line(line: str) -> bool:
    if not line or _BAD_LINE.search(line):
        return False
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its tree: origin, size and RFC 6962 root hash.

    Raises `MalformedError` if a field cannot be written as a canonical checkpoint.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (
            not _valid_line(self.origin)
            or not 0 <= self.size <= MAX_SIZE
            or len(self.root) != HASH_SIZE
            or not all(_valid_line(ext) for ext in self.extensions)
        ):
            raise MalformedError(_MALFORMED)

    def text(self) -> str:
        """Return the checkpoint as note text (every line ends in "\\n")."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly. Raises `MalformedError("malformed checkpoint")`."""
    if not text.endswith("\n"):
        raise MalformedError(_MALFORMED)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedError(_MALFORMED)
    size = _parse_decimal(lines[1])
    root = _parse_hash(lines[2])
    if size is None or root is None:
        raise MalformedError(_MALFORMED)
    return Checkpoint(lines[0], size, root, tuple(lines[3:]))  # checks origin and extensions


def sign_checkpoint(cp: Checkpoint, signer: keys.Signer) -> Note:
    """Return the checkpoint signed by the log key `signer` (Ed25519 note signature, type 0x01).

    Raises `MalformedError` if the signer's name is not the checkpoint origin.
    """
    if signer.name != cp.origin:
        raise MalformedError("the log key name must equal the checkpoint origin")
    return sign_note(cp.text(), signer)


def open_checkpoint(
    data: bytes | Note,
    log_verifier: keys.Verifier,
    witness_verifiers: Sequence[keys.Verifier] = (),
) -> tuple[Checkpoint, Note, dict[str, int]]:
    """Parse and verify a signed checkpoint and its cosignatures.

    The log's own signature must be present and verify, and the origin must equal the log key
    name. Signatures by other keys are ignored; a known witness whose cosignature fails rejects
    the note. Returns the checkpoint, the note, and {witness name: cosignature timestamp} for
    each witness whose cosignature verified.
    Raises `MalformedError` for a malformed note or checkpoint, `VerificationError` otherwise,
    and `ValueError` if a witness verifier is not a cosignature/v1 (type 0x04) key.
    """
    if any(w.alg != keys.ALG_COSIGNATURE_V1 for w in witness_verifiers):
        raise ValueError("witness verifiers must be cosignature/v1 keys")
    note = parse_note(data) if isinstance(data, bytes) else data
    cp = parse_checkpoint(note.text)
    if cp.origin != log_verifier.name:
        raise VerificationError("checkpoint origin does not match the log key")
    _, matched = open_note(note, [log_verifier, *witness_verifiers])
    if log_verifier not in matched:
        raise VerificationError("checkpoint is not signed by the log")
    cosigned: dict[str, int] = {}
    for w in witness_verifiers:
        sig = signature_for(note, w)
        if w in matched and sig is not None:
            cosigned[w.name] = cosignature_time(sig)
    return cp, note, cosigned


def _hash_lines(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) > MAX_PROOF_LINES or any(len(h) != HASH_SIZE for h in hashes):
        raise MalformedError("a proof is at most 63 hashes of 32 bytes")
    return b"".join(base64.b64encode(h) + b"\n" for h in hashes)


def _check_checkpoint_note(note: bytes, message: str) -> None:
    try:
        parse_checkpoint(parse_note(note).text)
    except MalformedError as exc:
        raise MalformedError(message) from exc


def _split_lines(body: bytes, message: str) -> tuple[list[str], bytes]:
    """Split `body` at its first empty line: the ASCII lines before it, and the bytes after it."""
    head, sep, rest = body.partition(b"\n\n")
    if not sep or not head.isascii():
        raise MalformedError(message)
    lines = head.decode("ascii").split("\n")
    return lines, rest


def _parse_hashes(lines: list[str], message: str) -> list[bytes]:
    if len(lines) > MAX_PROOF_LINES:
        raise MalformedError(message)
    hashes = [_parse_hash(line) for line in lines]
    if any(h is None for h in hashes):
        raise MalformedError(message)
    return [h for h in hashes if h is not None]


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """Return a tlog-witness add-checkpoint request body.

    Raises `MalformedError` for a size outside 0..2^63-1, a bad proof, or a note that is not a
    well-formed signed checkpoint.
    """
    if not 0 <= old_size <= MAX_SIZE:
        raise MalformedError(_MALFORMED_BODY)
    _check_checkpoint_note(note, _MALFORMED_BODY)
    return b"old %d\n" % old_size + _hash_lines(proof) + b"\n" + note


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Parse a tlog-witness add-checkpoint request body into (old size, proof, checkpoint note).

    The note is checked to be a well-formed signed checkpoint but is not verified.
    Raises `MalformedError("malformed add-checkpoint body")`.
    """
    lines, note = _split_lines(body, _MALFORMED_BODY)
    if not lines[0].startswith("old "):
        raise MalformedError(_MALFORMED_BODY)
    old = _parse_decimal(lines[0][len("old ") :])
    if old is None:
        raise MalformedError(_MALFORMED_BODY)
    proof = _parse_hashes(lines[1:], _MALFORMED_BODY)
    _check_checkpoint_note(note, _MALFORMED_BODY)
    return old, proof, note


def format_size_body(size: int) -> bytes:
    """Return the body of a tlog-witness 409 reply, "<size>\\n" (`SIZE_CONTENT_TYPE`).

    Raises `MalformedError` for a size outside 0..2^63-1.
    """
    if not 0 <= size <= MAX_SIZE:
        raise MalformedError(_MALFORMED_SIZE)
    return b"%d\n" % size


def parse_size_body(body: bytes) -> int:
    """Parse the body of a tlog-witness 409 reply. Raises `MalformedError("malformed size body")`."""
    if not body.endswith(b"\n") or not body.isascii():
        raise MalformedError(_MALFORMED_SIZE)
    size = _parse_decimal(body[:-1].decode("ascii"))
    if size is None:
        raise MalformedError(_MALFORMED_SIZE)
    return size


@dataclass(frozen=True)
class ProofBundle:
    """A parsed tlog-proof: leaf index, inclusion proof, checkpoint note bytes, unauthenticated extra."""

    index: int
    proof: tuple[bytes, ...]
    note_bytes: bytes
    extra: bytes | None = None

    def format(self) -> bytes:
        """Return the `.tlog-proof` bytes. Raises `MalformedError` like `format_proof_bundle`."""
        return format_proof_bundle(self.index, self.proof, self.note_bytes, self.extra)


def format_proof_bundle(
    index: int, proof: Sequence[bytes], checkpoint_note: bytes, extra: bytes | None = None
) -> bytes:
    """Return a c2sp.org/tlog-proof@v1 bundle.

    Raises `MalformedError` for an index outside 0..2^63-1, a bad proof, empty `extra`, or a
    note that is not a well-formed signed checkpoint.
    """
    if not 0 <= index <= MAX_SIZE or extra == b"":
        raise MalformedError(_MALFORMED_PROOF)
    _check_checkpoint_note(checkpoint_note, _MALFORMED_PROOF)
    out = PROOF_BUNDLE_HEADER + b"\n"
    if extra is not None:
        out += b"extra " + base64.b64encode(extra) + b"\n"
    return out + b"index %d\n" % index + _hash_lines(proof) + b"\n" + checkpoint_note


def parse_proof_bundle(data: bytes) -> ProofBundle:
    """Parse a c2sp.org/tlog-proof@v1 bundle strictly, without verifying anything.

    The note is checked to be a well-formed signed checkpoint; `extra` is NOT authenticated.
    Raises `MalformedError("malformed proof bundle")`.
    """
    lines, note = _split_lines(data, _MALFORMED_PROOF)
    if lines[0] != PROOF_BUNDLE_HEADER.decode("ascii") or len(lines) < 2:
        raise MalformedError(_MALFORMED_PROOF)
    rest = lines[1:]
    extra = None
    if rest[0].startswith("extra "):
        extra = canonical_b64decode(rest[0][len("extra ") :])
        if not extra:  # undecodable, or empty (we never write an empty extra line)
            raise MalformedError(_MALFORMED_PROOF)
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise MalformedError(_MALFORMED_PROOF)
    index = _parse_decimal(rest[0][len("index ") :])
    if index is None:
        raise MalformedError(_MALFORMED_PROOF)
    proof = _parse_hashes(rest[1:], _MALFORMED_PROOF)
    _check_checkpoint_note(note, _MALFORMED_PROOF)
    return ProofBundle(index, tuple(proof), note, extra)
