"""Receipts: a receiving node's signed statement that it stored and logged an envelope.

A receipt names one envelope and where its receiver logged it:

    { "kind": "detente-receipt/v2", "envelope": id, "digest": hex SHA-256 of the envelope bytes,
      "node": party, "log_index": n, "received": time,
      "batch": { "size": N, "index": i, "path": [base64 hash, ...] },
      "sig": base64 Ed25519 }

A node signs the receipts it stores together, once: those of a delivery batch, or of each part of
a long one (the receiver stores a long batch in parts). The receipts' bodies (every member but
`batch` and `sig`, in JCS) are the leaves of an RFC 6962 Merkle tree of `size` leaves; `path` is
the inclusion proof of leaf `index` (RFC 6962 §2.1.1, bottom up); `sig` signs the JCS of

    { "kind": "detente-receipts/v1", "node": party, "root": base64 tree head, "size": N }

Each receipt still stands alone: its body and path lead to the root its signature covers. A batch of
one has an empty path, and its root is its leaf hash.

Receipts of version 1, from before batches (`sig` over the JCS of the body, kind
`detente-receipt/v1`), are still accepted: a node answers an envelope that comes again with the
receipt it stored the first time. They are also still made, one signature each, for a sender that
does not ask for batches (`BATCH_HEADER`): a node of an earlier release, whose state has not
upgraded yet, verifies only those.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from detente.core.envelope import Envelope, canonical
from detente.core.keys import Signer, Verifier
from detente.core.merkle import leaf_hash
from detente.core.merkle_memory import inclusion_paths
from detente.core.merkle_verify import inclusion_root
from detente.core.precedence import parse_time
from detente.errors import Invalid, VerificationError

RECEIPT_KIND = "detente-receipt/v2"
RECEIPT_V1_KIND = "detente-receipt/v1"
BATCH_KIND = "detente-receipts/v1"
MAX_BATCH_SIZE = 1 << 16  # far above what a delivery request may carry (500)
# The request header by which a sender says it verifies batch receipts, and its one value.
BATCH_HEADER = "Detente-Receipts"
BATCH_VALUE = "batch/v1"
ASK_BATCH = {BATCH_HEADER: BATCH_VALUE}  # what a sender of this release puts on its deliveries
_BODY = frozenset({"kind", "envelope", "digest", "node", "log_index", "received"})
_V1_FIELDS = _BODY | {"sig"}
_V2_FIELDS = _BODY | {"batch", "sig"}
_BATCH_FIELDS = frozenset({"size", "index", "path"})


def receipt_body(party: str, envelope: Envelope, log_index: int, received: str) -> dict[str, Any]:
    """Return the unsigned part of `party`'s receipt for `envelope`, stored at `log_index`."""
    return {
        "kind": RECEIPT_KIND,
        "envelope": envelope.id,
        "digest": envelope.digest,
        "node": party,
        "log_index": log_index,
        "received": received,
    }


def batch_statement(party: str, size: int, root: bytes) -> bytes:
    """Return the bytes a batch signature covers: the JCS of the batch's kind, node, root and size."""
    return canonical({"kind": BATCH_KIND, "node": party, "root": base64.b64encode(root).decode(), "size": size})


def sign_receipts(signer: Signer, party: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the receipts for `bodies` (from `receipt_body`), signed together with one signature.

    Raises `Invalid` if `bodies` is empty or larger than `MAX_BATCH_SIZE`.
    """
    if not 0 < len(bodies) <= MAX_BATCH_SIZE:
        raise Invalid(f"a batch of receipts holds 1 to {MAX_BATCH_SIZE} receipts")
    root, paths = inclusion_paths([leaf_hash(canonical(body)) for body in bodies])
    sig = base64.b64encode(signer.sign(batch_statement(party, len(bodies), root))).decode()
    size = len(bodies)
    return [
        {**body, "batch": {"size": size, "index": i, "path": [base64.b64encode(h).decode() for h in path]}, "sig": sig}
        for i, (body, path) in enumerate(zip(bodies, paths, strict=True))
    ]


def sign_receipts_v1(signer: Signer, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return version 1 receipts for `bodies` (from `receipt_body`): one signature each."""
    out = []
    for body in bodies:
        old = {**body, "kind": RECEIPT_V1_KIND}
        out.append({**old, "sig": base64.b64encode(signer.sign(canonical(old))).decode()})
    return out


def make_receipt(signer: Signer, party: str, envelope: Envelope, log_index: int, received: str) -> dict[str, Any]:
    """Return this node's signed receipt for one envelope it stored at `log_index` (a batch of one)."""
    return sign_receipts(signer, party, [receipt_body(party, envelope, log_index, received)])[0]


class ReceiptVerifier:
    """Checks a peer's receipts, verifying each batch signature once.

    One verifier serves one answer from the peer: its receipts share one signature, and the
    statements already verified are remembered (an answer may also carry older receipts, for
    envelopes the peer had stored before, each with its own batch).
    """

    def __init__(self, verifier: Verifier, party: str) -> None:
        self.verifier = verifier
        self.party = party
        self._verified: set[bytes] = set()

    def verify(self, receipt: Any, envelope: Envelope) -> int:
        """Check `receipt` for `envelope` and return the log index it states.

        Raises `VerificationError` if the receipt is malformed, for another envelope or node, or
        not signed by the peer's pinned key.
        """
        if not isinstance(receipt, dict) or receipt.get("kind") not in (RECEIPT_KIND, RECEIPT_V1_KIND):
            raise VerificationError("receipt is malformed")
        v1 = receipt["kind"] == RECEIPT_V1_KIND
        if set(receipt) != (_V1_FIELDS if v1 else _V2_FIELDS):
            raise VerificationError("receipt is malformed")
        if receipt["node"] != self.party:
            raise VerificationError("receipt is not a receipt of this peer")
        if receipt["envelope"] != envelope.id or receipt["digest"] != envelope.digest:
            raise VerificationError(f"receipt is not for envelope {envelope.id}")
        index = receipt["log_index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise VerificationError("receipt log index is not a non-negative integer")
        try:
            parse_time(receipt["received"])
        except Invalid:
            raise VerificationError("receipt time is not RFC 3339 UTC") from None
        sig = _decode(receipt["sig"], "receipt signature")
        body = {k: receipt[k] for k in _BODY}
        signed = canonical(body) if v1 else self._statement(body, receipt["batch"])
        key = signed + sig
        if key not in self._verified:
            if not self.verifier.verify(sig, signed):
                raise VerificationError("receipt signature does not verify")
            self._verified.add(key)
        return index

    def _statement(self, body: dict[str, Any], batch: Any) -> bytes:
        """Return the batch statement that `body` and its path lead to."""
        if not isinstance(batch, dict) or set(batch) != _BATCH_FIELDS:
            raise VerificationError("receipt batch is malformed")
        size, position, path = batch["size"], batch["index"], batch["path"]
        for number in (size, position):
            if not isinstance(number, int) or isinstance(number, bool):
                raise VerificationError("receipt batch is malformed")
        # A tree of `size` leaves is at most size.bit_length() levels high: refuse longer paths
        # before decoding any of them.
        if not 0 < size <= MAX_BATCH_SIZE or not isinstance(path, list) or len(path) > size.bit_length():
            raise VerificationError("receipt batch is malformed")
        hashes = [_decode(h, "receipt batch path") for h in path]
        root = inclusion_root(position, size, leaf_hash(canonical(body)), hashes)
        return batch_statement(self.party, size, root)


def verify_receipt(receipt: Any, verifier: Verifier, party: str, envelope: Envelope) -> int:
    """Check one receipt of `party` for `envelope`; return its log index (see `ReceiptVerifier`)."""
    return ReceiptVerifier(verifier, party).verify(receipt, envelope)


def _decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"{what} is not base64") from exc
