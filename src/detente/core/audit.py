"""The offline audit of a log export (`detente audit EXPORT --agreement FILE`).

Given only the files of an export (`node/export.py` writes them) and the auditor's own copy of the
agreement, it checks, trusting nothing else:

1. the newest `checkpoint` and every checkpoint in `checkpoints.jsonl` carry a valid signature of
   the log's key as the agreement pins it, and every cosignature by another party (its pinned key
   as a cosignature/v1 key, type 0x04) verifies;
2. every entry of the entry bundles is an envelope in canonical form, under this agreement (its
   hash), signed by the sending party's pinned key, and sent or received by the log's party;
3. the RFC 6962 tree recomputed from the entries (`RootBuilder`) has the root of every checkpoint
   at its size, and every hash tile equals the hashes recomputed from the entries;
4. each checkpoint is consistent with the one before it: an RFC 6962 consistency proof, built
   from the (now verified) tiles, verifies between every two successive checkpoints.

Every failure is a line naming what failed and where ("entry 17 (envelope …): signature does
not verify"). Reading is done through `read(path) -> bytes | None`, so this module touches no
database and no network. Nothing here raises on bad input: problems go into the `Report`.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from detente.core import envelope as envelope_mod
from detente.core import keys, merkle, merkle_memory, merkle_verify, tiles
from detente.core.agreement import Agreement
from detente.core.checkpoint import open_checkpoint
from detente.errors import Error

Reader = Callable[[str], bytes | None]
MAX_PROBLEMS = 50
PARALLEL_MIN = 20_000  # below this, starting worker processes costs more than it saves


@dataclass
class Report:
    """What the audit verified, and every problem it found (empty: the export is sound)."""

    origin: str = ""
    party: str = ""
    size: int = 0
    root: bytes = b""
    entries: int = 0
    senders: Counter[str] = field(default_factory=Counter)
    tiles: int = 0
    checkpoints: int = 0
    consistency_proofs: int = 0
    cosignatures: Counter[str] = field(default_factory=Counter)
    newest_cosigned: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        """Record a problem (the first `MAX_PROBLEMS` are kept, the rest counted)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        else:
            self.more_problems += 1


class _Stop(Exception):
    """The audit cannot go on (a missing or unusable file); the problem is already recorded."""


def _open(
    report: Report, data: bytes, where: str, log_key: keys.Verifier, witnesses: list[keys.Verifier]
) -> tuple[int, bytes, list[str]] | None:
    """Verify one checkpoint note; return (size, root, cosigning witness names) or record why not."""
    try:
        cp, _, cosigned = open_checkpoint(data, log_key, witnesses)
    except Error as exc:
        report.fail(f"{where}: {exc.detail}")
        return None
    return cp.size, cp.root, sorted(cosigned)


class _Tiles:
    """Recomputes the hash tiles from the leaf hashes as they stream in, and compares each with the export."""

    def __init__(self, read: Reader, report: Report) -> None:
        self.read = read
        self.report = report
        self.buffers: list[list[bytes]] = []  # per level: the hashes of the tile being filled
        self.numbers: list[int] = []  # per level: the index N of that tile
        self.data: dict[tuple[int, int], bytes] = {}  # verified tiles, for the consistency proofs
        self.bad = 0

    def add(self, level: int, h: bytes) -> None:
        """Add the next hash of `level`; a full tile is checked and its root goes one level up."""
        if len(self.buffers) <= level:
            self.buffers.append([])
            self.numbers.append(0)
        buf = self.buffers[level]
        buf.append(h)
        if len(buf) == tiles.TILE_WIDTH:
            self._check(level, self.numbers[level], buf)
            self.buffers[level] = []
            self.numbers[level] += 1
            self.add(level + 1, _perfect_root(buf))

    def finish(self) -> None:
        """Check the partial tiles left at the end."""
        for level, buf in enumerate(self.buffers):
            if buf:
                self._check(level, self.numbers[level], buf)

    def _check(self, level: int, n: int, buf: list[bytes]) -> None:
        path = tiles.tile_path(level, n, len(buf))
        data = self.read(path)
        if data == b"".join(buf):
            self.report.tiles += 1
            self.data[(level, n)] = data
            return
        self.bad += 1
        if data is None:
            self.report.fail(f"{path}: missing")
            return
        width = merkle.HASH_SIZE
        first = next((i for i, h in enumerate(buf) if data[i * width : (i + 1) * width] != h), len(buf))
        self.report.fail(f"{path}: hash {first} does not match the entries")


def _perfect_root(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _check_entry(
    report: Report, i: int, entry: bytes, agreement: Agreement, owner: str, pinned: dict[str, keys.Verifier]
) -> None:
    try:
        env = envelope_mod.parse(entry)
    except Error as exc:
        report.fail(f"entry {i}: not a valid envelope: {exc.detail}")
        return
    where = f"entry {i} (envelope {env.id})"
    if env.raw != entry:
        report.fail(f"{where}: not in canonical JSON form (RFC 8785)")
    if env.data["agreement"] != agreement.hash:
        report.fail(f"{where}: agreement hash {env.data['agreement'][:12]}… is not this agreement's")
    verifier = pinned.get(env.sender_party)
    if verifier is None:
        report.fail(f"{where}: sender party {env.sender_party!r} has no key in the agreement")
        return
    try:
        env.verify(verifier)
    except Error as exc:
        report.fail(f"{where}: signature check failed: {exc.detail} (sender {env.sender})")
    if owner not in (env.sender_party, env.recipient_party):
        report.fail(f"{where}: neither sent nor received by {owner}")
    report.senders[env.sender_party] += 1


def check_entries(agreement: Agreement, owner: str, start: int, entries: list[bytes]) -> Report:
    """Check the envelopes `entries`, numbered from `start`; return a report of problems and senders.

    A module-level function, so that `audit` can run it in worker processes. Raises nothing.
    """
    report = Report()
    pinned: dict[str, keys.Verifier] = {}
    for party in agreement.parties.values():
        try:
            pinned[party.id] = party.verifier()
        except Error:
            continue  # a party without a key: its envelopes fail as unsigned
    for k, entry in enumerate(entries):
        _check_entry(report, start + k, entry, agreement, owner, pinned)
    return report


def _checked(
    agreement: Agreement, owner: str, bundles: Iterator[tuple[int, list[bytes]]], jobs: int
) -> Iterator[tuple[list[bytes], Report]]:
    """Yield each bundle's entries with their check, in order; checks run in `jobs` processes if > 1."""
    if jobs <= 1:
        for start, entries in bundles:
            yield entries, check_entries(agreement, owner, start, entries)
        return
    # Ed25519 and RFC 8785 dominate the audit: they run in worker processes while this one hashes.
    # A bounded window of bundles in flight keeps memory flat for any size of log.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        window: deque[tuple[list[bytes], Future[Report]]] = deque()
        for start, entries in bundles:
            window.append((entries, pool.submit(check_entries, agreement, owner, start, entries)))
            if len(window) > 4 * jobs:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


def audit(read: Reader, agreement: Agreement, jobs: int = 1) -> Report:
    """Audit the export that `read` gives access to against `agreement`. Raises nothing.

    With `jobs` > 1, a log of at least `PARALLEL_MIN` entries has its envelopes checked in that
    many worker processes.
    """
    report = Report()
    try:
        _audit(read, agreement, report, jobs)
    except _Stop:
        pass
    return report


def _need(read: Reader, report: Report, path: str) -> bytes:
    data = read(path)
    if data is None:
        report.fail(f"{path}: missing")
        raise _Stop
    return data


def _audit(read: Reader, agreement: Agreement, report: Report, jobs: int) -> None:
    latest = _need(read, report, "checkpoint")
    report.origin = latest.split(b"\n", 1)[0].decode("utf-8", "replace")
    owner = next((p for p in agreement.parties.values() if p.log_origin == report.origin), None)
    if owner is None:
        report.fail(f"checkpoint: origin {report.origin!r} is not the log of a party of this agreement")
        raise _Stop
    report.party = owner.id
    log_key = owner.verifier()
    witnesses = [p.verifier().with_alg(keys.ALG_COSIGNATURE_V1) for p in agreement.peers(owner.id)]
    opened = _open(report, latest, "checkpoint", log_key, witnesses)
    if opened is None:
        raise _Stop
    report.size, report.root, _ = opened

    # The checkpoint history: sizes increase, and the newest is the `checkpoint` file.
    roots: dict[int, bytes] = {}
    for number, line in enumerate(_need(read, report, "checkpoints.jsonl").decode("utf-8", "replace").splitlines()):
        try:
            item = json.loads(line)
            size, note = int(item["size"]), str(item["note"]).encode()
        except (ValueError, KeyError, TypeError):
            report.fail(f"checkpoints.jsonl line {number + 1}: malformed")
            continue
        got = _open(report, note, f"checkpoint of size {size}", log_key, witnesses)
        if got is None:
            continue
        if got[0] != size or (roots and size <= max(roots)) or size > report.size:
            report.fail(f"checkpoints.jsonl line {number + 1}: size {got[0]} out of order or beyond the export")
            continue
        roots[size] = got[1]
        report.checkpoints += 1
        for name in got[2]:
            report.cosignatures[name] += 1
            report.newest_cosigned[name] = size
    if roots.get(report.size, report.root) != report.root:
        report.fail(f"checkpoint: two different roots signed for size {report.size}")
    roots.setdefault(report.size, report.root)
    if not report.newest_cosigned:
        report.warnings.append("no checkpoint in the export is cosigned by a witness")

    # The entries: every envelope, the recomputed tree, the tiles.
    builder = merkle_memory.RootBuilder()
    tile_check = _Tiles(read, report)
    bad_roots: set[int] = set()
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        report.fail("checkpoint of size 0: root is not the empty tree's")
        bad_roots.add(0)

    def bundles() -> Iterator[tuple[int, list[bytes]]]:
        for n, width in tiles.entry_bundles_for_size(report.size):
            path = tiles.entries_path(n, width)
            data = _need(read, report, path)
            try:
                entries = tiles.parse_entry_bundle(data, width)
            except Error as exc:
                report.fail(f"{path}: {exc.detail}")
                raise _Stop from exc
            yield n * tiles.TILE_WIDTH, entries

    parallel = jobs if report.size >= PARALLEL_MIN else 1
    for bundle, checked in _checked(agreement, owner.id, bundles(), parallel):
        for problem in checked.problems:
            report.fail(problem)
        report.more_problems += checked.more_problems
        report.senders.update(checked.senders)
        for entry in bundle:
            leaf = merkle.leaf_hash(entry)
            builder.append_leaf_hash(leaf)
            tile_check.add(0, leaf)
            root = roots.get(builder.size)
            if root is not None and root != builder.root():
                report.fail(f"checkpoint of size {builder.size}: root does not match entries 0..{builder.size - 1}")
                bad_roots.add(builder.size)
    report.entries = builder.size
    tile_check.finish()

    # Consistency between successive checkpoints, proven from the verified tiles.
    if tile_check.bad:
        report.fail("consistency proofs not checked: the hash tiles do not match the entries")
        return
    hashes = tiles.hashes_from_tiles(tile_check.data)
    sizes = sorted(roots)
    for old, new in zip(sizes, sizes[1:], strict=False):
        if old in bad_roots or new in bad_roots:
            continue
        try:
            proof = merkle.prove_consistency(old, new, hashes)
            merkle_verify.verify_consistency(old, new, roots[old], roots[new], proof)
        except Error as exc:
            report.fail(f"checkpoints of sizes {old} and {new}: not consistent: {exc.detail}")
            continue
        report.consistency_proofs += 1
