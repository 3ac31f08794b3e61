"""Replacing the agreement in force, against real nodes: only with --replace, only on a stopped
node, and `agreement show` tells which agreement the running node serves under.

The first ratification (during setup) is what `Cluster` and the demo do; these tests start from
there. Commands run through `detente.cli.main` in this process (`cli_support.detente`); the
nodes are real processes (`support.NodeProc`).
"""

from __future__ import annotations

import re
from pathlib import Path

from cli_support import assert_error, detente
from detente.core import agreement as agreement_mod
from support import AGREEMENT, Cluster, NodeProc, wait_for


def amended(cluster: Cluster, tmp_path: Path) -> tuple[Path, str]:
    """Write the cluster's agreement with one setting changed; return the file and its hash."""
    text = Path(cluster.info["agreement"]).read_text(encoding="utf-8")
    changed = re.sub(r"(?m)^link_test_seconds = .*$", "link_test_seconds = 7", text, count=1)
    assert changed != text
    path = tmp_path / "amended.toml"
    path.write_text(changed, encoding="utf-8")
    return path, agreement_mod.load(changed).hash


def show(node: NodeProc | Path) -> list[str]:
    """The lines `detente agreement show` prints for a node (or a data directory)."""
    result = detente("agreement", "show", "--data", str(node if isinstance(node, Path) else node.data))
    assert result.code == 0, result.stderr
    return result.stdout.splitlines()


def state(node: NodeProc) -> tuple[list[str], bytes]:
    """What a refused ratification must leave alone: `agreement show` and the installed file."""
    return show(node), (node.data / "agreement.toml").read_bytes()


def test_replacing_the_agreement_needs_replace_and_a_stopped_node(fresh_pair: Cluster, tmp_path: Path) -> None:
    pk = fresh_pair["pk"]
    data = ("--data", str(pk.data))
    in_force = agreement_mod.load(Path(fresh_pair.info["agreement"]).read_text(encoding="utf-8")).hash
    other, other_hash = amended(fresh_pair, tmp_path)
    pk.start()
    try:
        assert pk.proc is not None
        lines = show(pk)
        assert lines[0].endswith(in_force)
        assert lines[1].startswith("ratified by this node (pk) on ")
        assert lines[2] == f"the node serving from {pk.data} (pid {pk.proc.pid}) serves under this agreement"
        before = state(pk)

        refused = detente("agreement", "ratify", *data, "--agreement", str(other))
        assert_error(refused, f"Conflict: {pk.data} is under agreement {in_force[:12]}…, ratified ")
        assert "Give --replace to replace it; stop the node serving from" in refused.stderr
        assert f"(pid {pk.proc.pid}) first" in refused.stderr
        still_running = detente("agreement", "ratify", *data, "--agreement", str(other), "--replace")
        assert_error(still_running, f"serves under agreement {in_force[:12]}… until it stops: stop it, ratify with")
        assert state(pk) == before

        # The agreement in force, again, is harmless while it runs.
        again = detente("agreement", "ratify", *data, "--agreement", fresh_pair.info["agreement"])
        assert again.code == 0, again.stderr
        assert again.stdout.splitlines()[2] == "this agreement was in force already: nothing else changed"
        assert state(pk)[1] == before[1]
    finally:
        pk.stop()

    stopped = show(pk)
    assert stopped[2] == f"no node serves from {pk.data} now"
    before = state(pk)
    assert_error(detente("agreement", "ratify", *data, "--agreement", str(other)), "Give --replace to replace it")
    assert state(pk) == before

    replaced = detente("agreement", "ratify", *data, "--agreement", str(other), "--replace")
    assert replaced.code == 0, replaced.stderr
    out = replaced.stdout.splitlines()
    assert out[0] == f"ratified agreement pk-ir-2024 {other_hash}"
    assert out[2] == f"replaced agreement {in_force}; start the node to serve under the new one"
    assert out[-1] == "every peer (ir) must ratify this same agreement: until it does, the nodes refuse each other"
    assert (pk.data / "agreement.toml").read_bytes() == other.read_bytes()
    assert show(pk)[:3] == [f"pk-ir-2024  {other_hash}", show(pk)[1], f"no node serves from {pk.data} now"]

    pk.start()
    try:
        assert pk.proc is not None
        assert show(pk)[2] == f"the node serving from {pk.data} (pid {pk.proc.pid}) serves under this agreement"
        # Edited by hand while it runs: the running node still serves under the one it started with.
        (pk.data / "agreement.toml").write_text(Path(fresh_pair.info["agreement"]).read_text(encoding="utf-8"))
        assert show(pk)[2] == (
            f"the node serving from {pk.data} (pid {pk.proc.pid}) serves under agreement {other_hash}: "
            "a restart is pending; it serves under this one once started again"
        )
        assert_error(detente("agreement", "ratify", *data), f"{pk.data} is under agreement {other_hash[:12]}…")
    finally:
        pk.stop()


def test_envelopes_queued_before_an_amendment_are_delivered_after_it(fresh_pair: Cluster, tmp_path: Path) -> None:
    """pk queues a message while ir is down; both ratify an amendment; ir accepts the old-sealed envelope."""
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    in_force = agreement_mod.load(Path(fresh_pair.info["agreement"]).read_text(encoding="utf-8")).hash
    other, other_hash = amended(fresh_pair, tmp_path)
    pk.start()  # ir stays down: what pk sends waits in its outbox
    try:
        request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text"}
        with pk.client("pk-dgmo") as client:
            response = client.post("/api/v1/messages", json={**request, "body": {"text": "before the amendment"}})
        assert response.status_code == 201, response.text
        sent = response.json()["id"]
        wait_for(lambda: pk.counts()["outbox"] >= 1, what="pk's outbox")
    finally:
        pk.stop()
    queued = pk.counts()["outbox"]
    said = {}
    for node in (pk, ir):
        replaced = detente("agreement", "ratify", "--data", str(node.data), "--agreement", str(other), "--replace")
        assert replaced.code == 0, replaced.stderr
        said[node.party] = replaced.stdout.splitlines()
        # Both agreements are kept: the replaced one is the envelope's, the new one for the next amendment.
        kept = sorted(p.name for p in (node.data / "agreements").iterdir())
        assert kept == sorted([f"{in_force}.toml", f"{other_hash}.toml"])
    audit = f"an audit of this node's log now needs both agreements: --earlier with the one replaced ({in_force[:12]}…)"
    assert audit in said["pk"]
    assert audit not in said["ir"]  # ir never served under the replaced agreement: its log is empty
    said = detente("agreement", "ratify", "--data", str(pk.data), "--agreement", str(other)).stdout  # again: nothing
    assert "nothing else changed" in said

    fresh_pair.start()
    try:
        with pk.client("pk-dgmo") as client:
            wait_for(lambda: client.get(f"/api/v1/messages/{sent}").json()["state"] == "delivered", 30, 0.2,
                     "the envelope sealed before the amendment to be delivered")  # fmt: skip
        with ir.client("ir-dgmo") as client:
            got = client.get(f"/api/v1/messages/{sent}").json()
        assert got["envelope"]["agreement"] == in_force and got["envelope"]["body"]["text"] == "before the amendment"
        assert queued >= 1 and pk.counts()["outbox"] == 0
        # Without its copy of the earlier agreement, ir says so when it starts.
        ir.stop()
        (ir.data / "agreements" / f"{in_force}.toml").unlink()
        ir.start()
        assert f"warning: agreement {in_force[:12]}…, ratified by this node before, is not kept in " in (
            ir.log_path.read_text()
        )
    finally:
        fresh_pair.stop()


def test_a_node_not_ratified_yet_says_so(tmp_path: Path) -> None:
    assert detente("init", "--party", "pk", "--agreement", str(AGREEMENT), "--data", str(tmp_path / "pk")).code == 0
    lines = show(tmp_path / "pk")
    assert lines[1] == (
        "NOT ratified by this node (pk): `detente serve` refuses to start until "
        f"`detente agreement ratify --data {tmp_path / 'pk'} --agreement COMPLETED.toml` (the agreement with every "
        "party's url, vkey and tls_fingerprint filled in; without --agreement, the installed one)"
    )
    assert lines[2] == f"no node serves from {tmp_path / 'pk'} now"
