"""Unit tests for detente.core.tiles (C2SP tlog-tiles, reference/ledger.md §2.5)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from detente.core.merkle import leaf_hash, prove_consistency, prove_inclusion, stored_hash_count, tree_hash
from detente.core.merkle_memory import MemoryHashStore
from detente.core.merkle_verify import verify_inclusion
from detente.core.tiles import (
    entries_path,
    entry_bundle,
    entry_bundles_for_size,
    hashes_from_tiles,
    parse_entry_bundle,
    parse_tile_path,
    read_tile,
    tile_path,
    tile_width,
    tiles_for_size,
)
from detente.errors import Error, Invalid, MalformedError, NotFound, TooLarge

SIZE = 70000
ENTRIES = [b"entry %d" % i for i in range(SIZE)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
STORE = MemoryHashStore(ENTRIES)


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """Naive RFC 6962 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


# --- paths -----------------------------------------------------------------------------------

PATHS = [
    ((0, 0, 256), "tile/0/000"),
    ((0, 1234067, 256), "tile/0/x001/x234/067"),
    ((0, 3, 232), "tile/0/003.p/232"),
    ((1, 0, 3), "tile/1/000.p/3"),
    ((2, 1000, 1), "tile/2/x001/000.p/1"),
    ((63, 999, 255), "tile/63/999.p/255"),
    ((5, 1000000, 256), "tile/5/x001/x000/000"),
]


@pytest.mark.parametrize(("args", "path"), PATHS)
def test_tile_path(args: tuple[int, int, int], path: str) -> None:
    assert tile_path(*args) == path
    assert parse_tile_path(path) == (*args, False)


@pytest.mark.parametrize(
    ("n", "width", "path"),
    [
        (0, 256, "tile/entries/000"),
        (3, 232, "tile/entries/003.p/232"),
        (1234067, 256, "tile/entries/x001/x234/067"),
        (1000, 5, "tile/entries/x001/000.p/5"),
    ],
)
def test_entries_path(n: int, width: int, path: str) -> None:
    assert entries_path(n, width) == path
    assert parse_tile_path(path) == (0, n, width, True)


def test_tile_path_default_width() -> None:
    assert tile_path(0, 7) == "tile/0/007"
    assert entries_path(7) == "tile/entries/007"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tile/0/000/",
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/100/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile/x/000",
        "tile/data/000",
        "tile/8/0/000",  # Go sumdb's tile/H/L/N form
        "tile/0/x000/001",  # leading zero group
        "tile/0/x001",
        "tile/0/001/x001",
        "tile/0/X001/000",
        "tile/0/x1/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/257",
        "tile/0/000.p/07",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.p/1/",
        "tile/0/000.P/1",
        "tile/0/000\n",
        "tile/0/000.p/1\n",
        "tile/0/\u0661\u0662\u0663",  # Arabic-Indic digits are not digits here
        "tile/entries/000.p/256",
        "tile/entries/x000/000",
        "tile/entries/",
        "tile/entries",
        "tile/0/x009/x223/x372/x036/x854/x775/808",  # 2**63: beyond any int64 tree
        "tiles/0/000",
    ],
)
def test_parse_tile_path_rejects(path: str) -> None:
    with pytest.raises(MalformedError):
        parse_tile_path(path)


@pytest.mark.parametrize("args", [(-1, 0, 256), (64, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257), (0, 2**63, 256)])
def test_tile_path_rejects_bad_coordinates(args: tuple[int, int, int]) -> None:
    with pytest.raises(Invalid):
        tile_path(*args)


@pytest.mark.parametrize("args", [(-1, 256), (0, 0), (0, 300)])
def test_entries_path_rejects_bad_coordinates(args: tuple[int, int]) -> None:
    with pytest.raises(Invalid):
        entries_path(*args)


def test_tile_path_round_trip_many() -> None:
    for level in (0, 1, 7, 63):
        for n in [*range(0, 2100, 7), 999999, 10**18, 2**63 - 1]:
            for width in (1, 100, 255, 256):
                assert parse_tile_path(tile_path(level, n, width)) == (level, n, width, False)
                assert parse_tile_path(entries_path(n, width)) == (0, n, width, True)


# --- which tiles a tree publishes ------------------------------------------------------------


def test_tiles_for_size_1000() -> None:
    tiles = tiles_for_size(1000)
    assert [tile_path(*t) for t in tiles] == [
        "tile/0/000",
        "tile/0/001",
        "tile/0/002",
        "tile/0/003.p/232",
        "tile/1/000.p/3",
    ]
    assert [entries_path(*b) for b in entry_bundles_for_size(1000)] == [
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002",
        "tile/entries/003.p/232",
    ]


def test_tiles_for_size_70000() -> None:
    # The spec's own example: 273 full level-0 tiles, .p/112, one full level-1 tile, level-1 .p/17
    # and level-2 .p/1.
    tiles = tiles_for_size(70000)
    level0 = [t for t in tiles if t[0] == 0]
    assert level0[:273] == [(0, n, 256) for n in range(273)]
    assert level0[273:] == [(0, 273, 112)]
    assert [t for t in tiles if t[0] == 1] == [(1, 0, 256), (1, 1, 17)]
    assert [t for t in tiles if t[0] == 2] == [(2, 0, 1)]
    assert len(tiles) == 273 + 1 + 2 + 1
    assert tile_path(0, 273, 112) == "tile/0/273.p/112"


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 65535, 65536, 65537, 16777216, 2**63 - 1])
def test_tiles_for_size_agrees_with_tile_width(size: int) -> None:
    if size > 10**8:
        # Too many tiles to list; check the top of the tree only.
        assert tile_width(7, 0, size) == 127
        assert tile_width(8, 0, size) == 0
        return
    tiles = tiles_for_size(size)
    for level, n, width in tiles:
        assert tile_width(level, n, size) == width
        assert 0 < width <= 256
    # Nothing else: the next tile on each level and the next level are empty.
    levels = {level for level, _, _ in tiles}
    for level in levels:
        last = max(n for lv, n, _ in tiles if lv == level)
        assert tile_width(level, last + 1, size) == 0
    assert tile_width(len(levels), 0, size) == 0
    assert entry_bundles_for_size(size) == [(n, w) for lv, n, w in tiles if lv == 0]


def test_sizes_out_of_range() -> None:
    with pytest.raises(Invalid):
        tiles_for_size(-1)
    with pytest.raises(Invalid):
        tiles_for_size(2**63)
    with pytest.raises(Invalid):
        tile_width(0, -1, 10)


# --- tile contents ---------------------------------------------------------------------------


def tile_entry(level: int, n: int, i: int) -> bytes:
    """Entry i of tile (level, n), straight from the spec's formula."""
    span = 256**level
    start = (n * 256 + i) * span
    return ref_mth(LEAVES[start : start + span])


@pytest.mark.parametrize(
    ("level", "n", "width"),
    [(0, 0, 256), (0, 5, 256), (0, 273, 112), (1, 0, 256), (1, 1, 17), (2, 0, 1)],
)
def test_read_tile_matches_definition(level: int, n: int, width: int) -> None:
    data = read_tile(level, n, width, STORE)
    assert len(data) == 32 * width
    want = b"".join(tile_entry(level, n, i) for i in range(width))
    assert data == want


def test_partial_tile_is_prefix_of_full_tile() -> None:
    full = read_tile(0, 4, 256, STORE)
    for width in (1, 17, 255):
        assert read_tile(0, 4, width, STORE) == full[: 32 * width]


def test_read_tile_beyond_tree_is_not_found() -> None:
    with pytest.raises(NotFound):
        read_tile(0, 273, 113, STORE)
    with pytest.raises(NotFound):
        read_tile(2, 0, 2, STORE)
    with pytest.raises(Invalid):
        read_tile(0, 0, 0, STORE)


def _publish(store: MemoryHashStore, size: int) -> dict[tuple[int, int], bytes]:
    return {(level, n): read_tile(level, n, width, store) for level, n, width in tiles_for_size(size)}


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 1000, 65536, 65537, 70000])
def test_hashes_from_tiles_rebuild_proofs(size: int) -> None:
    reader = hashes_from_tiles(_publish(STORE, size))
    root = tree_hash(size, STORE)
    assert tree_hash(size, reader) == root
    for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1} & set(range(size))):
        proof = prove_inclusion(index, size, reader)
        assert proof == prove_inclusion(index, size, STORE)
        verify_inclusion(index, size, LEAVES[index], proof, root)
    for old in sorted({0, 1, 2, 255, 256, size // 2, size - 1, size} & set(range(size + 1))):
        assert prove_consistency(old, size, reader) == prove_consistency(old, size, STORE)


def test_hashes_from_tiles_serve_every_stored_hash() -> None:
    size = 1000
    reader = hashes_from_tiles(_publish(STORE, size))
    indexes = range(stored_hash_count(size))
    assert reader.read_hashes(indexes) == STORE.read_hashes(indexes)


def test_hashes_from_tiles_errors() -> None:
    tiles = _publish(STORE, 1000)
    reader = hashes_from_tiles(tiles)
    with pytest.raises(NotFound):  # level-1 tile 0 only has width 3
        tree_hash(1024, reader)
    missing = dict(tiles)
    del missing[(0, 1)]
    with pytest.raises(NotFound):
        prove_inclusion(300, 1000, hashes_from_tiles(missing))
    for bad in (b"\x00" * 33, b"\x00" * (32 * 257)):
        broken = dict(tiles)
        broken[(0, 1)] = bad
        with pytest.raises(MalformedError):
            prove_inclusion(300, 1000, hashes_from_tiles(broken))


# --- entry bundles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [[b""], [b"a"], [b"", b"", b""], [b"x" * 65535], ENTRIES[:256], [bytes([i]) * i for i in range(256)]],
)
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = entry_bundle(entries)
    assert parse_entry_bundle(data) == entries
    assert parse_entry_bundle(data, len(entries)) == entries
    assert len(data) == sum(2 + len(e) for e in entries)


def test_entry_bundle_layout() -> None:
    assert entry_bundle([b"ab", b"", b"c"]) == b"\x00\x02ab\x00\x00\x00\x01c"
    assert entry_bundle([b"x" * 300])[:2] == b"\x01\x2c"


def test_entry_bundle_rejects_bad_input() -> None:
    with pytest.raises(TooLarge):
        entry_bundle([b"x" * 65536])
    with pytest.raises(Invalid):
        entry_bundle([])
    with pytest.raises(Invalid):
        entry_bundle([b""] * 257)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no entries
        b"\x00",  # half a length
        b"\x00\x02a",  # entry shorter than its length
        b"\x00\x01a\x00",  # trailing half length
        b"\x00\x01a\x00\x05abc",  # truncated second entry
        b"\xff\xff" + b"x" * 65534,
        b"\x00\x00" * 257,  # more entries than a tile holds
    ],
)
def test_parse_entry_bundle_rejects(data: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_entry_bundle(data)


def test_parse_entry_bundle_rejects_every_truncation() -> None:
    data = entry_bundle([b"alpha", b"", b"gamma" * 10])
    for cut in range(len(data)):
        with pytest.raises(MalformedError):
            parse_entry_bundle(data[:cut], 3)


def test_parse_entry_bundle_checks_width() -> None:
    data = entry_bundle([b"a", b"b"])
    with pytest.raises(MalformedError):
        parse_entry_bundle(data, 1)
    with pytest.raises(MalformedError):
        parse_entry_bundle(data, 3)


def test_entry_bundle_of_published_tile_matches_leaves() -> None:
    # Entry bundle n, hashed leaf by leaf, is level-0 tile n.
    for n, width in entry_bundles_for_size(1000):
        bundle = entry_bundle(ENTRIES[n * 256 : n * 256 + width])
        leaves = [leaf_hash(e) for e in parse_entry_bundle(bundle, width)]
        assert b"".join(leaves) == read_tile(0, n, width, STORE)


def test_read_tile_rejects_misbehaving_reader() -> None:
    class Short:
        def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
            return [b"\x00" * 32] * (len(indexes) - 1)

    class Narrow:
        def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
            return [b"\x00" * 31] * len(indexes)

    for reader in (Short(), Narrow()):
        with pytest.raises(Error):
            read_tile(0, 0, 4, reader)
