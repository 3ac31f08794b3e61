"""What every use case needs to know about its own node."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from detente.core.agreement import Agreement
from detente.core.keys import Signer
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

    @property
    def party(self) -> str:
        return self.config.party

    @property
    def peers(self) -> list[str]:
        return [p.id for p in self.agreement.peers(self.party)]
