"""What an offline audit found, and its verdict (`core.audit` fills a `Report`).

Three verdicts, in this order of precedence:

- **FAILED**: a problem was found (a signature, an entry, a root, a tile, a proof, a file). The
  export is not what it claims to be, or is damaged.
- **OK**: everything verifies, and the newest checkpoint is cosigned by every other party of the
  agreement, so every entry is *witnessed*.
- **OK up to size W** (only with `allow_unwitnessed`): everything verifies, but some entries, the
  *tail* from size W on, are covered by no checkpoint that every other party cosigned. W is never
  0 for a log with entries: a log no part of which every party witnessed fails, flag or not.

The auditor may require fewer witnesses (`required`, the CLI's `--witness`): the counterpart of an
incident (ir, in pk's log), so that the outage of an uninvolved third party (af) does not block
the audit of everything after it. "Every other party" above then reads "every required witness";
a party not required that lags behind is named in a warning, never a problem, and the verdict
names the required witness a tail is not witnessed by.

The distinction matters because an entry that no other party has witnessed rests on the log owner's
signature alone: the owner can drop, reorder or change such entries, re-sign the tree and hand over
an export that verifies in every other respect. A witness cosigns only a tree consistent with every
tree of that log it cosigned before (c2sp.org/tlog-witness), so the owner cannot get a rewritten
history cosigned. An unwitnessed tail is therefore a problem by default. A legitimate export can
end with one (a checkpoint signed just before the export, a peer that was down), so the auditor may
accept it explicitly; the tail is then named in a warning and in the verdict.

A cosignature vouches for a checkpoint, a root; it vouches for the export's entries only where they
give that root. The report's "witnessed" line (`witnessed_line`) therefore claims, for each party,
only the sizes it cosigned whose root the entries read reproduce: in a damaged export (an entry
changed, a bundle missing or cut short) it says how far the witnessing is established, not what
was signed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_PROBLEMS = 50


class Stop(Exception):
    """The audit cannot go on (a missing or unusable file); the problem is already recorded."""


def entry_range(start: int, end: int) -> str:
    """Return "entry 7" or "entries 7..18" for the entries start..end-1 (0-based, end excluded)."""
    return f"entry {start}" if end - start == 1 else f"entries {start}..{end - 1}"


def _are(start: int, end: int, verb: str = "are") -> str:
    """Return `entry_range` followed by `verb` agreeing with it ("are"/"is", "rest"/"rests")."""
    if end - start != 1:
        return f"{entry_range(start, end)} {verb}"
    return f"{entry_range(start, end)} {'is' if verb == 'are' else verb + 's'}"


@dataclass
class Report:
    """What the audit verified, and every problem it found (no problems: the export is sound).

    `witnessed` maps each other party of the agreement to the largest tree size it cosigned in the
    export (0: none); the entries below the smallest of them are witnessed by every party, if they
    are the entries that party cosigned. `required` names the parties whose witnessing the verdict
    requires (empty: every other party); `witnessed_size` and the problems count only theirs.
    `cosigned` holds the (size, root) of each checkpoint a party cosigned, `reproduced` the root
    the entries read give at each checkpoint's size, and `established` compares them.
    `agreements` counts the envelopes naming each agreement hash (given or not); `hints` says what
    the auditor may have left out (an earlier agreement), without being a problem of its own.
    """

    origin: str = ""
    party: str = ""
    size: int = 0
    root: bytes = b""
    entries: int = 0
    senders: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    agreements: Counter[str] = field(default_factory=Counter)
    tiles: int = 0
    checkpoints: int = 0
    consistency_proofs: int = 0
    cosignatures: Counter[str] = field(default_factory=Counter)
    newest_cosigned: dict[str, int] = field(default_factory=dict)
    witnessed: dict[str, int] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # sorted; empty: every other party (never "no one")
    cosigned: dict[str, set[tuple[int, bytes]]] = field(default_factory=dict)
    reproduced: dict[int, bytes] = field(default_factory=dict)
    unwitnessed_allowed: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        """Whether no problem was found (an unwitnessed tail is a problem unless it was allowed)."""
        return not self.problems and not self.more_problems

    @property
    def witnessed_size(self) -> int:
        """The largest size up to which every required witness witnessed the log (`size` if all did)."""
        return min((size for party, size in self.witnessed.items() if self.is_required(party)), default=self.size)

    def is_required(self, party: str) -> bool:
        """Return whether the verdict requires `party`'s witnessing (every other party's, unless `required`)."""
        return not self.required or party in self.required

    def fail(self, message: str) -> None:
        """Record a problem (the first `MAX_PROBLEMS` are kept, the rest counted)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)
        else:
            self.more_problems += 1

    def check_agreements_named(self, given: Sequence[tuple[str, str]]) -> None:
        """Hint at the agreements entries name but the auditor did not give; warn of an earlier one none names.

        `given` is (id, hash) of the agreement in force, then of each earlier one. The hint is one
        line for all the agreements not given (each entry naming one is a problem already, and the
        export holds only the agreement in force: this line is what tells the auditor which to
        look for). Call it once every entry has been read. Raises nothing.
        """
        hashes = {digest for _, digest in given}
        unknown = [(digest, n) for digest, n in self.agreements.most_common() if digest not in hashes]
        if unknown:
            named = ", ".join(
                f"{n} {'entry names' if n == 1 else 'entries name'} agreement {digest[:12]}…" for digest, n in unknown
            )
            these = "that agreement" if len(unknown) == 1 else "those agreements"
            self.hints.append(f"{named}, not given: if the log spans an amendment, give {these} with --earlier")
        for agreement_id, digest in given[1:]:
            if not self.agreements[digest]:
                self.warnings.append(f"--earlier {agreement_id} {digest[:12]}…: no entry names it")

    def unwitnessed(self) -> list[str]:
        """Return one line per stretch of entries a required witness has not witnessed (none: all are).

        The first line names the entries no other party witnessed, which rest on the owner's
        signature alone (a required witness is among those parties); then one line per required
        witness lagging behind the others. Raises nothing.
        """
        return [line for party, line in self._lagging() if party is None or self.is_required(party)]

    def unwitnessed_not_required(self) -> list[str]:
        """Return one line per party not required (`required`) that lags behind the others (a warning).

        Such a party's lag is evidence missing, not evidence against: the entries are witnessed by
        the parties the auditor required. Raises nothing.
        """
        given = " ".join(f"--witness {party}" for party in self.required)
        return [
            f"{line} (not required: {given})"
            for party, line in self._lagging()
            if party is not None and not self.is_required(party)
        ]

    def _lagging(self) -> list[tuple[str | None, str]]:
        """Return (party, line) per stretch of entries some other party has not witnessed; party None: no one did."""
        if not self.witnessed:
            return []
        alone = max(self.witnessed.values())
        lines: list[tuple[str | None, str]] = []
        if alone < self.size:
            who = " and ".join(sorted(self.witnessed))
            newest = f"beyond size {alone}" if alone else "in the export"
            lines.append(
                (
                    None,
                    f"{_are(alone, self.size, 'rest')} on {self.party}'s signature alone: "
                    f"{who} cosigned no checkpoint {newest} (the tree has size {self.size})",
                )
            )
        for party, size in sorted(self.witnessed.items()):
            if size < alone:
                newest = f"its newest cosignature is on size {size}" if size else "it cosigned no checkpoint"
                lines.append((party, f"{_are(size, self.size)} not witnessed by {party}: {newest}"))
        return lines

    def established(self) -> dict[str, int]:
        """Map each other party to the largest size it cosigned whose root the entries read give (0: none).

        A cosignature vouches for a tree, the checkpoint's root; it vouches for the export's entries
        only where they give that root. An entry changed, or a bundle missing or damaged (the audit
        stops reading there), leaves the checkpoints from there on not established. Raises nothing.
        """
        return {
            party: max(
                (size for size, root in self.cosigned.get(party, ()) if self.reproduced.get(size) == root), default=0
            )
            for party in self.witnessed
        }

    def witnessed_line(self) -> str | None:
        """Return the audit's "witnessed" line: up to which size each other party witnessed these entries.

        None when the audit did not get as far as the cosignatures. A party whose newest cosigned
        checkpoint the entries read do not give is named with the size up to which they do, so that
        a damaged export never reads as witnessed. Raises nothing.
        """
        if not self.witnessed:
            return None
        established = self.established()
        if established == self.witnessed:
            by = ", ".join(f"{party} up to size {size}" for party, size in sorted(self.witnessed.items()))
            return f"{by} (of {self.size})"
        parts = []
        for party, claimed in sorted(self.witnessed.items()):
            held = established[party]
            if held == claimed:
                parts.append(f"{party} up to size {claimed}")
                continue
            why = f"it cosigned size {claimed}, but the entries read do not give that checkpoint's root"
            parts.append(f"{party} up to size {held} only ({why})" if held else f"{party}: not established ({why})")
        return "; ".join(parts)

    def verdict(self) -> str:
        """Return the verdict line: "OK", "OK up to size W: …" or "FAILED: n problem(s)"."""
        if not self.ok:
            return f"FAILED: {len(self.problems) + self.more_problems} problem(s)"
        witnessed = self.witnessed_size
        if witnessed < self.size:
            # Named when the auditor chose the witnesses: "every party" would overstate what was required.
            lagging = [party for party in self.required if self.witnessed.get(party) == witnessed]
            by = " and ".join(lagging) if lagging else "every party"
            return (
                f"OK up to size {witnessed} only: {_are(witnessed, self.size)} not witnessed by {by} "
                "(accepted by --allow-unwitnessed)"
            )
        return "OK"
