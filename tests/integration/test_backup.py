"""`detente backup` of a running node, its refusals, and a restore into a node that lost its database."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

from cli_support import assert_error, detente
from support import Cluster, NodeProc, wait_for

TEXT = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text"}
NODE_FILES = {"node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml", "node.db"}


def send(node: NodeProc, text: str) -> str:
    with node.client("pk-dgmo") as client:
        response = client.post("/api/v1/messages", json={**TEXT, "body": {"text": text}})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


def test_a_running_node_is_copied_consistently(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    send(pk, "before the backup")
    before = pk.counts()
    out = tmp_path / "pk-backup"
    done = detente("backup", "--data", str(pk.data), "--out", str(out))
    assert done.code == 0, done.stderr
    copied = {p.name for p in out.iterdir() if p.is_file()}
    assert NODE_FILES <= copied
    assert stat.S_IMODE(out.stat().st_mode) == 0o700  # it holds the private key
    assert (out / "node.key").read_bytes() == (pk.data / "node.key").read_bytes()
    with sqlite3.connect(out / "node.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (log_size,) = db.execute("SELECT count(*) FROM log").fetchone()
        (stored,) = db.execute("SELECT count(*) FROM envelopes").fetchone()
    assert log_size >= before["log"] and stored >= before["envelopes"]
    assert f"database     node.db, a consistent copy; the log holds {log_size} entries" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("a restore is exact only if the node does nothing after")


def test_refusals_leave_nothing_behind(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(used)), "is not a new or empty directory")
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(pk.data / "b")), "inside the node's data")
    assert not (pk.data / "b").exists()
    missing = detente("backup", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert_error(missing, "is not a node data directory (run `detente init` first)")
    assert not (tmp_path / "o").exists()
    # A node missing one of its files: refused, and the half-made copy removed.
    broken = tmp_path / "broken"
    shutil.copytree(pk.data, broken, ignore=shutil.ignore_patterns("node.db*", "serve.lock", "*.log"))
    (broken / "tls.crt").unlink()
    toml = (broken / "node.toml").read_text()
    (broken / "node.toml").write_text(toml.replace(str(pk.data), str(broken)))
    shutil.copy(pk.data / "node.db", broken / "node.db")
    refused = detente("backup", "--data", str(broken), "--out", str(tmp_path / "half"))
    assert_error(refused, "tls.crt is missing: it is part of the node")
    assert not (tmp_path / "half").exists()


def test_a_copy_taken_after_the_last_message_restores_a_node_that_lost_its_database(
    fresh_pair: Cluster, tmp_path: Path
) -> None:
    pk = fresh_pair["pk"]
    fresh_pair.start()
    try:
        sent = send(pk, "kept by the backup")
        wait_for(lambda: pk.counts()["outbox"] == 0, what="delivery before the backup")
        assert detente("backup", "--data", str(pk.data), "--out", str(tmp_path / "copy")).code == 0
        pk.stop()
        for lost in pk.data.glob("node.db*"):
            lost.unlink()
        for name in ("node.db", "node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml"):
            shutil.copy2(tmp_path / "copy" / name, pk.data / name)
        pk.start()
        with pk.client("pk-dgmo") as client:
            assert client.get(f"/api/v1/messages/{sent}").json()["state"] in ("delivered", "acknowledged")
        after = send(pk, "after the restore")
        wait_for(lambda: fresh_pair["ir"].client("ir-dgmo").get(f"/api/v1/messages/{after}").status_code == 200,
                 30, 0.2, "the first message after the restore to reach ir")  # fmt: skip
    finally:
        fresh_pair.stop()
