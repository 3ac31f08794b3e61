"""Envelopes a peer seals by hand, without its own rules, as a node of another release or a faulty one could.

The receiver's own checks are what such tests judge: `by_hand` seals, `deliver` checks and stores.
"""

from __future__ import annotations

from typing import Any

from detente.core import envelope as envelope_mod
from detente.core.envelope import Envelope
from detente.core.precedence import format_time, now
from detente.node.incoming import check_envelope, receive_job
from detente.node.runtime import Node


def deliver(sender: Node, receiver: Node, envelope: Envelope) -> dict[str, Any]:
    """Check and store `envelope` on `receiver`, as a delivery from `sender` would; return its result."""
    checked = check_envelope(receiver.ctx, sender.ctx.party, envelope_mod.stored(envelope.raw).data)
    received = receiver.ctx.writer.run_sync(receive_job(receiver.ctx, sender.ctx.party, [checked], [checked.id]))
    result: dict[str, Any] = received.results[0]
    return result


def by_hand(node: Node, seq: int, kind: str, body: dict[str, Any], ref: str, *, author: str = "ir-op-1",
            channel: str = "dgmo", sender: str = "ir:dgmo", to: str = "pk:dgmo",
            created: str | None = None) -> Envelope:  # fmt: skip
    """An envelope `node` seals itself, without its own rules (stamped `created`, else now)."""
    return envelope_mod.seal(
        {
            "v": 1, "id": envelope_mod.uuid7(), "agreement": node.ctx.agreement.hash, "channel": channel,
            "from": sender, "to": to, "seq": seq, "author": author, "precedence": "FLASH", "type": kind,
            "lang": "fa", "refs": [ref], "case": None, "created": created or format_time(now()),
            "body": body,
        },
        node.ctx.signer,
    )  # fmt: skip
