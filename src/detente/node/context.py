"""What every use case needs to know about its own node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from detente.core import wire
from detente.core.agreement import Agreement
from detente.core.keys import Signer
from detente.errors import Invalid
from detente.node.config import NodeConfig
from detente.node.events import EventBus
from detente.store.writer import Writer


@dataclass
class NodeContext:
    """The node's identity, agreement, storage and event bus."""

    config: NodeConfig
    signer: Signer
    agreement: Agreement
    engine: Engine
    writer: Writer
    bus: EventBus = field(default_factory=EventBus)
    # The agreements this node ratified before the one in force, kept by `ratify` (hash -> agreement):
    # an envelope sealed under one of them before an amendment is still accepted from its sender.
    earlier: dict[str, Agreement] = field(default_factory=dict)
    # Agreements this node ratified before the one in force whose copy is missing or damaged:
    # envelopes a peer queued under them are refused (`serve` warns of them).
    unkept: tuple[str, ...] = ()
    # Each peer's clock minus ours, in ms, as the last link test measured it (`core.clocks`).
    clock_offsets: dict[str, float | None] = field(default_factory=dict)
    # What each peer said it accepts (`wire.ACCEPTS`) in its last signed request or answer, before
    # this node's last start too: it is kept in `links.accepts` and loaded at start (`open_context`).
    # Only a peer never heard from at all is taken to run this release.
    accepts: dict[str, frozenset[str]] = field(default_factory=dict)
    # Called when a peer's word differs from what the database keeps: the running node's duty
    # (`Node.keep_accepts`) writes it, so that no request or answer waits for, or queues, a write.
    accepts_changed: Callable[[], None] | None = None
    # What the database keeps of `accepts` (`links.accepts`): a word said again costs a comparison.
    _kept: dict[str, frozenset[str]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._kept = dict(self.accepts)

    def heard_accepts(self, peer: str, header: str | None) -> None:
        """Note what `peer` accepts from the `detente-accepts` header of a request or answer it signed.

        A change is not written here (this runs on every signed request and answer): `accepts_changed`
        is called, and the node keeps it (`unkept_accepts`). Raises nothing.
        """
        said = wire.parse_accepts(header)
        self.accepts[peer] = said
        if self._kept.get(peer) != said and self.accepts_changed is not None:
            self.accepts_changed()

    def unkept_accepts(self) -> dict[str, frozenset[str]]:
        """Return what each peer said it accepts where the database keeps something else (or nothing)."""
        return {peer: said for peer, said in self.accepts.items() if self._kept.get(peer) != said}

    def accepts_kept(self, words: dict[str, frozenset[str]]) -> None:
        """Note that the database now keeps `words` (from `unkept_accepts`), once their write has committed."""
        self._kept.update(words)

    def takes(self, peer: str, feature: str) -> bool:
        """Whether `peer` accepts `feature`: it said so last (before this node's last start too), or
        it was never heard from at all."""
        known = self.accepts.get(peer)
        return known is None or feature in known

    def sealed_under(self, agreement_hash: str) -> Agreement:
        """Return the agreement an envelope names: the one in force or an earlier one this node ratified.

        Raises `Invalid` for any other.
        """
        if agreement_hash == self.agreement.hash:
            return self.agreement
        doc = self.earlier.get(agreement_hash)
        if doc is None:
            raise Invalid(f"agreement {agreement_hash[:12]}… is neither the one in force nor one this node ratified")
        return doc

    @property
    def party(self) -> str:
        return self.config.party

    @property
    def peers(self) -> list[str]:
        return [p.id for p in self.agreement.peers(self.party)]
