"""Two real nodes, ir's clock four minutes ahead (within the federation's ±5 minutes).

The link tests measure the difference and both sides show it; a FLASH from pk keeps its full ten
minutes on both sides (before, both marked it overdue within a second, and alerted the alternates);
and a workflow's shared history keeps causes before their effects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detente.core import clocks
from detente.core.precedence import parse_time
from support import Cluster, NodeProc, wait_for
from workflow_support import PRENOTIFY, iso, reaches, same_on_both, send

SKEW = 240.0
FLASH = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text"}


def link(node: NodeProc, operator: str) -> dict[str, Any]:
    with node.client(operator) as client:
        found: dict[str, Any] = client.get("/api/v1/links").json()["links"][0]
    return found


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """pk on the machine's clock, ir four minutes ahead."""
    cluster = Cluster(Path(tmp_path_factory.mktemp("skewed")))
    try:
        cluster["pk"].start()
        cluster["ir"].start(clock_skew=SKEW)
        yield cluster
    finally:
        cluster.stop()


def test_a_peer_clock_ahead_is_measured_shown_and_does_not_shorten_deadlines(skewed: Cluster) -> None:
    pk, ir = skewed["pk"], skewed["ir"]
    seen = wait_for(lambda: (o := link(pk, "pk-dgmo")).get("clock_offset_ms") is not None and o, 30, 0.2,
                    "pk's link test to measure ir's clock")  # fmt: skip
    assert abs(seen["clock_offset_ms"] / 1000 - SKEW) < 2, seen
    # The offset is measured to within a link test's round trip: on a busy machine, 239.6 s reads
    # "3 min 59 s". The words are those of the measured offset, which is within 2 s of the skew.
    assert seen["clock_warning"] == clocks.describe(seen["clock_offset_ms"]) and seen["state"] == "UP"
    near = ("3 min 59 s", "4 min 0 s", "4 min 1 s")
    assert seen["clock_warning"] in [f"its clock is {t} ahead of ours" for t in near]
    theirs = wait_for(lambda: (o := link(ir, "ir-dgmo")).get("clock_offset_ms") is not None and o, 30, 0.2,
                      "ir's link test to measure pk's clock")  # fmt: skip
    assert abs(theirs["clock_offset_ms"] / 1000 + SKEW) < 2 and "behind ours" in theirs["clock_warning"]

    with pk.client("pk-dgmo") as client:
        sent = client.post("/api/v1/messages", json={**FLASH, "body": {"text": "four minutes apart"}}).json()
    wait_for(lambda: pk.message("pk-dgmo", sent["id"])["state"] == "delivered", 30, 0.1, "delivery")
    ours = pk.message("pk-dgmo", sent["id"])
    wait_for(
        lambda: ir.message("ir-dgmo", sent["id"], missing_ok=True).get("state") == "delivered", 30, 0.1, "ir's copy"
    )
    time.sleep(2)  # the early overdue came within a second of delivery
    ours, there = pk.message("pk-dgmo", sent["id"]), ir.message("ir-dgmo", sent["id"])
    assert ours["state"] == there["state"] == "delivered" and ours["overdue_at"] is None and there["overdue_at"] is None
    # The same moment, in each node's clock: ir's deadline reads four minutes later than pk's.
    apart = (parse_time(there["deadline"]) - parse_time(ours["deadline"])).total_seconds()
    assert abs(apart - SKEW) < 2, (ours["deadline"], there["deadline"])
    # pk's delivery time is in pk's clock: after the send, not four minutes in its future.
    delivered = (parse_time(ours["delivered_at"]) - parse_time(ours["envelope"]["created"])).total_seconds()
    assert 0 <= delivered < 5, (ours["envelope"]["created"], ours["delivered_at"])


def test_an_execution_sent_after_an_objection_stays_after_it_on_both_nodes(skewed: Cluster) -> None:
    """ir's objection carries ir's clock, 4 min ahead; pk executes after storing it.

    Without a stamp after the objection, pk's execution sorted first on both nodes: the record said
    "executed without consent" and blamed ir's objection as a late conflict.
    """
    pk, ir = skewed["pk"], skewed["ir"]
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25), "end": iso(30)}})
    reaches(ir, "ir-dgmo", "action", action["id"], "proposed")
    send(ir, "ir-dgmo", "action.object", {"reason": "Civilians nearby"}, refs=[action["id"]])
    reaches(pk, "pk-dgmo", "action", action["id"], "objected")
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action["id"]])
    reaches(ir, "ir-dgmo", "action", action["id"], "executed")
    state = same_on_both(skewed, "action", action["id"])
    assert [step["type"] for step in state["history"]] == ["operation.prenotify", "action.object", "action.execute"]
    assert state["unilateral"] is True and state["unilateral_reason"] == "executed despite an objection"


def test_a_peer_clock_set_right_is_measured_again_at_its_first_request(tmp_path: Path) -> None:
    """Link tests hourly, as in production: ir's clock is fixed (restarted without the skew).

    pk's measured offset (4 min) would hold until the next link test, an hour later, and shorten
    every deadline of ir's messages by 4 minutes; ir's first request contradicts it, and pk measures
    again at once.
    """
    cluster = Cluster(tmp_path, link_test_seconds=3600)
    pk, ir = cluster["pk"], cluster["ir"]
    try:
        ir.start(clock_skew=SKEW)
        pk.start()  # second, so that its first link test (at start) finds ir up
        seen = wait_for(lambda: link(pk, "pk-dgmo").get("clock_offset_ms"), 30, 0.2, "the first link test")
        assert abs(seen / 1000 - SKEW) < 2
        ir.stop()
        ir.start()  # its clock set right: its own first link test reaches pk at once
        wait_for(lambda: abs(link(pk, "pk-dgmo")["clock_offset_ms"]) < 1000, 15, 0.2, "pk to measure again")
        assert link(pk, "pk-dgmo")["clock_warning"] is None
    finally:
        cluster.stop()
