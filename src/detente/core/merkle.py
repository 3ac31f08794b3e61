"""RFC 6962 Merkle tree hashing, stored-hash layout, and inclusion and consistency proofs.

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

Proofs are checked with the algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
(consistency). Edge cases, decided here once:

- every hash (leaf, roots, proof elements) must be exactly 32 bytes;
- sizes and indexes must lie in 0 .. MAX_TREE_SIZE (signed 64-bit, as in Go and in SQL BIGINT);
- old_size == new_size: the proof must be empty and the two roots equal;
- old_size == 0: the proof must be empty and old_root must be EMPTY_ROOT (the C2SP tlog-witness
  rule: every tree extends the empty tree, whose checkpoint carries SHA-256("")).

Every verification failure raises `VerificationError` with a short flat message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from detente.errors import Error, Invalid, NotFound, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "HashReader",
    "MemoryHashStore",
    "RootBuilder",
    "leaf_hash",
    "node_hash",
    "prove_consistency",
    "prove_inclusion",
    "split_stored_hash_index",
    "stored_hash_count",
    "stored_hash_index",
    "stored_hashes_for_append",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Sizes and indexes are int64 in Go tlog, in checkpoints parsed by Go, and in SQL BIGINT columns.
MAX_TREE_SIZE = (1 << 63) - 1

_sha256 = hashlib.sha256
_PROOF_FAILED = "invalid transparency proof"
# A proof for a tree of at most 2**63 - 1 leaves has at most 63 (inclusion) or 64 (consistency)
# elements; refuse longer input before hashing any of it.
_MAX_PROOF_LEN = 64


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


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `proof` shows the leaf hash `leaf` at `index` in the tree of `size` with `root`.

    RFC 9162 §2.1.3.2. Raises VerificationError on any failure, including malformed input.
    """
    _check_hashes(leaf, root, proof)
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
    if sn != 0 or r != root:
        raise VerificationError(_PROOF_FAILED)


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


# ---------------------------------------------------------------------------------------------
# Append-only builders


class RootBuilder:
    """Computes MTH of a stream of records with O(log n) memory (a compact range / frontier).

    `_stack` holds the roots of the perfect subtrees that tile D[0:size], largest (leftmost) first:
    one per 1 bit of `size`.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """The number of records appended so far."""
        return self._size

    def append(self, entry: bytes) -> int:
        """Append a record (raw entry); return its index. Raises nothing."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a record by its leaf hash; return its index. Raises Invalid if not 32 bytes."""
        if len(leaf) != HASH_SIZE:
            raise Invalid("leaf hash must be 32 bytes")
        n = self._size
        stack = self._stack
        h = leaf
        # Each trailing 1 bit of n is a perfect subtree of the same height as h: merge them.
        m = n
        while m & 1:
            h = node_hash(stack.pop(), h)
            m >>= 1
        stack.append(h)
        self._size = n + 1
        return n

    def root(self) -> bytes:
        """Return MTH of everything appended so far (EMPTY_ROOT if nothing). Raises nothing."""
        return _fold(self._stack)


class MemoryHashStore:
    """An in-memory `HashReader` holding every stored hash in one list; append-only.

    Used by tests, the offline auditor and benchmarks. Appending keeps the frontier of
    `RootBuilder`, so it needs no reads and costs about two SHA-256 calls per record.
    """

    __slots__ = ("_hashes", "_size", "_stack")

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._hashes: list[bytes] = []
        self._stack: list[bytes] = []
        self._size = 0
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        """The number of records appended so far."""
        return self._size

    def append(self, entry: bytes) -> int:
        """Append a record (raw entry); return its index. Raises nothing."""
        return self.append_leaf_hash(_sha256(b"\x00" + entry).digest())

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a record by its leaf hash; return its index. Raises Invalid if not 32 bytes."""
        if len(leaf) != HASH_SIZE:
            raise Invalid("leaf hash must be 32 bytes")
        n = self._size
        hashes = self._hashes
        stack = self._stack
        h = leaf
        hashes.append(h)
        # Same frontier merge as RootBuilder; every merged root is also stored, in the order
        # stored_hashes_for_append returns them (the tests check the two agree).
        m = n
        while m & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            hashes.append(h)
            m >>= 1
        stack.append(h)
        self._size = n + 1
        return n

    def root(self) -> bytes:
        """Return MTH of everything appended so far (EMPTY_ROOT if nothing). Raises nothing."""
        return _fold(self._stack)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the hashes at `indexes`. Raises NotFound if an index is not stored."""
        hashes = self._hashes
        if indexes and (min(indexes) < 0 or max(indexes) >= len(hashes)):
            raise NotFound("no such stored hash")
        return [hashes[i] for i in indexes]


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


def _fold(stack: list[bytes]) -> bytes:
    """Hash a right-edge list of perfect subtree roots (largest first) into one root."""
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


def _check_hashes(a: bytes, b: bytes, proof: Sequence[bytes]) -> None:
    if len(proof) > _MAX_PROOF_LEN:
        raise VerificationError(_PROOF_FAILED)
    if len(a) != HASH_SIZE or len(b) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise VerificationError("hash must be 32 bytes")


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
    return _fold(hashes.take((hi - lo).bit_count()))


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
