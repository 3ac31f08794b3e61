"""The audit of an export's checkpoints: the newest, its history, and who witnessed what.

`checkpoint` is the newest checkpoint of the log; `checkpoints.jsonl` is every checkpoint the node
signed up to it, oldest first, one JSON object a line, `{"size": <JSON integer>, "note": "<note>"}`.
`check_checkpoints` verifies them and returns the roots the entries must produce:

- every note carries a valid signature of the log's key (the agreement pins it); each cosignature
  by another party's key (type 0x04) must verify too, and a failure names that signer;
- each history line is a JSON object with exactly those two keys, its size a JSON integer equal to
  its note's size; sizes strictly increase; a malformed line is a problem naming its line number;
- the history is not empty and its last checkpoint is `checkpoint` (same size and root): an export
  cut short of its newest checkpoint, or whose newest checkpoint was swapped, fails;
- each other party's newest cosigned size is recorded (`Report.witnessed`), counting the
  cosignatures of `checkpoint` itself, and the entries beyond it are named: a problem unless the
  auditor allowed an unwitnessed tail, then a warning (`Report.unwitnessed`). A log with entries
  of which no part is witnessed by every party fails even then: there is no witnessed prefix for
  the tail to follow (`NOTHING_WITNESSED`);
- when the auditor names the witnesses it requires (`require_witnesses`), "every party" above
  reads "every required witness", and another party's lag is a warning
  (`Report.unwitnessed_not_required`); a witness named that is the log's own party, or no other
  party of the agreement in force, is a problem.

Deleting a line in the middle (or the first) of the history leaves a history that verifies; it
loses evidence but hides nothing the witnessing does not already bind: the newest checkpoint's
cosignatures vouch for the whole tree. `export.json` counts the lines, which catches an accidental
loss (`core.audit_files`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detente.core import keys
from detente.core.agreement import Agreement, Party
from detente.core.audit_report import Report, Stop
from detente.core.checkpoint import MAX_SIZE, parse_checkpoint
from detente.core.note import Note, open_note, parse_note, signature_for
from detente.errors import Error, MalformedError, VerificationError

CHECKPOINT_FILE = "checkpoint"
HISTORY_PROBLEMS = 10  # listed from checkpoints.jsonl, so that the entries' problems are listed too
HISTORY_FILE = "checkpoints.jsonl"
NOTHING_WITNESSED = (
    "no checkpoint of this log is cosigned by every party: nothing in it is proven to them "
    "(--allow-unwitnessed accepts an unwitnessed tail, not a log no one witnessed)"
)


@dataclass(frozen=True)
class Signers:
    """The log's party and keys, and each other party's cosignature/v1 keys, as the agreements pin them.

    The log may span amendments of the agreement; a key rotation (an amendment, DESIGN.md §5) gives
    a party a key per era, and a signature by any key an agreement the auditor gave pinned counts.
    The witnesses are the other parties of the agreement in force (the first), who must cosign the
    newest checkpoint.
    """

    party: str
    log_keys: tuple[keys.Verifier, ...]
    witnesses: dict[str, tuple[keys.Verifier, ...]]  # party id -> its keys as cosignature/v1 (0x04) keys

    @property
    def log_name(self) -> str:
        return self.log_keys[0].name

    @classmethod
    def of(cls, agreements: Sequence[Agreement], owner: Party) -> Signers:
        """Return the keys of `owner`'s log. Raises `Invalid` if an agreement pins no key for a party."""
        witnesses = {
            p.id: tuple(k.with_alg(keys.ALG_COSIGNATURE_V1) for k in _keys_of(agreements, p.id))
            for p in agreements[0].peers(owner.id)
        }
        return cls(owner.id, _keys_of(agreements, owner.id), witnesses)


def _keys_of(agreements: Sequence[Agreement], party: str) -> tuple[keys.Verifier, ...]:
    found: dict[str, keys.Verifier] = {}
    for agreement in agreements:
        if party in agreement.parties:
            found.setdefault(agreement.parties[party].vkey, agreement.parties[party].verifier())
    return tuple(found.values())


@dataclass(frozen=True)
class Opened:
    """A verified checkpoint: its size, its root, and the parties whose cosignature verified."""

    size: int
    root: bytes
    cosigners: frozenset[str]


def open_named(report: Report, data: bytes, where: str, signers: Signers) -> Opened | None:
    """Verify one checkpoint note; return it, or None after recording why it cannot be used.

    Unlike `checkpoint.open_checkpoint`, each signature is checked alone, so that a failure names
    its signer. A cosignature that does not verify is a problem but leaves the checkpoint usable
    (the log's signature vouches for its size and root); that party is not counted as a cosigner.
    """
    try:
        note = parse_note(data)
        cp = parse_checkpoint(note.text)
    except MalformedError as exc:
        report.fail(f"{where}: {exc.detail}")
        return None
    if cp.origin != signers.log_name:
        report.fail(f"{where}: origin {cp.origin!r} is not {signers.party}'s log ({signers.log_name})")
        return None
    signed = [key for key in signers.log_keys if signature_for(note, key) is not None]
    if not signed:
        report.fail(
            f"{where}: not signed by {signers.party}'s log key ({signers.log_name}){_signed_instead(note, signers)}"
        )
        _hint_rotation(report, note, signers, newest=where == CHECKPOINT_FILE)
        return None
    failed = [key for key in signed if not _verifies(note, key)]
    for key in failed:
        report.fail(f"{where}: the signature of {signers.party}'s log key ({key.name}) does not verify")
    if failed:
        return None
    cosigners: set[str] = set()
    for party, witness_keys in sorted(signers.witnesses.items()):
        for witness in witness_keys:
            if signature_for(note, witness) is None:
                continue  # not cosigned with this key: the witnessing rule counts that, not a problem here
            if _verifies(note, witness):
                cosigners.add(party)
            else:
                report.fail(f"{where}: the cosignature of {party} ({witness.name}) does not verify")
    return Opened(cp.size, cp.root, frozenset(cosigners))


def _other_key_ids(note: Note, signers: Signers) -> list[str]:
    """Return, in hex, the key id of each signature line of `note` under the log's name (none verified)."""
    return [sig.key_id.hex() for sig in note.signatures if sig.name == signers.log_name]


def _signed_instead(note: Note, signers: Signers) -> str:
    """Return what signed a note none of the log's pinned keys signed: ": signed by key …, the agreement pins …"."""
    pinned = [key.key_id.hex() for key in signers.log_keys]
    pins = f"the agreement pins key {pinned[0]}" if len(pinned) == 1 else f"the agreements pin keys {', '.join(pinned)}"
    others = _other_key_ids(note, signers)
    if not others:
        return f": it carries no signature of {signers.log_name} ({pins})"
    return f": signed by key {', '.join(others)}, {pins}"


def _hint_rotation(report: Report, note: Note, signers: Signers, *, newest: bool) -> None:
    """Add, once per key, the hint that a key no agreement given pins may be the other side of a rotation."""
    for key_id in _other_key_ids(note, signers):
        # A key rotation is an amendment: the key that signed may be the one the earlier (or, for the
        # newest checkpoint, the later) agreement pins, which the auditor did not give.
        also = " (and the agreement in force after it with --agreement)" if newest else ""
        hint = (
            f"checkpoints signed by {signers.log_name} key {key_id}, which no agreement given pins: if the log "
            f"spans an amendment that rotated this key, give the agreement in force before it with --earlier{also}"
        )
        if not any(h.startswith(hint.split(":", 1)[0]) for h in report.hints):
            report.hints.append(hint)


def _verifies(note: Note, verifier: keys.Verifier) -> bool:
    """Return whether the signature line of `verifier` in `note` (there is one) verifies."""
    try:
        open_note(note, [verifier])
    except (VerificationError, ValueError):  # ValueError: a pinned key of a type notes cannot use
        return False
    return True


def parse_history_line(line: bytes) -> tuple[int, bytes] | str:
    """Return (size, note bytes) of one `checkpoints.jsonl` line, or what is wrong with it.

    The line must be a JSON object with exactly the keys "size" (a JSON integer, 0..2^63-1: not
    1.0, not 1e400, not true) and "note" (a string). Raises nothing.
    """
    try:
        text = line.decode("utf-8")  # json.loads would also guess UTF-16 and UTF-32
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        item = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):  # ValueError: bad JSON, a repeated key, a huge integer literal
        return "not JSON"
    if not isinstance(item, dict) or set(item) != {"size", "note"}:
        return 'not an object with exactly the keys "size" and "note"'
    size, note = item["size"], item["note"]
    if type(size) is not int or not 0 <= size <= MAX_SIZE:  # bool is an int subclass: refused too
        return '"size" is not a JSON integer from 0 to 2^63-1'
    if not isinstance(note, str):
        return '"note" is not a string'
    try:
        return size, note.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON ("\ud800")
        return '"note" is not valid Unicode'


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("repeated key")
    return obj


def check_checkpoints(latest: bytes, history: bytes | None, report: Report, signers: Signers) -> dict[int, bytes]:
    """Verify `checkpoint` and `checkpoints.jsonl`; return {size: root} of every usable checkpoint.

    Fills the report's size, root, checkpoint and cosignature counts and `witnessed`, and records
    each problem (or, if `report.unwitnessed_allowed`, the unwitnessed tail as warnings, unless
    nothing at all is witnessed by every required witness: that is `NOTHING_WITNESSED`, a problem);
    a party `report.required` leaves out that lags is a warning. Raises `Stop` if `checkpoint`
    cannot be used (there is then no tree to check).
    """
    newest = open_named(report, latest, CHECKPOINT_FILE, signers)
    if newest is None:
        raise Stop
    report.size, report.root = newest.size, newest.root
    cosigners: dict[int, set[str]] = {newest.size: set(newest.cosigners)}
    for party in newest.cosigners:
        report.cosigned.setdefault(party, set()).add((newest.size, newest.root))
    roots: dict[int, bytes] = {}
    if history is None:
        report.fail(f"{HISTORY_FILE}: missing")
    else:
        listed, counted = len(report.problems), report.more_problems
        _read_history(history, report, signers, roots, cosigners)
        _cap_history_problems(report, listed, counted)
    if roots.get(report.size, report.root) != report.root:
        report.fail(f"{CHECKPOINT_FILE}: two different roots signed for size {report.size}")
    roots.setdefault(report.size, report.root)

    names = {party: keys_[0].name for party, keys_ in signers.witnesses.items()}
    report.witnessed = dict.fromkeys(signers.witnesses, 0)
    for size in sorted(cosigners):
        for party in cosigners[size]:
            report.cosignatures[names[party]] += 1
            report.newest_cosigned[names[party]] = size
            report.witnessed[party] = size
    for line in report.unwitnessed():
        if report.unwitnessed_allowed:
            report.warnings.append(f"UNWITNESSED {line}")
        else:
            report.fail(line)
    report.warnings.extend(f"UNWITNESSED {line}" for line in report.unwitnessed_not_required())
    if report.unwitnessed_allowed and report.size and report.witnessed and not report.witnessed_size:
        # The flag accepts a tail beyond what the others witnessed; with nothing witnessed there is
        # no such prefix, and an owner who rewrote the log and stripped every cosignature would pass.
        report.fail(NOTHING_WITNESSED)
    return roots


def _cap_history_problems(report: Report, listed: int, counted: int) -> None:
    """Keep the first `HISTORY_PROBLEMS` problems the history added after `listed`; fold the rest into one.

    A history damaged line by line (every note re-signed, say) has a problem per checkpoint, and
    those come first: the entries' problems, which say what was changed, fell beyond `MAX_PROBLEMS`.
    The folded line counts as one problem, as the roots that follow from a bad entry do.
    """
    kept = min(HISTORY_PROBLEMS, len(report.problems) - listed)
    hidden = len(report.problems) - listed - kept + report.more_problems - counted
    if hidden <= 1:
        return
    del report.problems[listed + kept :]
    report.more_problems = counted
    report.fail(f"{HISTORY_FILE}: {hidden} more problems on later lines, not listed")


def _read_history(
    data: bytes, report: Report, signers: Signers, roots: dict[int, bytes], cosigners: dict[int, set[str]]
) -> None:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line (JSON Lines allows it to be left out)
    if not lines:
        report.fail(f"{HISTORY_FILE}: empty: it must hold at least the newest checkpoint")
        return
    last: Opened | None = None
    previous = -1
    for number, line in enumerate(lines, 1):
        where = f"{HISTORY_FILE} line {number}"
        last = None
        parsed = parse_history_line(line)
        if isinstance(parsed, str):
            report.fail(f"{where}: malformed: {parsed}")
            continue
        size, note = parsed
        got = open_named(report, note, f"{where} (checkpoint of size {size})", signers)
        if got is None:
            continue
        if got.size != size:
            report.fail(f"{where}: says size {size}, its checkpoint has size {got.size}")
            continue
        if size <= previous:
            report.fail(f"{where}: size {size} is not larger than the size before it ({previous})")
            continue
        if size > report.size:
            report.fail(f"{where}: size {size} is beyond the newest checkpoint's ({report.size})")
            continue
        roots[size] = got.root
        cosigners.setdefault(size, set()).update(got.cosigners)
        for party in got.cosigners:
            report.cosigned.setdefault(party, set()).add((size, got.root))
        report.checkpoints += 1
        previous, last = size, got
    # The same size with another root is "two different roots", which the caller reports.
    if last is not None and last.size != report.size:
        report.fail(
            f"{HISTORY_FILE}: its last checkpoint (size {last.size}) is not the newest checkpoint of the export "
            f"(size {report.size}): the history was cut short or the newest checkpoint replaced"
        )


def require_witnesses(report: Report, witnesses: Sequence[str], signers: Signers) -> None:
    """Set `report.required` to the parties of `witnesses` (empty: every other party, the default).

    Records a problem for each party named that cannot witness this log: the log's own party, or
    one that is not another party of the agreement in force. It is not left out silently, which
    would audit against other witnesses than the auditor asked for; the others named stay
    required (none: every other party is). Raises nothing.
    """
    others = ", ".join(sorted(signers.witnesses))
    valid = []
    for party in sorted(set(witnesses)):
        if party == signers.party:
            report.fail(
                f"--witness {party}: {party} is the party whose log this is ({signers.log_name}); "
                f"its witnesses are the other parties: {others}"
            )
        elif party not in signers.witnesses:  # quoted: the auditor's text, not a party id we know
            report.fail(f"--witness {party!r}: not a party of the agreement in force (the other parties: {others})")
        else:
            valid.append(party)
    report.required = tuple(valid)


def ensure_signers(report: Report, agreements: Sequence[Agreement], owner: Party) -> Signers:
    """Return the keys of `owner`'s log; raise `Stop` after recording why if an agreement lacks one."""
    try:
        return Signers.of(agreements, owner)
    except Error as exc:
        report.fail(f"agreement: {exc.detail}")
        raise Stop from exc
