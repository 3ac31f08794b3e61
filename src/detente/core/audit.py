"""The offline audit of a log export (`detente audit EXPORT --agreement FILE`).

Given only the files of an export (`node/export.py` writes them) and the auditor's own copy of the
agreement (and of each earlier agreement it amended, when the log spans amendments), it checks,
trusting nothing else:

1. the newest `checkpoint` and every checkpoint in `checkpoints.jsonl` carry a valid signature of
   the log's key as the agreement pins it, and every cosignature by another party (its pinned key
   as a cosignature/v1 key, type 0x04) verifies; the history ends with `checkpoint`
   (`core.audit_checkpoints`);
2. every other party has witnessed every entry: the newest checkpoint is cosigned by each of them.
   Entries beyond a party's newest cosignature rest on the log owner's word alone; they are a
   problem unless the auditor allows an unwitnessed tail (`core.audit_report` says why). The
   auditor may require only some of the other parties (`witnesses`): another's lag is a warning;
3. every entry of the entry bundles is an envelope in canonical form, under one of the agreements
   given (its hash), signed by the sending party's key as that agreement pins it, and sent or
   received by the log's party; the agreements the entries name but the auditor did not give are
   named in one hint (how many entries name each), and an earlier agreement no entry names is
   a warning;
4. the RFC 6962 tree recomputed from the entries (`RootBuilder`) has the root of every checkpoint
   at its size, and every hash tile equals the hashes recomputed from the entries; the roots are
   reported after the entry and tile problems, and those that follow from the first entry whose
   hash differs from the tiles in one line, so that `MAX_PROBLEMS` never hides that entry; an
   entry bundle that does not parse says why (empty, cut short inside entry N, N entries held);
5. each checkpoint is consistent with the one before it: an RFC 6962 consistency proof, built
   from the (now verified) tiles, verifies between every two successive checkpoints;
6. `export.json` agrees with the checkpoint, and, given the names of the export's files, none is
   there that the audit does not read (`core.audit_files`).

Every failure is a line naming what failed and where ("entry 17 (envelope …): signature does
not verify"). Reading is done through `read(path) -> bytes | None` (and the caller's list of file
names), so this module touches no database, file or network. Nothing here raises on bad input:
problems go into the `Report`.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from detente.core import audit_files, keys, merkle, merkle_memory, merkle_verify, tiles
from detente.core import envelope as envelope_mod
from detente.core.agreement import Agreement
from detente.core.audit_checkpoints import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    check_checkpoints,
    ensure_signers,
    require_witnesses,
)
from detente.core.audit_report import MAX_PROBLEMS, Report, Stop
from detente.errors import Error

__all__ = ["MAX_PROBLEMS", "PARALLEL_MIN", "Reader", "Report", "audit", "check_entries", "read_entry_bundle"]

Reader = Callable[[str], bytes | None]
PARALLEL_MIN = 20_000  # below this, starting worker processes costs more than it saves


class _Tiles:
    """Recomputes the hash tiles from the leaf hashes as they stream in, and compares each with the export."""

    def __init__(self, read: Reader, report: Report) -> None:
        self.read = read
        self.report = report
        self.buffers: list[list[bytes]] = []  # per level: the hashes of the tile being filled
        self.numbers: list[int] = []  # per level: the index N of that tile
        self.data: dict[tuple[int, int], bytes] = {}  # verified tiles, for the consistency proofs
        self.bad = 0
        self.first_bad_leaf: int | None = None  # the first entry whose hash differs from the level-0 tiles

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
        if level == 0 and self.first_bad_leaf is None:
            self.first_bad_leaf = n * tiles.TILE_WIDTH + first


def _report_roots(report: Report, sizes: list[int], first_bad_leaf: int | None) -> None:
    """Record the checkpoints whose root the entries do not give, after the entry and tile problems.

    A changed, dropped or moved entry changes the root of every tree that holds it: the mismatches
    from the first bad entry on follow from it, and one line says so (listed one by one, they would
    push the line naming that entry past `MAX_PROBLEMS`). A mismatch below it is a problem of its own.
    """
    own = [size for size in sizes if first_bad_leaf is None or size <= first_bad_leaf]
    for size in own:
        report.fail(f"checkpoint of size {size}: root does not match entries 0..{size - 1}")
    following = sizes[len(own) :]
    if len(following) == 1:
        report.fail(
            f"the checkpoint of size {following[0]} does not match the entries: "
            "it follows from the entry problems above"
        )
    elif following:
        report.fail(
            f"{len(following)} checkpoints from size {following[0]} on do not match the entries: "
            "they follow from the entry problems above"
        )


def read_entry_bundle(data: bytes, n: int, width: int, size: int) -> tuple[list[bytes], str | None]:
    """Return the entries of entry bundle `n` (`width` of them, in the tree of `size`) and what is wrong with it.

    A sound bundle gives all its entries and None. A damaged one gives the entries before the damage
    (each whole, length and bytes; at most `width`) and says what is wrong: it is empty, it is cut
    short inside entry N (numbered in the log), or it holds another number of entries than the tree
    needs. Raises nothing.
    """
    try:
        return tiles.parse_entry_bundle(data, width), None
    except Error:
        pass
    if not data:
        return [], "is empty"
    entries: list[bytes] = []
    count, pos = 0, 0
    while pos < len(data):
        entry = n * tiles.TILE_WIDTH + count
        if pos + 2 > len(data):
            return entries, f"entry {entry} is cut short (the bundle ends inside its length)"
        end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        if end > len(data):
            return entries, f"entry {entry} is cut short (the bundle ends inside it)"
        if count < width:
            entries.append(data[pos + 2 : end])
        pos, count = end, count + 1
    if count > tiles.TILE_WIDTH:
        return entries, f"holds {count} entries, more than the {tiles.TILE_WIDTH} a bundle may hold"
    return entries, f"holds {count} {'entry' if count == 1 else 'entries'}, the tree of size {size} needs {width}"


def _perfect_root(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _check_entry(report: Report, i: int, entry: bytes, owner: str, pinned: dict[str, dict[str, keys.Verifier]]) -> None:
    try:
        env = envelope_mod.parse(entry)
    except Error as exc:
        report.fail(f"entry {i}: not a valid envelope: {exc.detail}")
        return
    where = f"entry {i} (envelope {env.id})"
    report.agreements[env.data["agreement"]] += 1
    if env.raw != entry:
        report.fail(f"{where}: not in canonical JSON form (RFC 8785)")
    keyring = pinned.get(env.data["agreement"])
    if keyring is None:
        report.fail(f"{where}: agreement hash {env.data['agreement'][:12]}… is not the hash of an agreement given")
        return
    verifier = keyring.get(env.sender_party)
    if verifier is None:
        report.fail(f"{where}: sender party {env.sender_party!r} has no key in agreement {env.data['agreement'][:12]}…")
        return
    try:
        env.verify(verifier)
    except Error as exc:
        report.fail(f"{where}: signature check failed: {exc.detail} (sender {env.sender})")
    if owner not in (env.sender_party, env.recipient_party):
        report.fail(f"{where}: neither sent nor received by {owner}")
    report.senders[env.sender_party] += 1
    report.types[env.type] += 1


def check_entries(agreements: Sequence[Agreement], owner: str, start: int, entries: list[bytes]) -> Report:
    """Check the envelopes `entries`, numbered from `start`; return a report of problems and senders.

    Each envelope is checked under the agreement whose hash it names, among `agreements`. A
    module-level function, so that `audit` can run it in worker processes. Raises nothing.
    """
    report = Report()
    pinned: dict[str, dict[str, keys.Verifier]] = {}
    for agreement in agreements:
        keyring = pinned.setdefault(agreement.hash, {})
        for party in agreement.parties.values():
            try:
                keyring[party.id] = party.verifier()
            except Error:
                continue  # a party without a key: its envelopes fail as unsigned
    for k, entry in enumerate(entries):
        _check_entry(report, start + k, entry, owner, pinned)
    return report


def _checked(
    agreements: Sequence[Agreement], owner: str, bundles: Iterator[tuple[int, list[bytes]]], jobs: int
) -> Iterator[tuple[list[bytes], Report]]:
    """Yield each bundle's entries with their check, in order; checks run in `jobs` processes if > 1."""
    if jobs <= 1:
        for start, entries in bundles:
            yield entries, check_entries(agreements, owner, start, entries)
        return
    # Ed25519 and RFC 8785 dominate the audit: they run in worker processes while this one hashes.
    # A bounded window of bundles in flight keeps memory flat for any size of log.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        window: deque[tuple[list[bytes], Future[Report]]] = deque()
        for start, entries in bundles:
            window.append((entries, pool.submit(check_entries, agreements, owner, start, entries)))
            if len(window) > 4 * jobs:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


def audit(
    read: Reader,
    agreement: Agreement,
    jobs: int = 1,
    *,
    names: Iterable[str] | None = None,
    party: str | None = None,
    allow_unwitnessed: bool = False,
    earlier: Sequence[Agreement] = (),
    witnesses: Sequence[str] = (),
) -> Report:
    """Audit the export that `read` gives access to against `agreement`. Raises nothing.

    `agreement` is the one in force; `earlier`, the agreements it amended that the log also spans
    (each envelope names the hash it was sealed under; a rotated key verifies what it signed). The
    report's `hints` name the agreements entries name that were not given, and its `warnings` an
    earlier one that no entry names.

    With `jobs` > 1, a log of at least `PARALLEL_MIN` entries has its envelopes checked in that
    many worker processes. `names`, the path of every file in the export (relative, "/"-separated),
    lets the audit name the files it does not read; `party` is the party whose log the auditor
    expects; with `allow_unwitnessed`, entries not every other party witnessed are a warning, not
    a problem. `witnesses` names the other parties whose witnessing is required (empty: every
    one); a party not named that lags is a warning, and one that cannot witness this log (its
    owner, a party the agreement in force does not have) is a problem.
    """
    report = Report(unwitnessed_allowed=allow_unwitnessed)
    try:
        _audit(read, (agreement, *earlier), report, jobs, names, party, witnesses)
    except Stop:
        pass
    return report


def _need(read: Reader, report: Report, path: str) -> bytes:
    data = read(path)
    if data is None:
        report.fail(f"{path}: missing")
        raise Stop
    return data


def _audit(
    read: Reader,
    agreements: Sequence[Agreement],
    report: Report,
    jobs: int,
    names: Iterable[str] | None,
    party: str | None,
    witnesses: Sequence[str],
) -> None:
    agreement = agreements[0]
    latest = _need(read, report, CHECKPOINT_FILE)
    origin = latest.split(b"\n", 1)[0].decode("utf-8", "replace")
    owner = next((p for p in agreement.parties.values() if p.log_origin == origin), None)
    if owner is None:  # quoted: an unknown origin is the file's text, not ours to print as it is
        report.fail(f"checkpoint: origin {origin!r} is not the log of a party of this agreement")
        raise Stop
    report.origin, report.party = origin, owner.id
    if party is not None and party != owner.id:
        report.fail(f"checkpoint: this is the log of {owner.id} ({report.origin}), not of {party}")
        raise Stop
    history = read(HISTORY_FILE)
    signers = ensure_signers(report, agreements, owner)
    require_witnesses(report, witnesses, signers)
    roots = check_checkpoints(latest, history, report, signers)
    audit_files.check_manifest(report, read(audit_files.MANIFEST_FILE), history)
    audit_files.check_agreement_copy(report, read(audit_files.AGREEMENT_FILE), agreement)
    if names is not None:
        audit_files.check_names(report, names)

    # The entries: every envelope, the recomputed tree, the tiles.
    builder = merkle_memory.RootBuilder()
    tile_check = _Tiles(read, report)
    bad_roots: set[int] = set()
    report.reproduced[0] = merkle.EMPTY_ROOT
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        report.fail("checkpoint of size 0: root is not the empty tree's")
        bad_roots.add(0)

    def bundles() -> Iterator[tuple[int, list[bytes]]]:
        for n, width in tiles.entry_bundles_for_size(report.size):
            path = tiles.entries_path(n, width)
            entries, problem = read_entry_bundle(_need(read, report, path), n, width, report.size)
            if problem is not None:
                # As for a missing bundle, the audit stops: no root or tile from here on can be
                # recomputed (`detente log entries` lists the entries before the damage).
                report.fail(f"{path}: {problem}")
                raise Stop
            yield n * tiles.TILE_WIDTH, entries

    parallel = jobs if report.size >= PARALLEL_MIN else 1
    for bundle, checked in _checked(agreements, owner.id, bundles(), parallel):
        for problem in checked.problems:
            report.fail(problem)
        report.more_problems += checked.more_problems
        report.senders.update(checked.senders)
        report.types.update(checked.types)
        report.agreements.update(checked.agreements)
        for entry in bundle:
            leaf = merkle.leaf_hash(entry)
            builder.append_leaf_hash(leaf)
            tile_check.add(0, leaf)
            root = roots.get(builder.size)
            if root is not None:
                report.reproduced[builder.size] = builder.root()
                if root != report.reproduced[builder.size]:
                    bad_roots.add(builder.size)
    report.entries = builder.size
    report.check_agreements_named([(a.id, a.hash) for a in agreements])
    tile_check.finish()
    _report_roots(report, sorted(bad_roots - {0}), tile_check.first_bad_leaf)

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
