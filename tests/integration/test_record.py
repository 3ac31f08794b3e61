"""The record between two real nodes: checkpoints, mutual witnessing, proofs of delivery, tiles, export, audit.

The `stopped` pair exchanges messages until both sides are verified, then stops pk: the tests play
pk's part by hand (its key and its database are at hand) against ir, which keeps running, and
audit copies of pk's database.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select
from typer.testing import CliRunner

from detente.cli.app import app
from detente.core import agreement as agreement_mod
from detente.core import envelope as envelope_mod
from detente.core import keys, merkle, merkle_memory, merkle_verify, tiles, wire
from detente.core.checkpoint import (
    Checkpoint,
    format_add_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    parse_proof_bundle,
    parse_size_body,
    sign_checkpoint,
)
from detente.core.note import add_signatures, open_note, parse_note, parse_signature_lines
from detente.node.config import load_config
from detente.store.tables import log
from support import Cluster, NodeProc, run_async, wait_for

ADD_CHECKPOINT = "/federation/v1/add-checkpoint"


# --- helpers --------------------------------------------------------------------------------------


def send(node: NodeProc, operator: str, to: str, text: str) -> str:
    request = {"channel": "dgmo", "to": to, "precedence": "FLASH", "type": "hotline.text", "body": {"text": text}}
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def get(node: NodeProc, operator: str, path: str, **params: Any) -> httpx.Response:
    with node.client(operator) as client:
        return client.get(path, params=params)


def is_verified(node: NodeProc, operator: str, message_id: str) -> bool:
    response = get(node, operator, f"/api/v1/messages/{message_id}")
    return response.status_code == 200 and bool(response.json()["verified"])


def agreement_of(cluster: Cluster) -> agreement_mod.Agreement:
    return agreement_mod.load(Path(cluster.info["agreement"]).read_text(encoding="utf-8"))


def signer_of(node: NodeProc) -> keys.Signer:
    config = load_config(node.data)
    return config.signer()


def verifiers(cluster: Cluster, party: str) -> tuple[keys.Verifier, list[keys.Verifier]]:
    """The log key of `party` and the cosignature keys of every other party, as the agreement pins them."""
    doc = agreement_of(cluster)
    return doc.party(party).verifier(), [p.verifier().with_alg(keys.ALG_COSIGNATURE_V1) for p in doc.peers(party)]


def post_as(cluster: Cluster, sender: NodeProc, target: NodeProc, path: str, body: bytes) -> httpx.Response:
    """POST a federation request to `target`, signed with `sender`'s node key as `sender` would."""
    doc = agreement_of(cluster)
    signer = signer_of(sender)
    headers = wire.sign_request(
        signer, sender.party, wire.ratify(doc, signer), doc, "POST", path, body, int(time.time()), target.party
    )
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return httpx.post(target.url + path, content=body, headers=headers, verify=target.context, timeout=30)


def leaves(node: NodeProc) -> list[bytes]:
    engine = node.engine()
    try:
        with engine.connect() as conn:
            return [bytes(r[0]) for r in conn.execute(select(log.c.leaf).order_by(log.c.idx))]
    finally:
        engine.dispose()


def witnessed(node: NodeProc, peer: str) -> dict[str, Any]:
    """What `node` reports it cosigned of `peer`'s log."""
    response = get(node, f"{node.party}-admin", "/api/v1/log")
    assert response.status_code == 200, response.text
    return dict(response.json()["peers"][peer])


def check_bundle(cluster: Cluster, bundle: bytes, log_party: str, witness: str, raw: bytes) -> None:
    """A tlog-proof bundle verifies offline: log signature, the witness's cosignature, inclusion."""
    parsed = parse_proof_bundle(bundle)
    log_key, witness_keys = verifiers(cluster, log_party)
    cp, _, cosigned = open_checkpoint(parsed.note_bytes, log_key, witness_keys)
    assert f"{witness}.detente/log" in cosigned
    merkle_verify.verify_inclusion(parsed.index, cp.size, merkle.leaf_hash(raw), parsed.proof, cp.root)


def envelope_bytes(node: NodeProc, operator: str, message_id: str) -> bytes:
    return envelope_mod.parse(get(node, operator, f"/api/v1/messages/{message_id}").json()["envelope"]).raw


# --- the shared pair ------------------------------------------------------------------------------


def test_messages_both_ways_are_cosigned_and_verified(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]

    async def send_and_watch() -> tuple[str, dict[str, Any]]:
        uri = pk.url.replace("https", "wss") + "/api/v1/stream"
        headers = {"Authorization": f"Bearer {pk.token('pk-dgmo')}"}
        async with websockets.connect(uri, ssl=pk.context, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["event"] == "hello"
            sent = await asyncio.to_thread(send, pk, "pk-dgmo", "ir:dgmo", "Record test: pk to ir")
            async with asyncio.timeout(20):
                while (event := json.loads(await ws.recv()))["event"] != "verified" or event["id"] != sent:
                    pass
        return sent, event

    to_ir, event = run_async(send_and_watch())
    assert event["peer"] == "ir" and event["offices"] == ["pk:dgmo"] and event["log_index"] < event["size"]
    to_pk = send(ir, "ir-dgmo", "pk:dgmo", "Record test: ir to pk")
    assert is_verified(pk, "pk-dgmo", to_ir)
    wait_for(lambda: is_verified(ir, "ir-dgmo", to_pk), what="ir's message to be proven in pk's log")
    view = get(pk, "pk-dgmo", f"/api/v1/messages/{to_ir}").json()
    assert view["verified"] is True and view["verified_at"] >= view["delivered_at"]

    # Each node holds checkpoints of the other's log that it cosigned, and its own cosigned by the other.
    for node, peer in ((pk, "ir"), (ir, "pk")):
        state = witnessed(node, peer)
        assert state["cosigned_size"] >= 1 and state["our_size_cosigned"] >= 1

    # Offline proofs of each message, in the sender's and in the receiver's log.
    for node, operator, message_id, other in ((pk, "pk-dgmo", to_ir, "ir"), (ir, "ir-dgmo", to_pk, "pk")):
        raw = envelope_bytes(node, operator, message_id)
        own = wait_for(
            lambda n=node, o=operator, m=message_id: _cosigned_bundle(n, o, m, None), what="a cosigned checkpoint"
        )
        check_bundle(pair, own, node.party, other, raw)
        theirs = get(node, operator, f"/api/v1/messages/{message_id}/proof", log=other)
        assert theirs.status_code == 200, theirs.text
        # Each download is named for the log it proves, so that the two do not overwrite each other.
        assert theirs.headers["content-disposition"] == f'attachment; filename="{message_id}.{other}-log.tlog-proof"'
        ours = get(node, operator, f"/api/v1/messages/{message_id}/proof")
        assert ours.headers["content-disposition"] == f'attachment; filename="{message_id}.{node.party}-log.tlog-proof"'
        check_bundle(pair, theirs.content, other, node.party, raw)
        # The receiver can prove the same envelope in the sender's log (it asks the sender live).
        receiver = ir if node is pk else pk
        received = get(receiver, f"{receiver.party}-dgmo", f"/api/v1/messages/{message_id}/proof", log=node.party)
        assert received.status_code == 200, received.text
        check_bundle(pair, received.content, node.party, receiver.party, raw)
    assert get(pk, "pk-dgmo", "/api/v1/alarms").json() == {"alarms": []}


def _cosigned_bundle(node: NodeProc, operator: str, message_id: str, peer: str | None) -> bytes | None:
    """The proof bundle of `message_id`, once its checkpoint carries a cosignature (None before)."""
    response = get(node, operator, f"/api/v1/messages/{message_id}/proof", **({"log": peer} if peer else {}))
    if response.status_code != 200:
        return None
    note = parse_note(parse_proof_bundle(response.content).note_bytes)
    return response.content if len(note.signatures) >= 2 else None


def test_served_tiles_and_proofs_match_core(pair: Cluster) -> None:
    pk = pair["pk"]
    auditor = pk.client("pk-admin")
    with auditor:
        note = auditor.get("/federation/v1/log/checkpoint")
        assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
        cp, _, _ = open_checkpoint(note.content, *verifiers(pair, "pk"))
        entries: list[bytes] = []
        for n, width in tiles.entry_bundles_for_size(cp.size):
            bundle = auditor.get("/federation/v1/log/" + tiles.entries_path(n, width))
            assert bundle.status_code == 200, bundle.text
            entries += tiles.parse_entry_bundle(bundle.content, width)
        store = merkle_memory.MemoryHashStore(entries)
        assert store.root() == cp.root
        for level, n, width in tiles.tiles_for_size(cp.size):
            tile = auditor.get("/federation/v1/log/" + tiles.tile_path(level, n, width))
            assert tile.status_code == 200 and tile.content == tiles.read_tile(level, n, width, store)
            assert "immutable" in tile.headers["cache-control"]
        assert auditor.get("/federation/v1/log/" + tiles.tile_path(0, 10_000)).status_code == 404  # beyond the tree
        assert auditor.get("/federation/v1/log/tile/0/01").status_code == 404  # not canonical

        index = cp.size // 2
        inclusion = auditor.get("/federation/v1/log/proof/inclusion", params={"index": index, "size": cp.size})
        proof = [base64.b64decode(p) for p in inclusion.json()["proof"]]
        merkle_verify.verify_inclusion(index, cp.size, merkle.leaf_hash(entries[index]), proof, cp.root)
        by_hash = auditor.get(
            "/federation/v1/log/proof/inclusion",
            params={"hash": merkle.leaf_hash(entries[index]).hex(), "size": cp.size},
        )
        assert by_hash.json()["index"] == index
        old = max(1, cp.size // 3)
        consistency = auditor.get("/federation/v1/log/proof/consistency", params={"old": old, "size": cp.size})
        proof = [base64.b64decode(p) for p in consistency.json()["proof"]]
        merkle_verify.verify_consistency(old, cp.size, merkle.tree_hash(old, store), cp.root, proof)

    # Only peers and auditors read the log.
    assert httpx.get(pk.url + "/federation/v1/log/checkpoint", verify=pk.context).status_code == 401
    with pk.client("pk-dgmo") as operator:
        assert operator.get("/federation/v1/log/checkpoint").status_code == 403


def test_export_then_audit_round_trip(pair: Cluster, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "export"
    # ir runs on: the export ends at the newest checkpoint pk cosigned (the audit fails an unwitnessed
    # tail), so there must be one, also when this test runs alone.
    wait_for(lambda: witnessed(pair["ir"], "pk")["our_size_cosigned"], what="pk to cosign a checkpoint of ir's log")
    exported = runner.invoke(app, ["log", "export", "--data", str(pair["ir"].data), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (out / "checkpoint").is_file() and (out / "tile" / "entries").is_dir()
    size = parse_checkpoint(parse_note((out / "checkpoint").read_bytes()).text).size
    audited = runner.invoke(app, ["audit", str(out), "--agreement", pair.info["agreement"]])
    assert audited.exit_code == 0, audited.output
    assert f"tree         size {size} " in audited.output and audited.output.rstrip().split("\n")[-1].startswith("OK (")
    assert f"entries      {size} envelopes checked" in audited.output
    assert f"witnessed    pk up to size {size} (of {size})" in audited.output
    # A second export into the same (non-empty) directory is refused.
    again = runner.invoke(app, ["log", "export", "--data", str(pair["ir"].data), "--out", str(out)])
    assert again.exit_code != 0


# --- a pair whose pk is stopped: the tests speak for pk -------------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two nodes that exchanged messages until both were verified; then pk is stopped, ir runs on."""
    cluster = Cluster(tmp_path_factory.mktemp("stopped")).start()
    try:
        pk, ir = cluster["pk"], cluster["ir"]
        to_ir = send(pk, "pk-dgmo", "ir:dgmo", "Explosions reported near Panjgur")
        to_pk = send(ir, "ir-dgmo", "pk:dgmo", "Received; investigating")
        wait_for(lambda: is_verified(pk, "pk-dgmo", to_ir), what="pk's message to be verified")
        wait_for(lambda: is_verified(ir, "ir-dgmo", to_pk), what="ir's message to be verified")
        pk.stop()
        cluster.info["messages"] = {"to_ir": to_ir, "to_pk": to_pk}
        yield cluster
    finally:
        cluster.stop()


def pk_checkpoint(cluster: Cluster, size: int, entries: list[bytes]) -> bytes:
    """pk's log key signs a checkpoint of `entries[:size]` (pk's real tree, or a forged one)."""
    root = merkle_memory.MemoryHashStore(entries[:size]).root()
    return sign_checkpoint(Checkpoint("pk.detente/log", size, root), signer_of(cluster["pk"])).format()


def ir_holds(cluster: Cluster) -> int:
    """The size of pk's log that ir says it cosigned last, learnt the tlog-witness way (`old 0`)."""
    pk, ir = cluster["pk"], cluster["ir"]
    entries = leaves(pk)
    probe = post_as(
        cluster, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(0, [], pk_checkpoint(cluster, len(entries), entries))
    )
    assert probe.status_code == 409, probe.text
    assert probe.headers["content-type"] == "text/x.tlog.size"
    return parse_size_body(probe.content)


def test_old_zero_learns_the_state_and_409_resyncs(stopped: Cluster) -> None:
    pk, ir = stopped["pk"], stopped["ir"]
    entries = leaves(pk)
    held = ir_holds(stopped)
    assert 0 < held <= len(entries) and witnessed(ir, "pk")["cosigned_size"] == held

    # A stale `old` is answered with the size held; resent from there, with the proof, it is cosigned.
    note = pk_checkpoint(stopped, len(entries), entries)
    if held > 1:
        stale = post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(held - 1, [], note))
        assert stale.status_code == 409 and parse_size_body(stale.content) == held
    proof = merkle.prove_consistency(held, len(entries), merkle_memory.MemoryHashStore(entries))
    cosigned = post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(held, proof, note))
    assert cosigned.status_code == 200, cosigned.text
    sigs = parse_signature_lines(cosigned.content)
    _, witness_keys = verifiers(stopped, "pk")
    _, matched = open_note(add_signatures(parse_note(note), *sigs), witness_keys)
    assert [v.name for v in matched] == ["ir.detente/log"]
    assert witnessed(ir, "pk")["cosigned_size"] == len(entries)

    # The other answers of the protocol.
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, b"old 1\n").status_code == 400
    too_old = format_add_checkpoint(len(entries) + 1, [], note)
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, too_old).status_code == 400
    stranger = keys.Signer.generate("pk.detente/log")
    forged = sign_checkpoint(Checkpoint("pk.detente/log", len(entries), merkle.EMPTY_ROOT), stranger).format()
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(0, [], forged)).status_code == 403
    unknown = sign_checkpoint(
        Checkpoint("xx.detente/log", 1, merkle.EMPTY_ROOT), keys.Signer.generate("xx.detente/log")
    )
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(0, [], unknown.format())).status_code == 404
    own = sign_checkpoint(Checkpoint("ir.detente/log", 1, merkle.EMPTY_ROOT), signer_of(ir)).format()
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(0, [], own)).status_code == 404
    unsigned = httpx.post(ir.url + ADD_CHECKPOINT, content=format_add_checkpoint(0, [], note), verify=ir.context)
    assert unsigned.status_code == 401
    assert get(ir, "ir-dgmo", "/api/v1/alarms").json()["alarms"] == []


def test_forked_history_is_refused_alarmed_and_nothing_cosigned_is_lost(stopped: Cluster) -> None:
    pk, ir = stopped["pk"], stopped["ir"]
    entries = leaves(pk)
    held = ir_holds(stopped)
    # What ir cosigned of pk's log; not ir's own witnessing, which fails meanwhile since pk is down.
    cosigned = ("origin", "cosigned_size", "cosigned_root", "cosigned_at")
    before = {k: witnessed(ir, "pk")[k] for k in cosigned}
    # pk rewrites its history: the last entry ir cosigned is replaced, and the log goes on from there.
    forked = entries[: held - 1] + [entries[held - 1][:-1] + b" }", b"more"]
    assert forked[held - 1] != entries[held - 1]
    note = pk_checkpoint(stopped, len(forked), forked)
    proof = merkle.prove_consistency(held, len(forked), merkle_memory.MemoryHashStore(forked))

    async def submit_and_watch() -> tuple[httpx.Response, dict[str, Any]]:
        uri = ir.url.replace("https", "wss") + "/api/v1/stream"
        headers = {"Authorization": f"Bearer {ir.token('ir-dgmo')}"}
        async with websockets.connect(uri, ssl=ir.context, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["event"] == "hello"
            body = format_add_checkpoint(held, proof, note)
            response = await asyncio.to_thread(post_as, stopped, pk, ir, ADD_CHECKPOINT, body)
            async with asyncio.timeout(10):
                while (event := json.loads(await ws.recv()))["event"] != "alarm":
                    pass
        return response, event

    response, event = run_async(submit_and_watch())
    assert response.status_code == 422, response.text
    alarm_id = response.json()["alarm"]
    assert event["id"] == alarm_id and event["kind"] == "fork" and event["peer"] == "pk"

    # The same size with another root is refused too.
    same_size = pk_checkpoint(stopped, held, forked)
    refused = post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(held, [], same_size))
    assert refused.status_code == 422 and "same size" in refused.json()["detail"]
    # ... but it is the same fork, against the same cosigned checkpoint: no second alarm buries the first.
    assert "alarm" not in refused.json()
    forks = [a for a in get(ir, "ir-dgmo", "/api/v1/alarms").json()["alarms"] if a["origin"] == "pk.detente/log"]
    assert [a["id"] for a in forks] == [alarm_id]

    # Nothing ir had cosigned is lost, and the genuine log can still go on being witnessed.
    assert {k: witnessed(ir, "pk")[k] for k in cosigned} == before
    alarms = get(ir, "ir-dgmo", "/api/v1/alarms").json()["alarms"]
    alarm = next(a for a in alarms if a["id"] == alarm_id)
    assert alarm["kind"] == "fork" and alarm["peer"] == "pk" and alarm["origin"] == "pk.detente/log"

    # The evidence stands on its own: two checkpoints signed by pk's pinned key (the first cosigned
    # by ir), and a proof that does not link them.
    evidence = alarm["evidence"]
    log_key = keys.parse_vkey(evidence["log_vkey"])
    assert log_key == agreement_of(stopped).party("pk").verifier()
    witness_key = keys.parse_vkey(evidence["witness_vkey"])
    old_cp, _, cosigned = open_checkpoint(evidence["cosigned"]["note"].encode(), log_key, [witness_key])
    new_cp, _, _ = open_checkpoint(evidence["presented"]["note"].encode(), log_key)
    assert cosigned and (old_cp.size, new_cp.size) == (held, len(forked))
    with pytest.raises(Exception, match="invalid transparency proof"):
        merkle_verify.verify_consistency(
            old_cp.size, new_cp.size, old_cp.root, new_cp.root, [base64.b64decode(p) for p in evidence["proof"]]
        )
    genuine = pk_checkpoint(stopped, len(entries), entries)
    proof = merkle.prove_consistency(held, len(entries), merkle_memory.MemoryHashStore(entries))
    assert post_as(stopped, pk, ir, ADD_CHECKPOINT, format_add_checkpoint(held, proof, genuine)).status_code == 200


def _copy_node(node: NodeProc, to: Path) -> Path:
    """Copy a stopped node's data directory; point its configuration at the copied database."""
    shutil.copytree(node.data, to)
    text = (to / "node.toml").read_text(encoding="utf-8").replace(str(node.data), str(to))
    (to / "node.toml").write_text(text, encoding="utf-8")
    return to


def test_audit_of_a_tampered_entry_names_it(stopped: Cluster, tmp_path: Path) -> None:
    pk = stopped["pk"]
    runner = CliRunner()
    agreement = stopped.info["agreement"]
    clean = runner.invoke(app, ["log", "export", "--data", str(pk.data), "--out", str(tmp_path / "clean")])
    assert clean.exit_code == 0, clean.output
    audited = runner.invoke(app, ["audit", str(tmp_path / "clean"), "--agreement", agreement])
    assert audited.exit_code == 0, audited.output
    assert "cosignatures ir.detente/log:" in audited.output

    # One byte of one stored envelope changes, in a copy of pk's database.
    copy = _copy_node(pk, tmp_path / "pk-copy")
    message_id = stopped.info["messages"]["to_ir"]
    with sqlite3.connect(copy / "node.db") as db:
        index, leaf = db.execute("SELECT log.idx, log.leaf FROM log WHERE envelope_id = ?", (message_id,)).fetchone()
        tampered = bytes(leaf).replace(b"Panjgur", b"Panjgir", 1)
        assert tampered != leaf
        db.execute("UPDATE log SET leaf = ? WHERE idx = ?", (tampered, index))
    exported = runner.invoke(app, ["log", "export", "--data", str(copy), "--out", str(tmp_path / "tampered")])
    assert exported.exit_code == 0, exported.output
    failed = runner.invoke(app, ["audit", str(tmp_path / "tampered"), "--agreement", agreement])
    assert failed.exit_code == 1, failed.output
    assert f"FAIL entry {index} (envelope {message_id}): signature check failed" in failed.output
    # The checkpoints that no longer match follow from that entry: said once, after it.
    lines = failed.output.splitlines()
    named = next(n for n, line in enumerate(lines) if f"FAIL entry {index} (envelope {message_id})" in line)
    follows = [n for n, line in enumerate(lines) if "follow from the entry problems above" in line
               or "follows from the entry problems above" in line]  # fmt: skip
    assert len(follows) == 1 and follows[0] > named, failed.output


def test_a_node_that_lost_its_cosignatures_resyncs_through_409(stopped: Cluster) -> None:
    """pk restarts without the cosignatures it had: it sends `old 0`, learns ir's size and proves from it."""
    pk, ir = stopped["pk"], stopped["ir"]
    held = witnessed(ir, "pk")["cosigned_size"]
    alarms = len(get(ir, "ir-dgmo", "/api/v1/alarms").json()["alarms"])
    with sqlite3.connect(pk.data / "node.db") as db:
        db.execute("DELETE FROM cosignatures")
    pk.start()
    wait_for(lambda: witnessed(ir, "pk")["cosigned_size"] > held, what="ir to cosign pk's log beyond what it held")
    wait_for(lambda: (witnessed(pk, "ir")["our_size_cosigned"] or 0) > held, what="pk to store ir's cosignature")
    assert len(get(ir, "ir-dgmo", "/api/v1/alarms").json()["alarms"]) == alarms
    pk.stop()
