"""The entries of a log export, one by one, for an auditor to read and count (`detente log entries`).

`core.audit` proves an export; this module only reads it, so that an auditor can reconcile the
audit's counts with what each side says it sent: which envelopes, of which type, between which
offices, answering what. It reads the tree size from the export's `checkpoint` and the entries from
the entry bundles of that size, through the same `read(path) -> bytes | None` as the audit, and
checks nothing beyond what it needs to read them: a listing is not a verdict, and says so.

An entry that is not an envelope is listed with its problem, not skipped, so that the indexes a
listing shows are always the log's own. An entry bundle that is damaged (cut short, or holding
another number of entries than the tree needs) gives the entries before the damage, then an error:
past the damage, no entry can be placed at its index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from detente.core import checkpoint as checkpoint_mod
from detente.core import note as note_mod
from detente.core import tiles
from detente.core.audit import read_entry_bundle
from detente.core.audit_checkpoints import CHECKPOINT_FILE
from detente.core.audit_report import entry_range
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
    `ids` matches an envelope whose id begins with one of them; `refers_to` an envelope with a ref
    (the id of a message it answers, acknowledges, translates…) that begins with one of them.
    Members combine with AND.
    """

    types: frozenset[str] = frozenset()
    offices: frozenset[str] = frozenset()
    ids: tuple[str, ...] = ()
    refers_to: tuple[str, ...] = ()

    def matches(self, env: Envelope) -> bool:
        """Return whether `env` is selected."""
        if self.types and env.type not in self.types:
            return False
        if self.offices and not self.offices & set(offices_of(env)):
            return False
        if self.ids and not any(env.id.startswith(prefix) for prefix in self.ids):
            return False
        return not self.refers_to or any(ref.startswith(prefix) for ref in env.refs for prefix in self.refers_to)

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
    is damaged, once the entries before the damage have been yielded: those of the bundles before
    it, then those of the bundle that are whole, up to the first that is not an envelope (where the
    damage is, most likely: past it, no entry can be placed at its index).
    """
    for n, width in tiles.entry_bundles_for_size(size):
        path = tiles.entries_path(n, width)
        data = read(path)
        start = n * tiles.TILE_WIDTH
        if data is None:
            raise NotFound(f"{path}: missing (it holds entries {start}..)")
        bundle, problem = read_entry_bundle(data, n, width, size)
        for index, raw in enumerate(bundle, start):
            try:
                envelope = parse(raw)
            except Error as exc:
                if problem is not None:
                    raise _damaged(path, problem, start, index, f" (entry {index} is not an envelope)") from None
                yield Listed(index, None, f"not a valid envelope: {exc.detail}")
                continue
            yield Listed(index, envelope)
        if problem is not None:
            raise _damaged(path, problem, start, start + len(bundle))


def _damaged(path: str, problem: str, start: int, stop: int, why: str = "") -> MalformedError:
    """Return the error for a damaged bundle whose entries `start`..`stop`-1 were listed."""
    listed = f"listed {entry_range(start, stop)} before the damage" if stop > start else "listed none of its entries"
    return MalformedError(f"{path}: {problem}; {listed}{why}")


def chosen(item: Listed, selection: Selection) -> bool:
    """Return whether `selection` lists `item`; an entry that is not an envelope only when it lists everything."""
    if item.envelope is None:
        return selection.everything
    return selection.matches(item.envelope)


@dataclass
class Tally:
    """What a listing of `selection` went through: every entry, those listed by type, what the log holds.

    Beside the types and offices the log holds, it keeps, for each id prefix the selection asks
    for (`--id`, `--refers-to`), the first entry whose id begins so, and which `--refers-to`
    prefixes some entry refers to: that is what `hints` names when nothing matched.
    """

    selection: Selection = field(default_factory=Selection)
    total: int = 0
    listed: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    types: set[str] = field(default_factory=set)
    offices: set[str] = field(default_factory=set)
    named: dict[str, Listed] = field(default_factory=dict)
    referred: set[str] = field(default_factory=set)

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
        for prefix in (*self.selection.ids, *self.selection.refers_to):
            if prefix not in self.named and env.id.startswith(prefix):
                self.named[prefix] = item
        for prefix in self.selection.refers_to:
            if prefix not in self.referred and any(ref.startswith(prefix) for ref in env.refs):
                self.referred.add(prefix)
        if listed:
            self.listed[env.type] += 1

    def hints(self) -> list[str]:
        """Name each selected type, office or id that no entry has, so that a typo does not read as "none sent".

        An id given to `--refers-to` that no entry refers to is named with the entry of that id, if
        there is one (the message is there, and nothing refers to it). Ask only once every entry
        was read: of a log read in part, none of this is known.
        """
        out: list[str] = []
        selection = self.selection
        for kind, asked, held in (("type", selection.types, self.types), ("office", selection.offices, self.offices)):
            for value in sorted(asked - held):
                known = ", ".join(sorted(held)) or "none"
                out.append(f"no entry of this log has {kind} {value!r} (those it has: {known})")
        for prefix in dict.fromkeys(selection.ids):
            if prefix not in self.named:
                out.append(f"no entry of this log has an id beginning {prefix!r}")
        for prefix in dict.fromkeys(selection.refers_to):
            if prefix in self.referred:
                continue
            found = self.named.get(prefix)
            if found is None or found.envelope is None:
                out.append(f"no entry of this log refers to {prefix!r}, and no entry's id begins so")
            else:
                out.append(
                    f"no entry of this log refers to {prefix!r}: entry {found.index} is that message "
                    f"({found.envelope.type} {found.envelope.id}), and nothing in the log refers to it"
                )
        return out
