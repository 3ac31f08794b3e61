"""C2SP tlog-tiles v0.1.0: tile paths, tile contents and entry bundles.

A tiled log publishes, besides its checkpoint, immutable files under `tile/`:

    tile/<L>/<N>[.p/<W>]        hash tile: W (default 256) concatenated 32-byte hashes
    tile/entries/<N>[.p/<W>]    entry bundle: W entries, each `uint16-BE length || entry`

L is the tile level, 0..63, in decimal without leading zeros. N is the tile index, written as
zero-padded 3-digit groups, every group but the last prefixed with `x` (1234067 -> `x001/x234/067`).
A partial tile has `.p/<W>` with 1 <= W <= 255; a full tile has no suffix.

Entry i of hash tile (L, N) is MTH(D[(N*256 + i) * 256**L : (N*256 + i + 1) * 256**L]): a leaf hash
at level 0, and at level L > 0 the root of a full tile of level L - 1. In the stored-hash layout of
`detente.core.merkle` those are the stored hashes at Merkle height 8*L. For a tree of size s, level L
has floor(s / 256**L) such hashes: that many // 256 full tiles, then one partial tile of width
floor(s / 256**L) % 256 if that is not 0. Empty tiles do not exist.

Parsing is strict: a path is accepted only if re-formatting what was parsed gives the same path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from detente.core.merkle import HASH_SIZE, MAX_TREE_SIZE, HashReader, node_hash, stored_hash_index
from detente.core.merkle import split_stored_hash_index as _split_index
from detente.errors import Error, Invalid, MalformedError, NotFound, TooLarge

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "entries_path",
    "entry_bundle",
    "entry_bundles_for_size",
    "hashes_from_tiles",
    "parse_entry_bundle",
    "parse_tile_path",
    "read_tile",
    "tile_path",
    "tile_width",
    "tiles_for_size",
]

TILE_HEIGHT = 8  # Merkle levels per tile level
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes (or entries) in a full tile
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # the length prefix is a uint16
# Tile indexes are bounded like tree sizes (int64); this also bounds the length of a path.
_MAX_INDEX = MAX_TREE_SIZE

# Shape only; numbers are then range-checked and the whole path re-formatted and compared, which
# rejects leading zeros (`x000/005`, `.p/07`, level `01`). `[0-9]`, never `\d`: `\d` also matches
# non-ASCII digits.
_TILE_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]{1,3}))?")
_MALFORMED_PATH = "malformed tile path"


def tile_path(level: int, n: int, width: int = TILE_WIDTH) -> str:
    """Return the path of hash tile (level, n) of `width` hashes, e.g. `tile/0/x001/x234/067`.

    Raises Invalid for a level outside 0..63, a negative or too large n, or a width outside 1..256.
    """
    if not 0 <= level <= MAX_LEVEL:
        raise Invalid("tile level out of range")
    return f"tile/{level}/{_index_path(n, width)}"


def entries_path(n: int, width: int = TILE_WIDTH) -> str:
    """Return the path of entry bundle n holding `width` entries, e.g. `tile/entries/003.p/232`.

    Raises Invalid for a negative or too large n, or a width outside 1..256.
    """
    return f"tile/entries/{_index_path(n, width)}"


def parse_tile_path(path: str) -> tuple[int, int, int, bool]:
    """Parse a tile or entry-bundle path into (level, n, width, is_entries).

    `level` is 0 for an entry bundle. Only the canonical form `tile_path`/`entries_path` produce is
    accepted. Raises MalformedError for anything else.
    """
    m = _TILE_PATH.fullmatch(path)
    if m is None:
        raise MalformedError(_MALFORMED_PATH)
    level_s, n_s, width_s = m.groups()
    is_entries = level_s == "entries"
    level = 0 if is_entries else int(level_s)
    n = int(n_s.replace("x", "").replace("/", ""))
    width = TILE_WIDTH if width_s is None else int(width_s)
    # A full tile never carries `.p/256`, and a partial tile is never empty.
    if level > MAX_LEVEL or n > _MAX_INDEX or not 0 < width <= TILE_WIDTH:
        raise MalformedError(_MALFORMED_PATH)
    if width_s is not None and width == TILE_WIDTH:
        raise MalformedError(_MALFORMED_PATH)
    canonical = entries_path(n, width) if is_entries else tile_path(level, n, width)
    if canonical != path:
        raise MalformedError(_MALFORMED_PATH)
    return level, n, width, is_entries


def tile_width(level: int, n: int, size: int) -> int:
    """Return the width of hash tile (level, n) in a tree of `size` (0 if it has no such tile).

    Entry bundle n has the same width as level-0 tile n. Raises Invalid for negative input.
    """
    if level < 0 or n < 0 or size < 0:
        raise Invalid("tile coordinates out of range")
    count = size >> (TILE_HEIGHT * level)  # hashes at this level
    return max(0, min(TILE_WIDTH, count - n * TILE_WIDTH))


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """List every hash tile (level, n, width) that a tree of `size` publishes, level by level.

    Full tiles come first on each level, then the partial one if any. Raises Invalid for a size out
    of range.
    """
    if not 0 <= size <= MAX_TREE_SIZE:
        raise Invalid("tree size out of range")
    tiles: list[tuple[int, int, int]] = []
    level = 0
    count = size
    while count > 0:
        full, rest = divmod(count, TILE_WIDTH)
        tiles.extend((level, n, TILE_WIDTH) for n in range(full))
        if rest:
            tiles.append((level, full, rest))
        level += 1
        count >>= TILE_HEIGHT
    return tiles


def entry_bundles_for_size(size: int) -> list[tuple[int, int]]:
    """List every entry bundle (n, width) that a tree of `size` publishes.

    Raises Invalid for a size out of range.
    """
    return [(n, width) for level, n, width in tiles_for_size(size) if level == 0]


def read_tile(level: int, n: int, width: int, reader: HashReader) -> bytes:
    """Return the contents of hash tile (level, n) of `width` hashes, with one `read_hashes` call.

    Raises Invalid for bad tile coordinates, Error if `reader` returns the wrong number or size of
    hashes, and whatever `reader` raises (NotFound from `MemoryHashStore` if the tree is too small
    for this tile).
    """
    tile_path(level, n, width)  # validates level, n and width
    height = TILE_HEIGHT * level
    start = n * TILE_WIDTH
    indexes = [stored_hash_index(height, start + i) for i in range(width)]
    hashes = reader.read_hashes(indexes)
    if len(hashes) != width or any(len(h) != HASH_SIZE for h in hashes):
        raise Error("hash reader returned malformed hashes")
    return b"".join(hashes)


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Encode 1..256 entries as an entry bundle: each entry prefixed by its uint16-BE length.

    Raises TooLarge for an entry over 65535 bytes, and Invalid for 0 or more than 256 entries.
    """
    if not 0 < len(entries) <= TILE_WIDTH:
        raise Invalid("an entry bundle holds 1 to 256 entries")
    parts: list[bytes] = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TooLarge("entry larger than 65535 bytes")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def parse_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Decode an entry bundle into its entries; if `width` is given, require exactly that many.

    Raises MalformedError for a truncated length or entry, no entries, more than 256 entries, or
    (with `width`) the wrong number of entries.
    """
    entries: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end or len(entries) == TILE_WIDTH:
            raise MalformedError("malformed entry bundle")
        size = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + size > end:
            raise MalformedError("malformed entry bundle")
        entries.append(bytes(data[pos : pos + size]))
        pos += size
    if not entries or (width is not None and len(entries) != width):
        raise MalformedError("malformed entry bundle")
    return entries


def hashes_from_tiles(tiles: Mapping[tuple[int, int], bytes]) -> HashReader:
    """Return a HashReader serving stored hashes out of hash tiles keyed by (level, n).

    Each value is the tile's data, full or partial. Hashes between tile levels are recomputed from
    the tile entries (Go tlog `HashFromTile`). Nothing is authenticated: check what is built from
    it (a root, a proof) against a signed checkpoint. Its `read_hashes` raises NotFound when a tile
    is missing or too narrow, and MalformedError when a tile's length is not a multiple of 32 or
    exceeds 256 hashes.
    """
    return _TileHashReader(tiles)


class _TileHashReader:
    __slots__ = ("_tiles",)

    def __init__(self, tiles: Mapping[tuple[int, int], bytes]) -> None:
        self._tiles = tiles

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self._read(index) for index in indexes]

    def _read(self, index: int) -> bytes:
        height, k = _split_index(index)
        level, sub = divmod(height, TILE_HEIGHT)
        # The stored hash (height, k) is the root of tile entries [k << sub, (k + 1) << sub) of the
        # level-`level` tile holding them; those 2**sub entries never straddle two tiles.
        first = k << sub
        n, first = divmod(first, TILE_WIDTH)
        data = self._tiles.get((level, n))
        if data is None:
            raise NotFound("no such tile")
        if len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
            raise MalformedError("malformed tile")
        last = first + (1 << sub)
        if last * HASH_SIZE > len(data):
            raise NotFound("tile too narrow")
        return _perfect_root(data[first * HASH_SIZE : last * HASH_SIZE])


def _perfect_root(data: bytes) -> bytes:
    """Return the root of the perfect subtree whose leaves are the 2**k hashes in `data`."""
    hashes = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _index_path(n: int, width: int) -> str:
    if not 0 <= n <= _MAX_INDEX:
        raise Invalid("tile index out of range")
    if not 0 < width <= TILE_WIDTH:
        raise Invalid("tile width out of range")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    path = "/".join(reversed(groups))
    return path if width == TILE_WIDTH else f"{path}.p/{width}"
