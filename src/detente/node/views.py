"""How envelopes rows are shown to operators (API, stream, CLI)."""

from __future__ import annotations

import json
from typing import Any

from detente.core.agreement import Agreement
from detente.node import codes
from detente.store.messages import EnvelopeRow


def summary(row: EnvelopeRow, agreement: Agreement | None = None, lang: str | None = None) -> dict[str, Any]:
    """Return the operator's view of one envelope row: header, body, state and response.

    Given the agreement, a `code` message also shows its text in every language (`rendered`) and
    in the reader's `lang` (`rendered_text`).
    """
    envelope = json.loads(row["raw"])
    view = {
        "id": row["id"],
        "direction": row["direction"],
        "peer": row["peer"],
        "channel": row["channel"],
        "from": row["from_office"],
        "to": row["to_office"],
        "seq": row["seq"],
        "type": row["type"],
        "precedence": row["precedence"],
        "author": row["author"],
        "lang": envelope.get("lang"),
        "case": row["case_id"],
        "refs": envelope.get("refs", []),
        "created": row["created"],
        "deadline": row["deadline"],
        "state": row["state"],
        "log_index": row["log_index"],
        "delivered_at": row["delivered_at"],
        # Proven included in the peer's log at a checkpoint this node cosigned (sent messages only).
        "verified": row["verified_at"] is not None,
        "verified_at": row["verified_at"],
        "response": None
        if row["response_id"] is None
        else {
            "id": row["response_id"],
            "type": row["response_type"],
            "at": row["response_at"],
            "by": row["response_by"],
            # The addressee, or the alternate that answered once the message was overdue (escalation);
            # a message answered before migration 0007 names its addressee.
            "office": row["response_office"] or row["to_office"],
            "note": row["response_note"],
        },
        "overdue_at": row["overdue_at"],
        "body": envelope.get("body", {}),
    }
    if agreement is not None:
        view.update(codes.view(agreement, row["type"], view["body"], lang))
    return view
