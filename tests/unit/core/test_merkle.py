"""Unit tests for detente.core.merkle, after Go tlog's TestTree: exhaustive over small trees.

Every tree size 1..128 is compared against a naive recursive reference (RFC 6962 §2.1 MTH, PATH
and PROOF written as the RFC states them); every leaf and every older size is proven and verified;
then each proof element, each root and each size or index is corrupted and must be rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from detente.core import merkle
from detente.core.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_append,
    tree_hash,
)
from detente.core.merkle_memory import MemoryHashStore, RootBuilder, inclusion_paths
from detente.core.merkle_verify import inclusion_root, verify_consistency, verify_inclusion
from detente.errors import Error, Invalid, NotFound, VerificationError

MAX_N = 128
ENTRIES = [b"entry %d" % i for i in range(MAX_N + 2)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
# One store serves every size: a log's prefix of size n is the tree of size n.
STORE = MemoryHashStore(ENTRIES)


# --- naive RFC 6962 reference ---------------------------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


ROOTS = [ref_mth(LEAVES[:n]) for n in range(MAX_N + 2)]


def flipped(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


class CountingReader:
    """Wraps a reader and records every read_hashes call."""

    def __init__(self, inner: MemoryHashStore) -> None:
        self.inner = inner
        self.calls: list[list[int]] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        self.calls.append(list(indexes))
        return self.inner.read_hashes(indexes)


# --- hashing ---------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert HASH_SIZE == 32
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    # Domain separation: a leaf over the bytes of two children is not their node hash.
    assert leaf_hash(b"\x01" + b"a" * 32 + b"b" * 32) != node_hash(b"a" * 32, b"b" * 32)


# --- stored-hash layout ----------------------------------------------------------------------


def go_stored_hash_index(level: int, n: int) -> int:
    """Go tlog's StoredHashIndex, line for line."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def test_stored_hash_index_matches_go_loop() -> None:
    for level in range(20):
        for n in range(200):
            assert stored_hash_index(level, n) == go_stored_hash_index(level, n), (level, n)


def test_stored_hash_index_round_trip() -> None:
    seen = set()
    for index in range(20000):
        level, n = split_stored_hash_index(index)
        assert stored_hash_index(level, n) == index
        seen.add((level, n))
    assert len(seen) == 20000
    for level in range(40):
        for n in (0, 1, 2, 3, 1000, 123456789, (1 << 40) + 5):
            assert split_stored_hash_index(stored_hash_index(level, n)) == (level, n)


def test_stored_hash_count() -> None:
    assert stored_hash_count(0) == 0
    for n in range(1, 3000):
        # Go: StoredHashIndex(0, n-1) + 1, plus one per trailing 1 bit of n-1.
        want = stored_hash_index(0, n - 1) + 1
        i = n - 1
        while i & 1:
            want += 1
            i >>= 1
        assert stored_hash_count(n) == want, n


@pytest.mark.parametrize(
    ("func", "args"),
    [
        (stored_hash_index, (-1, 0)),
        (stored_hash_index, (0, -1)),
        (split_stored_hash_index, (-1,)),
        (stored_hash_count, (-1,)),
    ],
)
def test_layout_rejects_negative(func: object, args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        func(*args)  # type: ignore[operator]


class ListReader:
    """The simplest HashReader: a list filled through stored_hashes_for_append."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]


def test_stored_hashes_for_append_matches_memory_store() -> None:
    reader = ListReader()
    for n in range(300):
        assert len(reader.hashes) == stored_hash_count(n)
        reader.hashes.extend(stored_hashes_for_append(n, leaf_hash(b"r%d" % n), reader))
    store = MemoryHashStore(b"r%d" % n for n in range(300))
    assert reader.hashes == store.read_hashes(range(stored_hash_count(300)))


def test_stored_hashes_are_subtree_roots() -> None:
    # Every stored hash (level, k) is MTH of the 2**level leaves it covers.
    count = stored_hash_count(MAX_N)
    hashes = STORE.read_hashes(range(count))
    for index, h in enumerate(hashes):
        level, k = split_stored_hash_index(index)
        assert h == ref_mth(LEAVES[k << level : (k + 1) << level]), (index, level, k)


def test_stored_hashes_for_append_rejects_bad_input() -> None:
    with pytest.raises(Invalid):
        stored_hashes_for_append(-1, LEAVES[0], STORE)
    with pytest.raises(Invalid):
        stored_hashes_for_append(0, b"short", STORE)


# --- roots -----------------------------------------------------------------------------------


def test_empty_tree() -> None:
    assert tree_hash(0, STORE) == EMPTY_ROOT
    assert MemoryHashStore().root() == EMPTY_ROOT
    assert RootBuilder().root() == EMPTY_ROOT
    assert MemoryHashStore().size == 0


def test_roots_match_reference_at_every_size() -> None:
    store = MemoryHashStore()
    builder = RootBuilder()
    for n, entry in enumerate(ENTRIES[:MAX_N]):
        assert store.append(entry) == n
        assert builder.append(entry) == n
        assert store.size == builder.size == n + 1
        want = ROOTS[n + 1]
        assert store.root() == builder.root() == tree_hash(n + 1, store) == want, n + 1


def test_append_leaf_hash_equals_append() -> None:
    a, b = MemoryHashStore(), MemoryHashStore()
    builder = RootBuilder()
    for leaf, entry in zip(LEAVES[:40], ENTRIES[:40], strict=True):
        a.append(entry)
        b.append_leaf_hash(leaf)
        builder.append_leaf_hash(leaf)
    assert a.root() == b.root() == builder.root() == ROOTS[40]
    for bad in (b"", b"x" * 31, b"x" * 33):
        with pytest.raises(Invalid):
            b.append_leaf_hash(bad)
        with pytest.raises(Invalid):
            builder.append_leaf_hash(bad)


# --- exhaustive proofs over every size 1..128 -------------------------------------------------


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_exhaustive(n: int) -> None:
    root = ROOTS[n]
    for i in range(n):
        proof = prove_inclusion(i, n, STORE)
        assert proof == ref_path(i, LEAVES[:n]), (i, n)
        verify_inclusion(i, n, LEAVES[i], proof, root)

        bad: list[tuple[int, int, bytes, list[bytes], bytes]] = []
        for k in range(len(proof)):
            for bit in (0, 7):
                bad.append((i, n, LEAVES[i], [*proof[:k], flipped(proof[k], bit), *proof[k + 1 :]], root))
        bad.append((i, n, LEAVES[i], proof, flipped(root)))
        bad.append((i, n, flipped(LEAVES[i]), proof, root))
        bad.append((i, n, LEAVES[i], [*proof, root], root))  # one element too many
        if proof:
            bad.append((i, n, LEAVES[i], proof[:-1], root))  # one element too few
        if len(proof) > 1:
            bad.append((i, n, LEAVES[i], proof[::-1], root))
        for j in (i - 1, i + 1):  # another index, same leaf and proof
            if 0 <= j < n:
                bad.append((j, n, LEAVES[i], proof, root))
        # Another size, with THAT size's root: a checkpoint binds size and root together. (With
        # the original root a different size can verify: see test_inclusion_binds_size_via_root.)
        for m in (n - 1, n + 1):
            if i < m and prove_inclusion(i, m, STORE) != proof:
                bad.append((i, m, LEAVES[i], proof, ROOTS[m]))
        bad.append((i, n, LEAVES[i], proof, ROOTS[n - 1]))
        for args in bad:
            with pytest.raises(VerificationError):
                verify_inclusion(*args)


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_exhaustive(n: int) -> None:
    new_root = ROOTS[n]
    for m in range(n + 1):
        old_root = ROOTS[m]
        proof = prove_consistency(m, n, STORE)
        assert proof == ([] if m == 0 else ref_subproof(m, LEAVES[:n], True)), (m, n)
        verify_consistency(m, n, old_root, new_root, proof)

        bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = []
        for k in range(len(proof)):
            for bit in (0, 7):
                bad.append((m, n, old_root, new_root, [*proof[:k], flipped(proof[k], bit), *proof[k + 1 :]]))
        bad.append((m, n, flipped(old_root), new_root, proof))
        if m != 0:  # every tree extends the empty tree: from size 0 any new root is consistent
            bad.append((m, n, old_root, flipped(new_root), proof))
        bad.append((m, n, old_root, new_root, [*proof, new_root]))
        if proof:
            bad.append((m, n, old_root, new_root, proof[:-1]))
            bad.append((m, n, old_root, new_root, proof[1:]))
        if m != n:
            bad.append((m, n, new_root, old_root, proof))  # swapped roots
        # Other sizes, each with its own root, unless that is a true statement with this very
        # proof (from size 0 the empty proof is right for every new size).
        for m2, n2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
            if 0 <= m2 <= n2 and prove_consistency(m2, n2, STORE) != proof:
                bad.append((m2, n2, ROOTS[m2], ROOTS[n2], proof))
        for args in bad:
            with pytest.raises(VerificationError):
                verify_consistency(*args)


def test_inclusion_binds_size_via_root() -> None:
    # RFC 9162 §2.1.3.2 checks the path's shape, not the size itself: the proof of leaf 0 in the
    # 4-leaf tree also "verifies" for size 3 against the 4-leaf root. Callers must therefore take
    # (size, root) together from one signed checkpoint, never from two sources.
    proof = prove_inclusion(0, 4, STORE)
    verify_inclusion(0, 3, LEAVES[0], proof, ROOTS[4])
    with pytest.raises(VerificationError):
        verify_inclusion(0, 3, LEAVES[0], proof, ROOTS[3])


# --- one read per proof ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100, 128])
def test_each_proof_reads_once(n: int) -> None:
    for i in range(n):
        reader = CountingReader(STORE)
        proof = prove_inclusion(i, n, reader)
        assert len(reader.calls) == (1 if proof else 0)
        assert all(len(c) <= 2 * n.bit_length() for c in reader.calls)
    for m in range(n + 1):
        reader = CountingReader(STORE)
        proof = prove_consistency(m, n, reader)
        assert len(reader.calls) == (1 if proof else 0)
    reader = CountingReader(STORE)
    tree_hash(n, reader)
    assert len(reader.calls) == 1
    assert len(reader.calls[0]) == n.bit_count()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100, 128])
def test_a_batch_of_inclusion_proofs_reads_once_and_equals_the_single_proofs(n: int) -> None:
    indexes = [n - 1, 0, n // 2, n - 1]  # in any order, repeats allowed
    reader = CountingReader(STORE)
    proofs = merkle.prove_inclusions(indexes, n, reader)
    assert proofs == [prove_inclusion(i, n, STORE) for i in indexes]
    assert len(reader.calls) == (1 if any(proofs) else 0)
    assert all(len(c) == len(set(c)) for c in reader.calls)  # each stored hash asked for once
    for i, proof in zip(indexes, proofs, strict=True):
        verify_inclusion(i, n, LEAVES[i], proof, ROOTS[n])
    assert merkle.prove_inclusions([], n, reader) == []
    with pytest.raises(Invalid):
        merkle.prove_inclusions([0, n], n, STORE)


# --- edge cases and errors -------------------------------------------------------------------


def test_consistency_edge_cases() -> None:
    # old == new: empty proof and equal roots.
    verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(VerificationError):
        verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
    with pytest.raises(VerificationError):
        verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    # old == 0 (C2SP tlog-witness): empty proof and old_root == SHA-256(""), any valid new root.
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], [])
    with pytest.raises(VerificationError):
        verify_consistency(0, 7, ROOTS[1], ROOTS[7], [])
    with pytest.raises(VerificationError):
        verify_consistency(0, 0, ROOTS[1], ROOTS[1], [])
    with pytest.raises(VerificationError):
        verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], [ROOTS[7]])
    # old < new requires a non-empty proof.
    with pytest.raises(VerificationError):
        verify_consistency(3, 7, ROOTS[3], ROOTS[7], [])
    assert prove_consistency(0, 9, STORE) == []
    assert prove_consistency(9, 9, STORE) == []
    assert prove_consistency(0, 0, STORE) == []


@pytest.mark.parametrize(
    ("index", "size"),
    [(-1, 5), (5, 5), (6, 5), (0, 0), (0, -1), (0, MAX_TREE_SIZE + 1), (2**64 - 1, 1)],
)
def test_verify_inclusion_rejects_out_of_range(index: int, size: int) -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, LEAVES[0], [], ROOTS[1])


@pytest.mark.parametrize(("old", "new"), [(-1, 5), (6, 5), (1, 0), (0, -1), (5, MAX_TREE_SIZE + 1), (-2, -1)])
def test_verify_consistency_rejects_out_of_range(old: int, new: int) -> None:
    with pytest.raises(VerificationError):
        verify_consistency(old, new, ROOTS[1], ROOTS[1], [])


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, b"x" * 64])
def test_verify_rejects_hashes_not_32_bytes(bad: bytes) -> None:
    good = prove_inclusion(2, 5, STORE)
    cases: list[Callable[[], None]] = [
        lambda: verify_inclusion(2, 5, bad, good, ROOTS[5]),
        lambda: verify_inclusion(2, 5, LEAVES[2], good, bad),
        lambda: verify_inclusion(2, 5, LEAVES[2], [*good[:-1], bad], ROOTS[5]),
        lambda: verify_inclusion(0, 1, bad, [], bad),
        lambda: verify_consistency(1, 1, bad, bad, []),
        lambda: verify_consistency(0, 0, bad, bad, []),
        lambda: verify_consistency(0, 3, EMPTY_ROOT, bad, []),
        lambda: verify_consistency(3, 5, ROOTS[3], ROOTS[5], [*prove_consistency(3, 5, STORE), bad]),
    ]
    for case in cases:
        with pytest.raises(VerificationError):
            case()


def test_verify_rejects_overlong_proof_before_hashing() -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(0, 2, LEAVES[0], [LEAVES[1]] * 65, ROOTS[2])
    with pytest.raises(VerificationError):
        verify_consistency(1, 2, ROOTS[1], ROOTS[2], [LEAVES[1]] * 65)


def test_verification_error_message_is_flat() -> None:
    with pytest.raises(VerificationError) as exc:
        verify_inclusion(0, 2, LEAVES[0], [LEAVES[0]], ROOTS[2])
    assert exc.value.detail == "invalid transparency proof"


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0), (0, -1), (0, MAX_TREE_SIZE + 1)])
def test_prove_inclusion_rejects_bad_input(index: int, size: int) -> None:
    with pytest.raises(Invalid):
        prove_inclusion(index, size, STORE)


@pytest.mark.parametrize(("old", "new"), [(-1, 5), (6, 5), (0, -1), (1, MAX_TREE_SIZE + 1)])
def test_prove_consistency_rejects_bad_input(old: int, new: int) -> None:
    with pytest.raises(Invalid):
        prove_consistency(old, new, STORE)


def test_tree_hash_rejects_bad_size() -> None:
    with pytest.raises(Invalid):
        tree_hash(-1, STORE)


def test_proving_beyond_the_store_is_not_found() -> None:
    with pytest.raises(NotFound):
        tree_hash(MAX_N + 10, STORE)
    with pytest.raises(NotFound):
        prove_inclusion(0, MAX_N + 10, STORE)
    with pytest.raises(NotFound):
        prove_consistency(3, MAX_N + 10, STORE)
    with pytest.raises(NotFound):
        STORE.read_hashes([-1])
    assert STORE.read_hashes([]) == []


class ShortReader:
    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [b"\x00" * 32] * (len(indexes) - 1)


class WrongSizeReader:
    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [b"\x00" * 31] * len(indexes)


@pytest.mark.parametrize("reader", [ShortReader(), WrongSizeReader()])
def test_misbehaving_reader_is_an_error(reader: merkle.HashReader) -> None:
    with pytest.raises(Error):
        tree_hash(3, reader)
    with pytest.raises(Error):
        prove_inclusion(0, 3, reader)
    with pytest.raises(Error):
        prove_consistency(1, 3, reader)
    with pytest.raises(Error):
        stored_hashes_for_append(3, LEAVES[3], reader)


def test_large_tree_proof_lengths() -> None:
    # Proof lengths for a big tree come from the index math alone: check against RFC bounds with a
    # reader that returns a constant hash (values do not matter here, only how many are read).
    class Constant:
        def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
            return [LEAVES[0]] * len(indexes)

    for size in (10**9, 2**40, 2**40 + 1, MAX_TREE_SIZE):
        for index in (0, size // 3, size - 1):
            assert len(prove_inclusion(index, size, Constant())) <= (size - 1).bit_length()
        for old in (1, size // 2, size - 1):
            assert len(prove_consistency(old, size, Constant())) <= (size - 1).bit_length() + 1
    assert len(prove_inclusion(5, 10**9, Constant())) == 30


# --- a small tree held whole: every path at once (receipt batches) ---------------------------


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_paths_are_the_rfc_paths_and_root(n: int) -> None:
    root, paths = inclusion_paths(LEAVES[:n])
    assert root == ROOTS[n]
    assert paths == [ref_path(i, LEAVES[:n]) for i in range(n)]
    for i, path in enumerate(paths):
        assert inclusion_root(i, n, LEAVES[i], path) == root


def test_inclusion_root_refuses_paths_that_do_not_fit_the_tree() -> None:
    root, paths = inclusion_paths(LEAVES[:5])
    assert inclusion_root(4, 5, LEAVES[4], paths[4]) == root
    for index, size, path in (
        (0, 5, paths[0][:-1]),  # one element too few
        (0, 5, [*paths[0], root]),  # one element too many
        (5, 5, paths[4]),  # index past the tree
        (-1, 5, paths[0]),
        (0, 0, []),
    ):
        with pytest.raises(VerificationError):
            inclusion_root(index, size, LEAVES[max(index, 0) % 5], path)
    with pytest.raises(VerificationError, match="32 bytes"):
        inclusion_root(0, 2, LEAVES[0], [b"short"])


def test_inclusion_paths_refuses_no_leaves_and_bad_hashes() -> None:
    with pytest.raises(Invalid, match="at least one leaf"):
        inclusion_paths([])
    with pytest.raises(Invalid, match="32 bytes"):
        inclusion_paths([LEAVES[0], b"short"])
