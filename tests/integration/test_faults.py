"""Nothing accepted is ever lost: kill -9 either node mid-burst, or take the peer away for a while."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import delete, select

from cli_support import detente
from detente.core.precedence import format_time, now
from detente.store.tables import envelopes, link_events, outbox
from support import Cluster, NodeProc, run_async, wait_for

pytestmark = pytest.mark.slow
CHANNELS = [("dgmo", "ir:dgmo", "pk-dgmo"), ("fs", "ir:fs", "pk-fs"), ("liaison", "ir:lo-turbat", "pk-lo-zahedan")]


class Burst:
    """Send `total` messages from pk over all three channels with `workers` concurrent clients."""

    def __init__(self, pk: NodeProc, total: int, workers: int = 6) -> None:
        self.pk = pk
        self.total = total
        self.workers = workers
        self.accepted: dict[str, str] = {}  # text -> envelope id, for every 201
        self.refused: list[str] = []  # answered with an error: must never appear
        self.in_flight: list[str] = []  # no answer (the node died mid-request): may or may not appear
        self._next = 0
        self._lock = threading.Lock()

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _worker(self) -> None:
        clients = {c: self.pk.client(op) for c, _, op in CHANNELS}
        try:
            while (n := self._take()) is not None:
                channel, to, _ = CHANNELS[n % 3]
                text = f"burst message {n}"
                request = {"channel": channel, "to": to, "precedence": "ROUTINE", "type": "hotline.text",
                           "body": {"text": text}}  # fmt: skip
                try:
                    response = clients[channel].post("/api/v1/messages", json=request, timeout=10)
                except httpx.HTTPError:
                    with self._lock:
                        self.in_flight.append(text)
                    continue
                with self._lock:
                    if response.status_code == 201:
                        self.accepted[text] = response.json()["id"]
                    else:
                        self.refused.append(text)
        finally:
            for client in clients.values():
                client.close()

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        return threads


def received(ir: NodeProc) -> list[dict[str, Any]]:
    engine = ir.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(envelopes.c.id, envelopes.c.channel, envelopes.c.seq, envelopes.c.raw, envelopes.c.log_index)
                .where(envelopes.c.direction == "in", envelopes.c.type == "hotline.text")
                .order_by(envelopes.c.log_index)
            ).all()
    finally:
        engine.dispose()
    return [
        {"id": r[0], "channel": r[1], "seq": r[2], "text": json.loads(r[3])["body"]["text"], "log": r[4]} for r in rows
    ]


def check_exactly_once_in_order(burst: Burst, got: list[dict[str, Any]]) -> None:
    ids = [g["id"] for g in got]
    assert len(ids) == len(set(ids)), "an envelope was stored twice"
    texts = {g["text"] for g in got}
    missing = set(burst.accepted) - texts
    assert not missing, f"{len(missing)} accepted messages were lost, e.g. {sorted(missing)[:3]}"
    assert not set(burst.refused) & texts, "a refused message was delivered"
    unexplained = texts - set(burst.accepted) - set(burst.in_flight)
    assert not unexplained, f"messages nobody sent: {sorted(unexplained)[:3]}"
    by_channel: dict[str, list[int]] = defaultdict(list)
    for g in got:
        by_channel[g["channel"]].append(g["seq"])
    for channel, seqs in by_channel.items():
        assert seqs == sorted(seqs), f"channel {channel} was stored out of order"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"channel {channel} has a gap"


def drain(cluster: Cluster, timeout: float = 120) -> None:
    for node in cluster.nodes.values():
        wait_for(lambda n=node: n.counts()["outbox"] == 0, timeout, 0.2, f"{node.party}'s outbox to drain")


def test_kill_9_sender_mid_burst_loses_nothing(fresh_pair: Cluster) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()
    burst = Burst(pk, 2000)
    threads = burst.run()
    wait_for(lambda: len(burst.accepted) >= 600, 120, 0.02, "600 accepted messages")
    pk.kill9()
    for thread in threads:
        thread.join(timeout=60)
    killed_at = len(burst.accepted)
    assert killed_at < 2000, "the burst finished before the kill; the test proves nothing"
    pk.start()
    drain(fresh_pair)
    got = received(ir)
    check_exactly_once_in_order(burst, got)
    assert len(got) >= killed_at


def test_kill_9_receiver_mid_burst_loses_nothing(fresh_pair: Cluster) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()
    burst = Burst(pk, 2000)
    threads = burst.run()
    wait_for(lambda: len(received(ir)) >= 300, 120, 0.05, "ir to receive 300 messages")
    ir.kill9()
    for thread in threads:
        thread.join(timeout=120)
    assert len(burst.accepted) == 2000 and not burst.in_flight and not burst.refused
    ir.start()
    drain(fresh_pair)
    check_exactly_once_in_order(burst, received(ir))


def test_peer_outage_queues_then_delivers_everything_and_link_goes_down_then_up(fresh_pair: Cluster) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()
    state = lambda: pk.client("pk-dgmo").get("/api/v1/links").json()["links"][0]  # noqa: E731
    wait_for(lambda: state()["state"] == "UP", what="the link to come up")
    ir.stop()
    burst = Burst(pk, 60, workers=2)
    for thread in burst.run():
        thread.join(timeout=60)
    assert len(burst.accepted) == 60
    wait_for(lambda: state()["state"] == "DOWN", 30, 0.2, "the link to go DOWN")
    assert state()["outbox"] >= 60
    ir.start()
    wait_for(lambda: state()["state"] == "UP", 30, 0.2, "the link to come back UP")
    drain(fresh_pair)
    check_exactly_once_in_order(burst, received(ir))
    engine = pk.engine()
    with engine.connect() as conn:
        history = [r.state for r in conn.execute(select(link_events).order_by(link_events.c.id))]
    engine.dispose()
    assert "DOWN" in history and history[-1] == "UP" and history.index("DOWN") < len(history) - 1


def test_a_restarted_node_does_not_carry_up_since_across_its_own_outage(fresh_pair: Cluster) -> None:
    """After a restart a node's links start afresh: UP again only since a contact after the start."""
    pk = fresh_pair["pk"]
    fresh_pair.start()
    state = lambda: pk.client("pk-dgmo").get("/api/v1/links").json()["links"][0]  # noqa: E731
    before = wait_for(lambda: (link := state())["state"] == "UP" and link, what="the link to come up")
    pk.stop()
    time.sleep(1.5)  # an outage longer than the timestamps' precision, and than a link test's period
    restarted = format_time(now())
    pk.start()
    link = wait_for(lambda: (link := state())["state"] == "UP" and link, 30, 0.2, "the link to come back UP")
    assert link["since"] >= restarted > before["since"]
    engine = pk.engine()
    with engine.connect() as conn:
        history = [(r.state, r.at) for r in conn.execute(select(link_events).order_by(link_events.c.id))]
    engine.dispose()
    assert ("UP", before["since"]) in history  # the record of before the restart is kept
    assert history[-1] == ("UP", link["since"]) and history[-2][0] == "DOWN" and history[-2][1] >= restarted


def test_gap_makes_the_sender_replay_the_missing_range(fresh_pair: Cluster) -> None:
    """The receiver asks for what it lacks: a lost outbox row is sent again, in order."""
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    pk.start()
    ids = []
    with pk.client("pk-dgmo") as client:
        for n in range(3):
            response = client.post(
                "/api/v1/messages",
                json={"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
                      "body": {"text": f"gap {n}"}},
            )  # fmt: skip
            ids.append(response.json()["id"])
    pk.stop()
    engine = pk.engine()
    with engine.begin() as conn:  # lose the first queued envelope
        conn.execute(delete(outbox).where(outbox.c.envelope_id == ids[0]))
    engine.dispose()
    fresh_pair.start()
    drain(fresh_pair)
    got = [g for g in received(ir) if g["text"].startswith("gap ")]
    assert [g["id"] for g in got] == ids


def test_overdue_on_both_sides_and_alternates_are_told(fresh_pair: Cluster) -> None:
    """The test agreement gives liaison FLASH messages 2 s; nobody answers in time."""
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()

    async def scenario() -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        async def listen(node: NodeProc, operator: str) -> Any:
            uri = node.url.replace("https", "wss") + "/api/v1/stream"
            ws = await websockets.connect(
                uri, ssl=node.context, additional_headers={"Authorization": f"Bearer {node.token(operator)}"}
            )
            await ws.recv()  # hello
            return ws

        pk_alt, ir_alt = await listen(pk, "pk-dgmo"), await listen(ir, "ir-dgmo")
        with pk.client("pk-lo-zahedan") as client:
            response = await asyncio.to_thread(
                client.post, "/api/v1/messages",
                json={"channel": "liaison", "to": "ir:lo-turbat", "precedence": "FLASH", "type": "hotline.text",
                      "body": {"text": "Armed group seen crossing near Saravan"}},
            )  # fmt: skip
        message_id = response.json()["id"]
        found = []
        for ws in (pk_alt, ir_alt):
            events = []
            async with asyncio.timeout(20):
                while True:
                    event = json.loads(await ws.recv())
                    events.append(event)
                    if event["event"] == "overdue" and event["id"] == message_id:
                        break
            await ws.close()
            found.append(events)
        return message_id, found[0], found[1]

    message_id, pk_events, ir_events = run_async(scenario())
    assert pk_events[-1]["event"] == "overdue" and "pk:dgmo" in pk_events[-1]["offices"]
    assert ir_events[-1]["event"] == "overdue" and "ir:dgmo" in ir_events[-1]["offices"]

    def view(node: NodeProc, operator: str) -> dict[str, Any]:
        result: dict[str, Any] = node.client(operator).get(f"/api/v1/messages/{message_id}").json()
        return result

    wait_for(lambda: view(pk, "pk-lo-zahedan")["state"] == "overdue")
    wait_for(lambda: view(ir, "ir-lo-turbat")["state"] == "overdue")
    # The overdue records sit in both logs.
    for node, operator in ((pk, "pk-supervisor"), (ir, "ir-supervisor")):
        listing = node.client(operator).get("/api/v1/messages", params={"all_types": True, "limit": 1000}).json()
        assert any(m["type"] == "overdue" and m["refs"] == [message_id] for m in listing["messages"])
    # Once overdue, the alternate (ir:dgmo) may answer for the liaison officer; the ack is late but counts.
    # It reads, lists and proves the message it answers as the addressee does (QA: it answered blind).
    assert view(ir, "ir-dgmo")["state"] == "overdue"
    listed = ir.client("ir-dgmo").get("/api/v1/messages", params={"box": "in", "limit": 1000}).json()["messages"]
    assert message_id in [m["id"] for m in listed]
    assert ir.client("ir-dgmo").get(f"/api/v1/messages/{message_id}/proof").status_code == 200
    ack = ir.client("ir-dgmo").post(f"/api/v1/messages/{message_id}/ack", json={"note": "DGMO answering"})
    assert ack.status_code == 201, ack.text
    wait_for(lambda: view(pk, "pk-lo-zahedan")["state"] == "acknowledged")
    late = view(pk, "pk-lo-zahedan")
    assert late["overdue_at"] is not None and late["response"]["note"] == "DGMO answering"
    # From the message to each envelope about it, in the log: the overdue notices and the answer.
    referred = late["referred_by"]
    assert [r["log_index"] for r in referred] == sorted(r["log_index"] for r in referred)
    kinds = {r["type"] for r in referred}
    assert {"overdue", "ack"} <= kinds, referred
    ack_id = ack.json()["id"]
    assert [r["from"] for r in referred if r["id"] == ack_id] == ["ir:lo-turbat"]  # the office it was addressed to
    assert late["acknowledgement"]["id"] == ack_id
    # Both sides say which office answered: the alternate, not the addressee (auditor QA). The signed
    # ack names it in its body, so the record says so too.
    assert late["response"]["office"] == "ir:dgmo"
    assert view(ir, "ir-supervisor")["response"]["office"] == "ir:dgmo"
    assert ir.message("ir-supervisor", ack_id)["envelope"]["body"] == {"note": "DGMO answering", "office": "ir:dgmo"}


def test_cli_send_says_when_the_link_to_the_addressee_is_down(fresh_pair: Cluster) -> None:
    """`accepted` is queued here: over a DOWN link the operator is told at once, on standard error."""
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    pk.start()
    state = lambda: pk.client("pk-dgmo").get("/api/v1/links").json()["links"][0]  # noqa: E731
    wait_for(lambda: state()["failures"] >= 1, 30, 0.2, "a failed contact with the stopped peer")
    args = ("--node", str(pk.data), "--token", pk.token("pk-dgmo"), "--channel", "dgmo", "--to", "ir:dgmo")
    down = detente("send", *args, "--text", "over a dead link", "--precedence", "flash")
    assert down.code == 0, down.stderr
    assert down.stdout.rstrip().endswith(" accepted")
    assert down.stderr.startswith(f"warning: the link to ir is {state()['state']} since ")
    assert "the message is queued and goes when ir answers" in down.stderr
    ir.start()
    wait_for(lambda: state()["state"] == "UP", 30, 0.2, "the link to come UP")
    up = detente("send", *args, "--text", "over a live link")
    assert up.code == 0 and up.stdout.rstrip().endswith(" accepted") and up.stderr == "", up.stderr


def test_a_channel_stalled_at_an_envelope_the_peer_refuses_is_named(fresh_pair: Cluster) -> None:
    """The link is UP (ir answers), yet dgmo moves no more: the links view, `links` and `send` say so."""
    pk = fresh_pair["pk"]
    pk.start()  # ir down: the message waits in pk's outbox
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text"}
    with pk.client("pk-dgmo") as client:
        sent = client.post("/api/v1/messages", json={**request, "body": {"text": "altered later"}})
    assert sent.status_code == 201, sent.text
    pk.stop()
    engine = pk.engine()
    with engine.begin() as conn:  # the stored bytes no longer match their signature: ir must refuse them
        raw = conn.execute(select(envelopes.c.raw).where(envelopes.c.id == sent.json()["id"])).scalar_one()
        conn.execute(
            envelopes.update()
            .where(envelopes.c.id == sent.json()["id"])
            .values(raw=raw.replace(b"altered", b"ALTERED"))
        )
    engine.dispose()
    fresh_pair.start()
    link = lambda: pk.client("pk-dgmo").get("/api/v1/links").json()["links"][0]  # noqa: E731
    head = wait_for(lambda: link()["refused"] and link()["refused"][0], 30, 0.2, "ir to refuse the envelope")
    assert head["channel"] == "dgmo" and head["envelope_id"] == sent.json()["id"] and head["waiting_behind"] == 0
    assert "signature" in head["last_error"] and link()["state"] == "UP"
    args = ("--node", str(pk.data), "--token", pk.token("pk-dgmo"))
    listed = detente("links", *args)
    assert f"warning: ir refuses envelope {sent.json()['id']} (seq 1) on channel dgmo: " in listed.stderr
    behind = detente("send", *args, "--channel", "dgmo", "--to", "ir:dgmo", "--text", "stuck behind it")
    assert behind.code == 0 and "wait until a person acts" in behind.stderr
    supervisor = ("--node", str(pk.data), "--token", pk.token("pk-supervisor"))
    elsewhere = detente("send", *supervisor, "--channel", "fs", "--to", "ir:fs", "--text", "another channel")
    assert elsewhere.code == 0 and elsewhere.stderr == "", elsewhere.stderr  # fs is not stalled
