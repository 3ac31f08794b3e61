"""Two real nodes, ir's clock four minutes ahead (within the federation's ±5 minutes).

The link tests measure the difference and both sides show it; a FLASH from pk keeps its full ten
minutes on both sides (before, both marked it overdue within a second, and alerted the alternates).
"""

from __future__ import annotations

from typing import Any

from detente.core.precedence import parse_time
from support import Cluster, NodeProc, wait_for

SKEW = 240.0
FLASH = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text"}


def link(node: NodeProc, operator: str) -> dict[str, Any]:
    with node.client(operator) as client:
        found: dict[str, Any] = client.get("/api/v1/links").json()["links"][0]
    return found


def message(node: NodeProc, operator: str, message_id: str) -> dict[str, Any]:
    with node.client(operator) as client:
        found: dict[str, Any] = client.get(f"/api/v1/messages/{message_id}").json()
    return found


def test_a_peer_clock_ahead_is_measured_shown_and_does_not_shorten_deadlines(fresh_pair: Cluster) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    pk.start()
    ir.start(clock_skew=SKEW)
    seen = wait_for(lambda: (o := link(pk, "pk-dgmo")).get("clock_offset_ms") is not None and o, 30, 0.2,
                    "pk's link test to measure ir's clock")  # fmt: skip
    assert abs(seen["clock_offset_ms"] / 1000 - SKEW) < 2, seen
    assert seen["clock_warning"] == "its clock is 4 min 0 s ahead of ours" and seen["state"] == "UP"
    theirs = wait_for(lambda: (o := link(ir, "ir-dgmo")).get("clock_offset_ms") is not None and o, 30, 0.2,
                      "ir's link test to measure pk's clock")  # fmt: skip
    assert abs(theirs["clock_offset_ms"] / 1000 + SKEW) < 2 and "behind ours" in theirs["clock_warning"]

    with pk.client("pk-dgmo") as client:
        sent = client.post("/api/v1/messages", json={**FLASH, "body": {"text": "four minutes apart"}}).json()
    wait_for(lambda: message(pk, "pk-dgmo", sent["id"])["state"] == "delivered", 30, 0.1, "delivery")
    ours = message(pk, "pk-dgmo", sent["id"])
    wait_for(lambda: message(ir, "ir-dgmo", sent["id"]).get("state") == "delivered", 30, 0.1, "ir's copy")
    import time

    time.sleep(2)  # the early overdue came within a second of delivery
    ours, there = message(pk, "pk-dgmo", sent["id"]), message(ir, "ir-dgmo", sent["id"])
    assert ours["state"] == there["state"] == "delivered" and ours["overdue_at"] is None and there["overdue_at"] is None
    # The same moment, in each node's clock: ir's deadline reads four minutes later than pk's.
    apart = (parse_time(there["deadline"]) - parse_time(ours["deadline"])).total_seconds()
    assert abs(apart - SKEW) < 2, (ours["deadline"], there["deadline"])
    # pk's delivery time is in pk's clock: after the send, not four minutes in its future.
    delivered = (parse_time(ours["delivered_at"]) - parse_time(ours["envelope"]["created"])).total_seconds()
    assert 0 <= delivered < 5, (ours["envelope"]["created"], ours["delivered_at"])
