"""The entries of a log export, one by one, for an auditor to read and count (`detente log entries`).

`core.audit` proves an export; this module only reads it, so that an auditor can reconcile the
audit's counts with what each side says it sent: which envelopes, of which type, between which
offices, answering what. It reads the tree size from the export's `checkpoint` and the entries from
the entry bundles of that size, through the same `read(path) -> bytes | None` as the audit, and
checks nothing beyond what it needs to read them: a listing is not a verdict, and says so.

An entry that is not an envelope is listed with its problem, not skipped, so that the indexes a
listing shows are always the log's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from detente.core import checkpoint as checkpoint_mod
from detente.core import note as note_mod
from detente.core import tiles
from detente.core.audit_checkpoints import CHECKPOINT_FILE
from detente.core.envelope import Envelope, parse
from detente.errors import Error, MalformedError, NotFound

Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class Listed:
    """One entry of the log: its index, and its envelope or why it is not one."""

    index: int
    envelope: Envelope | None
    problem: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which entries to list; an empty member selects every entry.

    `types` and `offices` match any of theirs (an office matches an envelope it sent or was sent);
    `ids` matches an envelope whose id begins with one of them; `refers_to` an envelope whose refs
    hold one of those ids whole. Members combine with AND.
    """

    types: frozenset[str] = frozenset()
    offices: frozenset[str] = frozenset()
    ids: tuple[str, ...] = ()
    refers_to: frozenset[str] = frozenset()

    def matches(self, env: Envelope) -> bool:
        """Return whether `env` is selected."""
        if self.types and env.type not in self.types:
            return False
        if self.offices and not self.offices & set(offices_of(env)):
            return False
        if self.ids and not any(env.id.startswith(prefix) for prefix in self.ids):
            return False
        return not self.refers_to or not self.refers_to.isdisjoint(env.refs)

    @property
    def everything(self) -> bool:
        """Whether nothing narrows the selection."""
        return not (self.types or self.offices or self.ids or self.refers_to)


def offices_of(env: Envelope) -> tuple[str, ...]:
    """Return the offices an envelope is between: sender, addressee, and the alternate that answered.

    An ack or decline is sealed from the addressed office; when an alternate answered, its body
    names it (`office`), and an auditor asking what that office answered must find it.
    """
    answering = env.body.get("office") if env.type in ("ack", "decline") else None
    extra = (answering,) if isinstance(answering, str) and answering else ()
    return (env.sender, env.recipient, *extra)


def tree_of(read: Reader) -> checkpoint_mod.Checkpoint:
    """Return the export's newest checkpoint (origin, size, root), its signatures not checked.

    Raises `NotFound` if the export has no `checkpoint` file and `MalformedError` if it is not a
    checkpoint note.
    """
    data = read(CHECKPOINT_FILE)
    if data is None:
        raise NotFound(f"no {CHECKPOINT_FILE} file: is this a directory `detente log export` wrote?")
    try:
        return checkpoint_mod.parse_checkpoint(note_mod.parse_note(data).text)
    except Error as exc:
        raise MalformedError(f"checkpoint: not a checkpoint note ({exc.detail})") from None


def entries(read: Reader, size: int) -> Iterator[Listed]:
    """Yield every entry of the tree of `size`, in log order.

    Raises `NotFound` naming an entry bundle the export lacks and `MalformedError` naming one that
    does not hold the entries it should; the entries before it have been yielded.
    """
    for n, width in tiles.entry_bundles_for_size(size):
        path = tiles.entries_path(n, width)
        data = read(path)
        if data is None:
            raise NotFound(f"{path}: missing (it holds entries {n * tiles.TILE_WIDTH}..)")
        try:
            bundle = tiles.parse_entry_bundle(data, width)
        except Error:
            raise MalformedError(f"{path}: not an entry bundle of {width} entries") from None
        for k, raw in enumerate(bundle):
            index = n * tiles.TILE_WIDTH + k
            try:
                yield Listed(index, parse(raw))
            except Error as exc:
                yield Listed(index, None, f"not a valid envelope: {exc.detail}")


def chosen(item: Listed, selection: Selection) -> bool:
    """Return whether `selection` lists `item`; an entry that is not an envelope only when it lists everything."""
    if item.envelope is None:
        return selection.everything
    return selection.matches(item.envelope)


@dataclass
class Tally:
    """What a listing went through: every entry, those it listed by type, and what the log holds."""

    total: int = 0
    listed: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    types: set[str] = field(default_factory=set)
    offices: set[str] = field(default_factory=set)

    def add(self, item: Listed, listed: bool) -> None:
        """Count `item`, which the listing printed if `listed`."""
        self.total += 1
        env = item.envelope
        if env is None:
            self.problems += 1
            if listed:
                self.listed["(not an envelope)"] += 1
            return
        self.types.add(env.type)
        self.offices.update(offices_of(env))
        if listed:
            self.listed[env.type] += 1

    def hints(self, selection: Selection) -> list[str]:
        """Name each selected type or office that no entry has, so that a typo does not read as "none sent".

        Ask only once every entry was read: of a log read in part, the types are not known.
        """
        out: list[str] = []
        for kind, asked, held in (("type", selection.types, self.types), ("office", selection.offices, self.offices)):
            for value in sorted(asked - held):
                known = ", ".join(sorted(held)) or "none"
                out.append(f"no entry of this log has {kind} {value!r} (those it has: {known})")
        return out
