"""Checking RFC 6962 inclusion and consistency proofs against signed roots.

The algorithms are those of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency). Edge cases,
decided here once:

- every hash (leaf, roots, proof elements) must be exactly 32 bytes, and no proof is longer than
  the 64 elements a tree of at most 2**63 - 1 leaves can need;
- sizes and indexes must lie in 0 .. MAX_TREE_SIZE (signed 64-bit, as in Go and in SQL BIGINT);
- old_size == new_size: the proof must be empty and the two roots equal;
- old_size == 0: the proof must be empty and old_root must be EMPTY_ROOT (the C2SP tlog-witness
  rule: every tree extends the empty tree, whose checkpoint carries SHA-256("")).

Every failure raises `VerificationError` with a short flat message: a node that trusts only
proofs treats malformed input and a wrong proof alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from detente.core.merkle import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, node_hash
from detente.errors import VerificationError

__all__ = ["inclusion_root", "verify_consistency", "verify_inclusion"]

_PROOF_FAILED = "invalid transparency proof"
# A proof for a tree of at most 2**63 - 1 leaves has at most 63 (inclusion) or 64 (consistency)
# elements; refuse longer input before hashing any of it.
_MAX_PROOF_LEN = 64


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `proof` shows the leaf hash `leaf` at `index` in the tree of `size` with `root`.

    RFC 9162 §2.1.3.2. Raises VerificationError on any failure, including malformed input.
    """
    if len(root) != HASH_SIZE:
        raise VerificationError("hash must be 32 bytes")
    if inclusion_root(index, size, leaf, proof) != root:
        raise VerificationError(_PROOF_FAILED)


def inclusion_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root that `proof` leads to from the leaf hash `leaf` at `index` in a tree of `size`.

    The first part of RFC 9162 §2.1.3.2, for a root that is signed over rather than known in advance
    (a batch of receipts). Raises VerificationError if the proof does not fit the tree's shape or
    the input is malformed.
    """
    _check_hashes(leaf, leaf, proof)
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise VerificationError("leaf index or tree size out of range")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError(_PROOF_FAILED)  # the path is longer than the tree is high
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right edge a node with no right sibling is promoted unchanged: skip the levels
            # up to the next one where we are a right child (or reach the top).
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(_PROOF_FAILED)  # the path is shorter than the tree is high
    return r


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of `new_size` with `new_root` extends the one of `old_size` with `old_root`.

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. When old_size == new_size the proof must be empty
    and the roots equal; when old_size == 0 the proof must be empty and old_root must be EMPTY_ROOT.
    Raises VerificationError on any failure, including malformed input.
    """
    _check_hashes(old_root, new_root, proof)
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise VerificationError("tree sizes out of range")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise VerificationError(_PROOF_FAILED)
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise VerificationError(_PROOF_FAILED)
        if old_size == new_size and old_root != new_root:
            raise VerificationError(_PROOF_FAILED)
        return
    if not proof:
        raise VerificationError(_PROOF_FAILED)
    path = list(proof)
    # When the old tree is a perfect left subtree the prover omits its root: the verifier has it.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(_PROOF_FAILED)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise VerificationError(_PROOF_FAILED)


def _check_hashes(a: bytes, b: bytes, proof: Sequence[bytes]) -> None:
    if len(proof) > _MAX_PROOF_LEN:
        raise VerificationError(_PROOF_FAILED)
    if len(a) != HASH_SIZE or len(b) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise VerificationError("hash must be 32 bytes")
