"""Receipts signed per batch: each stands alone, binds its envelope, and verifies one signature per batch."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from detente.core import receipts
from detente.core.envelope import Envelope, canonical, seal
from detente.core.keys import Signer, Verifier
from detente.errors import Invalid, VerificationError

PK = Signer.from_seed("pk.detente/log", b"p" * 32)
IR = Signer.from_seed("ir.detente/log", b"i" * 32)
RECEIVED = "2024-01-16T13:05:01.000Z"


def envelope(seq: int) -> Envelope:
    return seal(
        {"v": 1, "id": f"01a20000-0000-7000-8000-{seq:012d}", "agreement": "ab" * 32, "channel": "dgmo",
         "from": "pk:dgmo", "to": "ir:dgmo", "seq": seq, "author": "a", "precedence": "FLASH", "type": "hotline.text",
         "lang": "en", "refs": [], "case": None, "created": "2024-01-16T13:05:00.000Z", "body": {"text": "x"}},
        PK,
    )  # fmt: skip


ENVELOPES = [envelope(i) for i in range(1, 8)]


def batch(n: int = 7, signer: Signer = IR, first_index: int = 100) -> list[dict[str, Any]]:
    bodies = [receipts.receipt_body("ir", e, first_index + i, RECEIVED) for i, e in enumerate(ENVELOPES[:n])]
    return receipts.sign_receipts(signer, "ir", bodies)


class CountingVerifier(Verifier):
    """The real verifier, counting the signatures it checks."""

    calls = 0

    def verify(self, signature: bytes, message: bytes) -> bool:
        CountingVerifier.calls += 1
        return super().verify(signature, message)


def counting() -> CountingVerifier:
    real = IR.verifier
    CountingVerifier.calls = 0
    return CountingVerifier(real.name, real.alg, real.public)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_every_receipt_of_a_batch_verifies_alone_and_the_batch_checks_one_signature(n: int) -> None:
    signed = batch(n)
    assert len({r["sig"] for r in signed}) == 1
    for i, (env, receipt) in enumerate(zip(ENVELOPES[:n], signed, strict=True)):
        assert receipts.verify_receipt(receipt, IR.verifier, "ir", env) == 100 + i
        assert receipt["batch"]["index"] == i and receipt["batch"]["size"] == n
    verifier = counting()
    check = receipts.ReceiptVerifier(verifier, "ir")
    assert [check.verify(r, e) for r, e in zip(signed, ENVELOPES[:n], strict=True)] == list(range(100, 100 + n))
    assert CountingVerifier.calls == 1
    assert (signed[0]["batch"]["path"] == []) == (n == 1)


def test_a_batch_of_one_is_what_make_receipt_gives() -> None:
    receipt = receipts.make_receipt(IR, "ir", ENVELOPES[0], 7, RECEIVED)
    assert receipt == receipts.sign_receipts(IR, "ir", [receipts.receipt_body("ir", ENVELOPES[0], 7, RECEIVED)])[0]
    assert receipts.verify_receipt(receipt, IR.verifier, "ir", ENVELOPES[0]) == 7


def test_the_signature_covers_the_documented_statement() -> None:
    """An auditor can check a receipt from the module docstring alone: RFC 6962 leaves and root, JCS statement."""
    import hashlib

    signed = batch(2)
    leaves = [
        hashlib.sha256(b"\x00" + canonical({k: r[k] for k in r if k not in ("batch", "sig")})).digest() for r in signed
    ]
    root = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    statement = canonical(
        {"kind": "detente-receipts/v1", "node": "ir", "root": base64.b64encode(root).decode(), "size": 2}
    )
    assert IR.verifier.verify(base64.b64decode(signed[0]["sig"]), statement)
    assert signed[0]["batch"]["path"] == [base64.b64encode(leaves[1]).decode()]


def swapped_paths(signed: list[dict[str, Any]]) -> dict[str, Any]:
    return {**signed[0], "batch": {**signed[0]["batch"], "path": signed[1]["batch"]["path"]}}


BAD: list[tuple[str, Any]] = [
    ("log index", lambda r, s: {**r, "log_index": r["log_index"] + 1}),
    ("negative index", lambda r, s: {**r, "log_index": -1}),
    ("bool index", lambda r, s: {**r, "log_index": True}),
    ("node", lambda r, s: {**r, "node": "pk"}),
    ("digest", lambda r, s: {**r, "digest": "0" * 64}),
    ("envelope", lambda r, s: {**r, "envelope": ENVELOPES[1].id}),
    ("received", lambda r, s: {**r, "received": "2024-01-16T13:05:02.000Z"}),
    ("received not a time", lambda r, s: {**r, "received": "x"}),
    ("received not a string", lambda r, s: {**r, "received": 5}),
    ("kind", lambda r, s: {**r, "kind": "detente-receipt/v3"}),
    ("extra member", lambda r, s: {**r, "extra": 1}),
    ("no batch", lambda r, s: {k: v for k, v in r.items() if k != "batch"}),
    ("batch not an object", lambda r, s: {**r, "batch": []}),
    ("batch extra member", lambda r, s: {**r, "batch": {**r["batch"], "x": 1}}),
    ("other index", lambda r, s: {**r, "batch": {**r["batch"], "index": 1}}),
    ("index past size", lambda r, s: {**r, "batch": {**r["batch"], "index": 7}}),
    ("other size", lambda r, s: {**r, "batch": {**r["batch"], "size": 6}}),
    ("size zero", lambda r, s: {**r, "batch": {**r["batch"], "size": 0}}),
    ("bool size", lambda r, s: {**r, "batch": {**r["batch"], "size": True}}),
    ("size as text", lambda r, s: {**r, "batch": {**r["batch"], "size": "7"}}),
    ("huge size", lambda r, s: {**r, "batch": {**r["batch"], "size": receipts.MAX_BATCH_SIZE + 1}}),
    ("another's path", lambda r, s: swapped_paths(s)),
    ("short path", lambda r, s: {**r, "batch": {**r["batch"], "path": r["batch"]["path"][:-1]}}),
    ("long path", lambda r, s: {**r, "batch": {**r["batch"], "path": [*r["batch"]["path"], r["batch"]["path"][0]]}}),
    ("path not base64", lambda r, s: {**r, "batch": {**r["batch"], "path": ["!!", *r["batch"]["path"][1:]]}}),
    ("path of numbers", lambda r, s: {**r, "batch": {**r["batch"], "path": [1, 2, 3]}}),
    ("path not a list", lambda r, s: {**r, "batch": {**r["batch"], "path": "abc"}}),
    ("signature of another batch", lambda r, s: {**r, "sig": batch(7, first_index=0)[0]["sig"]}),
    ("signature not base64", lambda r, s: {**r, "sig": "!!"}),
    ("signature not text", lambda r, s: {**r, "sig": None}),
    ("not an object", lambda r, s: [r]),
]


@pytest.mark.parametrize(("what", "tamper"), BAD, ids=[b[0] for b in BAD])
def test_any_change_to_a_receipt_fails(what: str, tamper: Any) -> None:
    signed = batch(7)
    with pytest.raises(VerificationError):
        receipts.verify_receipt(tamper(signed[0], signed), IR.verifier, "ir", ENVELOPES[0])
    # Not even after the same batch's signature was verified once for a good receipt.
    check = receipts.ReceiptVerifier(IR.verifier, "ir")
    check.verify(signed[1], ENVELOPES[1])
    with pytest.raises(VerificationError):
        check.verify(tamper(signed[0], signed), ENVELOPES[0])


def test_another_key_or_another_envelope_fails() -> None:
    signed = batch(3)
    with pytest.raises(VerificationError, match="does not verify"):
        receipts.verify_receipt(signed[0], PK.verifier, "ir", ENVELOPES[0])
    with pytest.raises(VerificationError, match="not for envelope"):
        receipts.verify_receipt(signed[0], IR.verifier, "ir", ENVELOPES[1])
    with pytest.raises(VerificationError, match="not a receipt of this peer"):
        receipts.verify_receipt(signed[0], IR.verifier, "pk", ENVELOPES[0])
    forged = batch(3, signer=PK)  # right shape, wrong key
    with pytest.raises(VerificationError, match="does not verify"):
        receipts.verify_receipt(forged[0], IR.verifier, "ir", ENVELOPES[0])


def test_receipts_of_several_batches_in_one_answer_each_verify() -> None:
    """A peer answers a repeat with the receipt it stored then: one answer can mix batches."""
    old, new = batch(2, first_index=10), batch(3, first_index=20)
    verifier = counting()
    check = receipts.ReceiptVerifier(verifier, "ir")
    assert check.verify(old[1], ENVELOPES[1]) == 11
    assert check.verify(new[0], ENVELOPES[0]) == 20
    assert check.verify(new[2], ENVELOPES[2]) == 22
    assert CountingVerifier.calls == 2


def v1_receipt(env: Envelope, index: int) -> dict[str, Any]:
    body = {"kind": "detente-receipt/v1", "envelope": env.id, "digest": env.digest, "node": "ir",
            "log_index": index, "received": RECEIVED}  # fmt: skip
    return {**body, "sig": base64.b64encode(IR.sign(canonical(body))).decode()}


def test_receipts_of_version_1_still_verify() -> None:
    """A node answers a repeat with the receipt stored the first time, possibly before batches."""
    receipt = v1_receipt(ENVELOPES[0], 3)
    assert receipts.verify_receipt(receipt, IR.verifier, "ir", ENVELOPES[0]) == 3
    # What a node makes for a sender that does not ask for batches is exactly that receipt.
    body = receipts.receipt_body("ir", ENVELOPES[0], 3, RECEIVED)
    assert receipts.sign_receipts_v1(IR, [body]) == [receipt]
    for bad in (
        {**receipt, "log_index": 4},
        {**receipt, "batch": batch(1)[0]["batch"]},  # a v1 receipt has no batch
        {**receipt, "kind": "detente-receipt/v2"},
    ):
        with pytest.raises(VerificationError):
            receipts.verify_receipt(bad, IR.verifier, "ir", ENVELOPES[0])


def test_signing_refuses_an_empty_batch() -> None:
    with pytest.raises(Invalid, match="1 to"):
        receipts.sign_receipts(IR, "ir", [])
