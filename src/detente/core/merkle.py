"""RFC 6962 Merkle tree hashing, the stored-hash layout, and building inclusion and consistency proofs.

Hashing follows RFC 6962 §2.1 (restated in RFC 9162 §2.1) with SHA-256:

    MTH({})      = SHA-256("")
    MTH({d})     = SHA-256(0x00 || d)                         leaf hash
    MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  k = largest power of two < n

Storage follows Go's `golang.org/x/mod/sumdb/tlog`: every perfect subtree, identified by its
height `level` and its position `n` at that height, gets one dense append-only index
(`stored_hash_index`), so a log is a flat `index -> hash` table that only grows. Appending record
n writes its leaf hash and then the root of every perfect subtree that record completes.

Proofs are built the way tlog builds them: first list every stored index the proof needs, then
make ONE `HashReader.read_hashes` call, then consume the hashes and assert none is left over. A
leftover or a shortfall is a bug in this module, so it is an `AssertionError`, not a user error.
Sizes and indexes must lie in 0 .. MAX_TREE_SIZE (signed 64-bit, as in Go and in SQL BIGINT).

Checking proofs is `core.merkle_verify`; trees held in memory (the auditor, tests, benchmarks)
are `core.merkle_memory`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from detente.errors import Error, Invalid

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "HashReader",
    "fold_right_edge",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "prove_inclusions",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hash_index",
    "stored_hashes_for_append",
    "tree_hash",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Sizes and indexes are int64 in Go tlog, in checkpoints parsed by Go, and in SQL BIGINT columns.
MAX_TREE_SIZE = (1 << 63) - 1

_sha256 = hashlib.sha256


class HashReader(Protocol):
    """Read access to stored hashes, by `stored_hash_index`: the only storage this module uses."""

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the hashes stored at `indexes`, in the same order."""
        ...


def leaf_hash(entry: bytes) -> bytes:
    """Return MTH({entry}) = SHA-256(0x00 || entry) (RFC 6962 §2.1). Raises nothing."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash SHA-256(0x01 || left || right) (RFC 6962 §2.1). Raises nothing."""
    return _sha256(b"\x01" + left + right).digest()


# ---------------------------------------------------------------------------------------------
# Stored-hash layout (Go tlog StoredHashIndex and friends)


def stored_hash_index(level: int, n: int) -> int:
    """Return the storage index of the n'th hash at height `level` (0 = leaf hashes).

    Raises ValueError if `level` or `n` is negative.
    """
    if level < 0 or n < 0:
        raise ValueError("negative level or index")
    # Level L's n'th hash is stored right after level 0's hash number ((n+1) << L) - 1, i.e. right
    # after the last leaf it covers, followed by the hashes of the lower levels completed with it.
    n = ((n + 1) << level) - 1
    # Level 0's n'th hash sits at n + n/2 + n/4 + ... = 2n - popcount(n).
    return 2 * n - n.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """Return the (level, n) that `stored_hash_index` maps to `index`.

    Raises ValueError if `index` is negative.
    """
    if index < 0:
        raise ValueError("negative stored hash index")
    # stored_hash_index(0, n) <= 2n, so the record that wrote `index` is at least index // 2 and
    # at most O(log index) records further on.
    n = index // 2
    index_n = stored_hash_index(0, n)
    assert index_n <= index, "bad math in split_stored_hash_index"
    while True:
        # Record n + 1 stores 1 + trailing_zeros(n + 2) hashes after record n's leaf hash; step
        # while record n + 1's leaf hash is still at or before `index`.
        x = index_n + 1 + _trailing_zeros(n + 1)
        if x > index:
            break
        n += 1
        index_n = x
    # `index` was written with record n: it is one of (0, n), (1, n >> 1), (2, n >> 2), ...
    level = index - index_n
    return level, n >> level


def stored_hash_count(n: int) -> int:
    """Return how many hashes a tree of n records stores (indexes 0 .. count - 1).

    Raises ValueError if `n` is negative.
    """
    if n < 0:
        raise ValueError("negative tree size")
    # Record r stores 1 + trailing_zeros(r + 1) hashes; summed over r < n that is 2n - popcount(n).
    return 2 * n - n.bit_count()


def stored_hashes_for_append(n: int, leaf: bytes, reader: HashReader) -> list[bytes]:
    """Return the hashes to store when appending record n whose leaf hash is `leaf`.

    They go at indexes stored_hash_count(n), stored_hash_count(n) + 1, ...: the leaf hash, then the
    root of every perfect subtree that record n completes, bottom-up. `reader` must already hold
    the hashes of records 0 .. n - 1. Raises Invalid for a negative `n` or a leaf that is not 32
    bytes, and whatever `reader` raises.
    """
    if not 0 <= n < MAX_TREE_SIZE:
        raise Invalid("tree size out of range")
    if len(leaf) != HASH_SIZE:
        raise Invalid("leaf hash must be 32 bytes")
    # Each trailing 1 bit of n closes a perfect subtree of height i whose left half is the stored
    # hash (i, (n >> i) - 1); read them all at once, in increasing index order.
    m = _trailing_zeros(n + 1)
    indexes = [stored_hash_index(i, (n >> i) - 1) for i in reversed(range(m))]
    old = _read(reader, indexes)
    hashes = [leaf]
    h = leaf
    for i in range(m):
        h = node_hash(old[m - 1 - i], h)
        hashes.append(h)
    return hashes


# ---------------------------------------------------------------------------------------------
# Tree hash and proofs


def tree_hash(size: int, reader: HashReader) -> bytes:
    """Return MTH of the first `size` records (EMPTY_ROOT for 0), with one `read_hashes` call.

    Raises Invalid for a size out of range, and whatever `reader` raises.
    """
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    hashes = _Cursor(_read(reader, _subtree_index(0, size, [])))
    h = _subtree_hash(0, size, hashes)
    hashes.finish()
    return h


def prove_inclusion(index: int, size: int, reader: HashReader) -> list[bytes]:
    """Return RFC 6962 PATH(index, D[0:size]): the audit path of record `index`, bottom-up.

    Raises Invalid unless 0 <= index < size <= MAX_TREE_SIZE, and whatever `reader` raises.
    """
    return prove_inclusions([index], size, reader)[0]


def prove_inclusions(indexes: Sequence[int], size: int, reader: HashReader) -> list[list[bytes]]:
    """Return PATH(i, D[0:size]) for each i of `indexes`, in order, with one call to `reader`.

    The proofs of a batch share most of their upper hashes, and a reader over a database pays per
    call: every stored hash they need is read at once. Raises Invalid unless
    0 <= i < size <= MAX_TREE_SIZE for every i, and whatever `reader` raises.
    """
    _check_size(size)
    if any(not 0 <= i < size for i in indexes):
        raise Invalid("leaf index out of range")
    needs = [_leaf_proof_index(0, size, i, []) for i in indexes]
    wanted = sorted({k for need in needs for k in need})
    found = dict(zip(wanted, _read(reader, wanted), strict=True))
    proofs = []
    for index, need in zip(indexes, needs, strict=True):
        hashes = _Cursor([found[k] for k in need])
        proofs.append(_leaf_proof(0, size, index, hashes))
        hashes.finish()
    return proofs


def prove_consistency(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """Return RFC 6962 PROOF(old_size, D[0:new_size]); empty if old_size is 0 or new_size.

    Raises Invalid unless 0 <= old_size <= new_size <= MAX_TREE_SIZE, and whatever `reader` raises.
    """
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise Invalid("old tree size out of range")
    if old_size in (0, new_size):
        return []
    hashes = _Cursor(_read(reader, _tree_proof_index(0, new_size, old_size, [])))
    proof = _tree_proof(0, new_size, old_size, hashes)
    hashes.finish()
    return proof


# ---------------------------------------------------------------------------------------------
# Internals: a direct port of tlog's subTreeIndex/subTreeHash, leafProofIndex/leafProof and
# treeProofIndex/treeProof. Each *_index function lists, in order, exactly the stored hashes its
# twin consumes.


class _Cursor:
    """Hands out hashes in order; `finish` asserts every hash was used."""

    __slots__ = ("_hashes", "_pos")

    def __init__(self, hashes: list[bytes]) -> None:
        self._hashes = hashes
        self._pos = 0

    def take(self, k: int) -> list[bytes]:
        end = self._pos + k
        assert end <= len(self._hashes), "bad index math: too few hashes"
        out = self._hashes[self._pos : end]
        self._pos = end
        return out

    def finish(self) -> None:
        assert self._pos == len(self._hashes), "bad index math: hashes left over"


def _trailing_zeros(x: int) -> int:
    return (x & -x).bit_length() - 1


def _split(n: int) -> int:
    """Return the largest power of two strictly below n (n >= 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def fold_right_edge(stack: list[bytes]) -> bytes:
    """Hash a right-edge list of perfect subtree roots (largest first) into one root. Raises nothing."""
    if not stack:
        return EMPTY_ROOT
    h = stack[-1]
    for left in reversed(stack[:-1]):
        h = node_hash(left, h)
    return h


def _read(reader: HashReader, indexes: list[int]) -> list[bytes]:
    if not indexes:
        return []
    hashes = reader.read_hashes(indexes)
    if len(hashes) != len(indexes) or any(len(h) != HASH_SIZE for h in hashes):
        raise Error("hash reader returned malformed hashes")
    return hashes


def _check_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise Invalid("tree size out of range")


def _subtree_index(lo: int, hi: int, need: list[int]) -> list[int]:
    # D[lo:hi] splits into perfect subtrees of decreasing size, each one stored hash.
    while lo < hi:
        k = 1 << ((hi - lo).bit_length() - 1)
        level = k.bit_length() - 1
        assert lo & (k - 1) == 0, "bad math in _subtree_index"
        need.append(stored_hash_index(level, lo >> level))
        lo += k
    return need


def _subtree_hash(lo: int, hi: int, hashes: _Cursor) -> bytes:
    # Consume the perfect subtrees listed by _subtree_index and hash them right to left, which is
    # exactly RFC 6962's split (the left part is always the largest perfect subtree).
    return fold_right_edge(hashes.take((hi - lo).bit_count()))


def _leaf_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    assert lo <= n < hi, "bad math in _leaf_proof_index"
    if lo + 1 == hi:
        return need
    k = _split(hi - lo)
    if n < lo + k:
        _leaf_proof_index(lo, lo + k, n, need)
        _subtree_index(lo + k, hi, need)
    else:
        _subtree_index(lo, lo + k, need)
        _leaf_proof_index(lo + k, hi, n, need)
    return need


def _leaf_proof(lo: int, hi: int, n: int, hashes: _Cursor) -> list[bytes]:
    assert lo <= n < hi, "bad math in _leaf_proof"
    if lo + 1 == hi:
        # The verifier knows the leaf hash; it is not part of the path.
        return []
    # Walk down towards n, recording the hash of the side not taken (RFC 6962 PATH).
    k = _split(hi - lo)
    if n < lo + k:
        proof = _leaf_proof(lo, lo + k, n, hashes)
        proof.append(_subtree_hash(lo + k, hi, hashes))
    else:
        sibling = _subtree_hash(lo, lo + k, hashes)
        proof = _leaf_proof(lo + k, hi, n, hashes)
        proof.append(sibling)
    return proof


def _tree_proof_index(lo: int, hi: int, n: int, need: list[int]) -> list[int]:
    assert lo < n <= hi, "bad math in _tree_proof_index"
    if n == hi:
        return need if lo == 0 else _subtree_index(lo, hi, need)
    k = _split(hi - lo)
    if n <= lo + k:
        _tree_proof_index(lo, lo + k, n, need)
        _subtree_index(lo + k, hi, need)
    else:
        _subtree_index(lo, lo + k, need)
        _tree_proof_index(lo + k, hi, n, need)
    return need


def _tree_proof(lo: int, hi: int, n: int, hashes: _Cursor) -> list[bytes]:
    assert lo < n <= hi, "bad math in _tree_proof"
    if n == hi:
        # Common ground. With lo == 0 this subtree IS the old tree, whose root the verifier has
        # (RFC 6962 SUBPROOF with b = true); otherwise its root is part of the proof.
        return [] if lo == 0 else [_subtree_hash(lo, hi, hashes)]
    k = _split(hi - lo)
    if n <= lo + k:
        proof = _tree_proof(lo, lo + k, n, hashes)
        proof.append(_subtree_hash(lo + k, hi, hashes))
    else:
        sibling = _subtree_hash(lo, lo + k, hashes)
        proof = _tree_proof(lo + k, hi, n, hashes)
        proof.append(sibling)
    return proof
