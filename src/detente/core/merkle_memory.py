"""Merkle trees held in memory: a root over a stream of records, and a whole stored-hash table.

`RootBuilder` keeps only the right edge of the tree (O(log n) hashes) and answers its root;
`MemoryHashStore` keeps every hash in `core.merkle`'s stored layout and serves proofs as a
`HashReader`. The offline auditor, the tests and the benchmarks use them; a node's log lives in
its database instead (`store.logtail`). `inclusion_paths` gives a small tree's root and every
leaf's path at once: a node signs a batch of receipts that way (`core.receipts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from detente.core.merkle import HASH_SIZE, fold_right_edge, leaf_hash, node_hash
from detente.errors import Invalid, NotFound

__all__ = ["MemoryHashStore", "RootBuilder", "inclusion_paths"]


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
        self._completed(h)
        # Each trailing 1 bit of n is a perfect subtree of the same height as h: merge them.
        m = n
        while m & 1:
            h = node_hash(stack.pop(), h)
            self._completed(h)
            m >>= 1
        stack.append(h)
        self._size = n + 1
        return n

    def _completed(self, subtree_root: bytes) -> None:
        """Called with the leaf hash, then with the root of each perfect subtree the record completes."""

    def root(self) -> bytes:
        """Return MTH of everything appended so far (EMPTY_ROOT if nothing). Raises nothing."""
        return fold_right_edge(self._stack)


class MemoryHashStore(RootBuilder):
    """An in-memory `HashReader` holding every stored hash in one list; append-only.

    Used by tests, the offline auditor and benchmarks. It is a `RootBuilder` that also keeps what
    each append completes, which is, in order, what `stored_hashes_for_append` returns (the tests
    check the two agree): no reads, about two SHA-256 calls per record.
    """

    __slots__ = ("_hashes",)

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        super().__init__()
        self._hashes: list[bytes] = []
        for entry in entries:
            self.append(entry)

    def _completed(self, subtree_root: bytes) -> None:
        self._hashes.append(subtree_root)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Return the hashes at `indexes`. Raises NotFound if an index is not stored."""
        hashes = self._hashes
        if indexes and (min(indexes) < 0 or max(indexes) >= len(hashes)):
            raise NotFound("no such stored hash")
        return [hashes[i] for i in indexes]


def inclusion_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Return MTH of the leaf hashes `leaves` and the inclusion proof PATH(m) of each (RFC 6962 §2.1.1).

    For small trees held whole, such as a batch of receipts: n log n hashes, against a
    `MemoryHashStore` and one `prove_inclusion` per leaf. Raises Invalid if `leaves` is empty or a
    hash is not 32 bytes.
    """
    if not leaves:
        raise Invalid("a tree of paths needs at least one leaf")
    if any(len(leaf) != HASH_SIZE for leaf in leaves):
        raise Invalid("leaf hash must be 32 bytes")
    return _paths(leaves, 0, len(leaves))


def _paths(leaves: Sequence[bytes], lo: int, hi: int) -> tuple[bytes, list[list[bytes]]]:
    if hi - lo == 1:
        return leaves[lo], [[]]
    k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two below the width
    left, left_paths = _paths(leaves, lo, lo + k)
    right, right_paths = _paths(leaves, lo + k, hi)
    # PATH(m, D[lo:hi]) is PATH(m, its half) followed by the other half's root.
    for path in left_paths:
        path.append(right)
    for path in right_paths:
        path.append(left)
    return node_hash(left, right), left_paths + right_paths
