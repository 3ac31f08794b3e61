"""An envelope whose `created` the peer wrote in another RFC 3339 form is listed by its time.

The wire accepts `2024-01-16T13:05:00Z` as well as this node's `2024-01-16T13:05:00.000Z`; the
stored row is rewritten to the latter, so that `since` (a text comparison) compares times.
"""

from __future__ import annotations

import pytest

from detente.core import envelope as envelope_mod
from detente.core.precedence import format_time, now
from detente.node.incoming import check_envelope, receive_job
from detente.node.runtime import Node
from detente.store import messages as db


@pytest.mark.parametrize("digits", ["", ".5", ".123456"])
def test_a_peer_time_without_milliseconds_is_stored_with_them(nodes: tuple[Node, Node], digits: str) -> None:
    pk, ir = nodes
    second = format_time(now())[:19]
    created = f"{second}{digits}Z"
    sealed = envelope_mod.seal(
        {
            "v": 1, "id": envelope_mod.uuid7(), "agreement": pk.ctx.agreement.hash, "channel": "dgmo",
            "from": "pk:dgmo", "to": "ir:dgmo", "seq": 1, "author": "tester", "precedence": "ROUTINE",
            "type": "hotline.text", "lang": "en", "refs": [], "case": None, "created": created,
            "body": {"text": "a time in another form"},
        },
        pk.ctx.signer,
    )  # fmt: skip
    envelope = check_envelope(ir.ctx, "pk", envelope_mod.stored(sealed.raw).data)
    stored = ir.ctx.writer.run_sync(receive_job(ir.ctx, "pk", [envelope], [envelope.id]))
    assert "receipt" in stored.results[0], stored.results
    with ir.ctx.engine.connect() as conn:
        row = db.get_envelope(conn, envelope.id)
        assert row is not None and row["created"] == second + {"": ".000Z", ".5": ".500Z", ".123456": ".123Z"}[digits]
        assert row["raw"] == sealed.raw  # the envelope itself is kept as signed
        listed = db.list_envelopes(conn, offices=None, since=f"{second}.000Z").rows
        assert envelope.id in [r["id"] for r in listed]
