"""What every use case needs to know about its own node."""

from __future__ import annotations

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
    # What each peer said it accepts (`wire.ACCEPTS`) in its last signed request or answer; a peer
    # not heard from since this node started is taken to run this release.
    accepts: dict[str, frozenset[str]] = field(default_factory=dict)

    def heard_accepts(self, peer: str, header: str | None) -> None:
        """Note what `peer` accepts from the `detente-accepts` header of a request or answer it signed."""
        self.accepts[peer] = wire.parse_accepts(header)

    def takes(self, peer: str, feature: str) -> bool:
        """Whether `peer` accepts `feature`: it said so, or it has not been heard from since this node started."""
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
