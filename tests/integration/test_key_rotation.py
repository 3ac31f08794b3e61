"""A node key rotation between two real nodes: `key new`, an amended agreement pinning the new key,
both nodes ratify it; messages from before and after the rotation are delivered and acknowledged,
and the log's audit spans both keys with `--earlier`.

Commands run through `detente.cli.main` in this process (`cli_support.detente`); the nodes are
real processes (`support.NodeProc`).
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import detente
from detente.core import agreement as agreement_mod
from detente.core.keys import Verifier, parse_vkey
from detente.core.note import open_note
from detente.errors import VerificationError
from detente.node.demo import fill_agreement
from support import Cluster, NodeProc, wait_for

TEXT = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text"}


def send(node: NodeProc, text: str) -> str:
    with node.client("pk-dgmo") as client:
        response = client.post("/api/v1/messages", json={**TEXT, "body": {"text": text}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ack(node: NodeProc, message_id: str) -> str:
    """ir acknowledges a message; return the ack's id."""
    with node.client("ir-dgmo") as client:
        response = client.post(f"/api/v1/messages/{message_id}/ack", json={"note": "Received"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def signed_by(note: bytes, key: Verifier) -> bool:
    try:
        open_note(note, [key])
    except VerificationError:
        return False
    return True


def state(node: NodeProc, operator: str, message_id: str) -> str:
    return str(node.message(operator, message_id, missing_ok=True).get("state"))


def test_a_rotated_key_keeps_the_link_and_the_record(fresh_pair: Cluster, tmp_path: Path) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    first = Path(fresh_pair.info["agreement"])
    old_vkey = fresh_pair.info["nodes"]["pk"]["vkey"]
    fresh_pair.start()
    try:
        before = send(pk, "before the rotation")
        wait_for(lambda: state(ir, "ir-dgmo", before) == "delivered", 15, 0.1, "the first message at ir")
    finally:
        fresh_pair.stop()

    made = detente("key", "new", "--data", str(pk.data))
    assert made.code == 0, made.stderr
    new_vkey = next(x for x in made.stdout.splitlines() if x.startswith('vkey = "'))[8:-1]
    values = {
        p: {"url": n["url"], "vkey": new_vkey if p == "pk" else n["vkey"], "tls_fingerprint": n["tls_fingerprint"]}
        for p, n in fresh_pair.info["nodes"].items()
    }
    amended = tmp_path / "amended.toml"
    amended.write_text(fill_agreement(first.read_text(encoding="utf-8"), values, None), encoding="utf-8")
    for node in (pk, ir):
        done = detente("agreement", "ratify", "--data", str(node.data), "--agreement", str(amended), "--replace")
        assert done.code == 0, done.stderr
        assert ("node key switched: node.key is now " + new_vkey in done.stdout) == (node is pk)
    shown = detente("key", "show", "--data", str(pk.data)).stdout.splitlines()
    assert shown[0] == f"key in force   {new_vkey}  (node.key)" and shown[1].endswith("pins this key for pk")
    assert shown[-1].startswith(f"retired key    {old_vkey}  (retired-keys/")

    fresh_pair.start()
    try:
        after = send(pk, "after the rotation")
        wait_for(lambda: state(ir, "ir-dgmo", after) == "delivered", 15, 0.1, "the second message at ir")
        acks = [ack(ir, before), ack(ir, after)]
        for message_id in (before, after):
            wait_for(lambda m=message_id: state(pk, "pk-dgmo", m) == "acknowledged", 15, 0.1, f"{message_id} acked")
        got = {m: ir.message("ir-dgmo", m)["envelope"]["agreement"] for m in (before, after)}
        assert got == {
            before: agreement_mod.load(first.read_text()).hash,
            after: agreement_mod.load(amended.read_text()).hash,
        }
        # Once ir proved its acks in pk's log, ir has cosigned a checkpoint pk signed with its new key.
        for ack_id in acks:
            wait_for(lambda a=ack_id: ir.message("ir-dgmo", a)["verified"], 15, 0.1, "the acks proven in pk's log")
    finally:
        fresh_pair.stop()

    out = tmp_path / "export"
    exported = detente("log", "export", "--data", str(pk.data), "--out", str(out))
    assert exported.code == 0, exported.stderr
    audited = detente("audit", str(out), "--agreement", str(amended), "--earlier", str(first), "--party", "pk")
    assert audited.code == 0, audited.stdout + audited.stderr
    assert audited.stdout.rstrip().splitlines()[-1].startswith("OK (")
    # Without the earlier agreement, what pk sealed and signed with its old key cannot be checked.
    alone = detente("audit", str(out), "--agreement", str(amended), "--party", "pk")
    first_hash = agreement_mod.load(first.read_text()).hash
    hint = f"agreement {first_hash[:12]}…, not given: if the log spans an amendment, give that agreement with --earlier"
    assert alone.code == 1 and hint in alone.stdout
    assert "not signed by pk's log key" in alone.stdout  # the checkpoints signed with the old key

    # The log spans both keys: its first checkpoints verify under the old key, the newest under the new one.
    old_key, new_key = parse_vkey(old_vkey), parse_vkey(new_vkey)
    newest = (out / "checkpoint").read_bytes()
    assert signed_by(newest, new_key) and not signed_by(newest, old_key)
    notes = [json.loads(line)["note"].encode() for line in (out / "checkpoints.jsonl").read_text().splitlines()]
    assert signed_by(notes[0], old_key) and not signed_by(notes[0], new_key)
