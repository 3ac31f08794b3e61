"""`detente backup` of a running node and its refusals; `detente restore` after a crash, into a node that
lost its database or into a new directory, and its refusals; the evidence files, copied, checked and put back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli_support import assert_error, detente
from detente.core.keys import Signer
from support import Cluster, NodeProc, wait_for
from workflow_support import PRENOTIFY, get, iso, post, reaches
from workflow_support import send as send_type

NO_PEER = "no peer has it: only you can give it back"
TEXT = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text"}
NODE_FILES = {"node.toml", "node.key", "tls.crt", "tls.key", "agreement.toml", "node.db"}


def send(node: NodeProc, text: str) -> str:
    with node.client("pk-dgmo") as client:
        response = client.post("/api/v1/messages", json={**TEXT, "body": {"text": text}})
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


def log_size(db_file: Path) -> int:
    """Entries in the log of a SQLite database file, after checking its integrity."""
    with contextlib.closing(sqlite3.connect(db_file)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (size,) = db.execute("SELECT count(*) FROM log").fetchone()
    return int(size)


def sidecars(directory: Path) -> list[str]:
    """What SQLite or a restore left beside the files: -wal, -shm, -journal, .NAME.restoring."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or "-" in p.name)


def backed_up(node: Path, out: Path) -> Path:
    done = detente("backup", "--data", str(node), "--out", str(out))
    assert done.code == 0, done.stderr
    return out


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.name != "serve.lock"}


def upload(node: NodeProc, content: bytes, media_type: str = "text/plain") -> dict[str, Any]:
    """Upload an evidence file as pk-dgmo; return the item an `action.report` lists."""
    answer = post(node, "pk-dgmo", "/api/v1/evidence?name=site.txt", None, content=content,
                  headers={"Content-Type": media_type})  # fmt: skip
    item: dict[str, Any] = answer["evidence"]
    return item


def evidence_rows(db_file: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """Each evidence row of a SQLite database file: sha256 -> (state, peer, last_error)."""
    with contextlib.closing(sqlite3.connect(db_file)) as db:
        rows = db.execute("SELECT sha256, state, peer, last_error FROM evidence").fetchall()
    return {sha256: (state, peer, error) for sha256, state, peer, error in rows}


def sound(directory: Path) -> dict[str, bytes]:
    """The evidence files of a directory, each asserted to hash to its name."""
    found = {p.name: p.read_bytes() for p in (directory / "evidence").iterdir()}
    assert all(hashlib.sha256(content).hexdigest() == name for name, content in found.items()), sorted(found)
    return found


def damage(path: Path) -> None:
    """Flip the first byte of a file: its size stays, its hash changes."""
    content = path.read_bytes()
    path.write_bytes(bytes([content[0] ^ 1]) + content[1:])


def reported_with_evidence(pk: NodeProc, ir: NodeProc) -> tuple[str, dict[str, Any], bytes]:
    """pk proposes an operation, ir consents, pk executes and reports it with a file as evidence, which
    ir fetches; return the action's id, the evidence item and the file's content."""
    action = send_type(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25),
                       "end": iso(30)}})["id"]  # fmt: skip
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    send_type(ir, "ir-dgmo", "action.consent", {"note": "No objection"}, refs=[action])
    reaches(pk, "pk-dgmo", "action", action, "consented")
    send_type(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action])
    content = b"site survey " + os.urandom(16).hex().encode()
    item = upload(pk, content)
    send_type(pk, "pk-dgmo", "action.report", {"summary": "Done.", "evidence": [item]}, refs=[action])
    wait_for(lambda: (ir.data / "evidence" / item["sha256"]).exists(), what="ir to fetch the evidence from pk")
    return action, item, content


def test_a_running_node_is_copied_consistently(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    send(pk, "before the backup")
    before = pk.counts()
    out = tmp_path / "pk-backup"
    done = detente("backup", "--data", str(pk.data), "--out", str(out))
    assert done.code == 0, done.stderr
    copied = {p.name for p in out.iterdir() if p.is_file()}
    assert NODE_FILES <= copied
    assert sidecars(out) == []  # one self-contained file: nothing to forget when it is copied or restored
    assert stat.S_IMODE(out.stat().st_mode) == 0o700  # it holds the private key
    assert (out / "node.key").read_bytes() == (pk.data / "node.key").read_bytes()
    with contextlib.closing(sqlite3.connect(out / "node.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        (size,) = db.execute("SELECT count(*) FROM log").fetchone()
        (stored,) = db.execute("SELECT count(*) FROM envelopes").fetchone()
    assert sidecars(out) == []
    assert size >= before["log"] and stored >= before["envelopes"]
    assert f"database     node.db, a consistent copy; the log holds {size} entries" in done.stdout
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("a restore is exact only if the node does nothing after")
    # A serving node logs link tests and checkpoints every few seconds: the copy is behind at once.
    assert lines[-1].startswith("the node is serving: its link tests, checkpoints and cosignatures go into its log")


def test_refusals_leave_nothing_behind(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(used)), "is not a new or empty directory")
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(pk.data / "b")), "inside the node's data")
    assert not (pk.data / "b").exists()
    # The same place reached through `..` or a symlink: the resolved paths are compared.
    dotted = pk.data.parent / "elsewhere" / ".." / pk.data.name / "b"
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(dotted)), "inside the node's data")
    link = tmp_path / "link"
    link.symlink_to(pk.data, target_is_directory=True)
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(link / "b")), "inside the node's data")
    assert_error(detente("backup", "--data", str(pk.data), "--out", str(link)), "inside the node's data")
    assert not (pk.data / "b").exists() and not (pk.data.parent / "elsewhere").exists()
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


def test_a_copy_taken_after_the_last_message_restores_a_node_that_lost_its_disk_evidence_included(
    fresh_pair: Cluster, tmp_path: Path
) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()
    try:
        sent = send(pk, "kept by the backup")
        # An action reported with evidence (the QA report): ir fetches the file from pk.
        action, item, content = reported_with_evidence(pk, ir)
        wait_for(lambda: pk.counts()["outbox"] == 0, what="delivery before the backup")
        copy = backed_up(pk.data, tmp_path / "copy")
        assert sound(copy) == {item["sha256"]: content}
        pk.stop()
        stopped = detente("backup", "--data", str(pk.data), "--out", str(tmp_path / "stopped"))
        assert stopped.code == 0 and "the node is serving" not in stopped.stdout, stopped.stdout + stopped.stderr
        assert "evidence     1 file, SHA-256 checked; every file the database lists as stored is in the copy" in (
            stopped.stdout
        )
        # A lost disk: the database and the evidence gone.
        for lost in pk.data.glob("node.db*"):
            lost.unlink()
        shutil.rmtree(pk.data / "evidence")
        # An earlier release's backup holds no evidence/: refused, naming the file, and nothing written.
        earlier = tmp_path / "earlier"
        shutil.copytree(copy, earlier, ignore=shutil.ignore_patterns("evidence"))
        assert_error(
            detente("restore", "--data", str(pk.data), "--from", str(earlier)),
            f"{earlier} would lose 1 evidence file its database lists as stored, which {pk.data} does not hold sound "
            f"either: {item['sha256']} (not in the backup (an earlier release's, which copied no evidence): ir holds "
            "it, and gives it back once the loss is accepted). Put",
        )
        assert not (pk.data / "node.db").exists() and not (pk.data / "evidence").exists()
        assert sidecars(pk.data) == []
        done = detente("restore", "--data", str(pk.data), "--from", str(copy))
        assert done.code == 0, done.stderr
        assert f"the log holds {log_size(copy / 'node.db')} entries" in done.stdout and "removed" not in done.stdout
        assert "evidence     1 file here, each SHA-256 checked: 1 put back from the backup, 0 here already; every " \
            "file the database lists as stored is here" in done.stdout  # fmt: skip
        assert sound(pk.data) == {item["sha256"]: content} and sidecars(pk.data / "evidence") == []
        pk.start()
        with pk.client("pk-dgmo") as client:
            assert client.get(f"/api/v1/messages/{sent}").json()["state"] in ("delivered", "acknowledged")
            assert client.get(f"/api/v1/evidence/{item['sha256']}").content == content
        assert get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["evidence"][0]["state"] == "stored"
        after = send(pk, "after the restore")
        wait_for(lambda: ir.client("ir-dgmo").get(f"/api/v1/messages/{after}").status_code == 200,
                 30, 0.2, "the first message after the restore to reach ir")  # fmt: skip

        # The earlier release's backup, its loss accepted: the file is missing, and fetched again from ir.
        pk.stop()
        shutil.rmtree(pk.data / "evidence")
        done = detente("restore", "--data", str(pk.data), "--from", str(earlier), "--accept-lost-evidence")
        assert done.code == 0, done.stderr
        assert f"lost         {item['sha256']}: not in the backup (an earlier release's, which copied no evidence); " \
            "marked missing, fetched again from ir" in done.stdout  # fmt: skip
        state, peer, error = evidence_rows(pk.data / "node.db")[item["sha256"]]
        assert (state, peer) == ("missing", "ir") and error is not None and error.startswith("lost by the restore")
        pk.start()

        def fetched_again() -> bool:
            with pk.client("pk-dgmo") as client:
                return bool(client.get(f"/api/v1/evidence/{item['sha256']}").content == content)

        wait_for(fetched_again, what="pk to fetch its lost evidence again from ir")
        assert get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["evidence"][0]["state"] == "stored"
    finally:
        fresh_pair.stop()


def test_a_restore_after_a_crash_brings_back_the_backup_not_the_newer_state_in_the_wal(
    fresh_pair: Cluster, tmp_path: Path
) -> None:
    pk = fresh_pair["pk"]
    fresh_pair.start()
    try:
        kept = send(pk, "kept by the backup")
        wait_for(lambda: pk.counts()["outbox"] == 0, what="delivery before the backup")
        copy = backed_up(pk.data, tmp_path / "copy")
        backed = log_size(copy / "node.db")
        newer = [send(pk, f"after the backup {n}") for n in range(20)]
        wait_for(lambda: pk.counts()["outbox"] == 0, what="delivery after the backup")
        assert pk.counts()["log"] > backed
        pk.kill9()  # a crash: no checkpoint, the newer state stays in node.db-wal
        assert (pk.data / "node.db-wal").stat().st_size > 0
        done = detente("restore", "--data", str(pk.data), "--from", str(copy))
        assert done.code == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith(f"restored {pk.data} from {copy}: node.toml, node.key, tls.crt")
        assert f"database     {pk.data / 'node.db'}, integrity checked; the log holds {backed} entries" in lines
        assert "removed      node.db-wal, node.db-shm: the old database's" in done.stdout
        assert "not restored" not in done.stdout and "kept " not in done.stdout  # nothing of PostgreSQL, no key kept
        assert lines[-1].startswith("a restore is exact only if the node did nothing after the copy")
        assert sidecars(pk.data) == []
        assert log_size(pk.data / "node.db") == backed  # not the WAL's newer state, and not corrupt
        pk.start()
        assert pk.message("pk-dgmo", kept)["state"] in ("delivered", "acknowledged")
        assert all(pk.message("pk-dgmo", later, missing_ok=True) == {} for later in newer)
        assert log_size(pk.data / "node.db") >= backed
        assert "malformed" not in pk.log_path.read_text()
    finally:
        fresh_pair.stop()


def test_a_restore_is_refused_while_the_node_serves(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    copy = backed_up(pk.data, tmp_path / "copy")
    before = {name: (pk.data / name).read_bytes() for name in ("node.toml", "node.key", "agreement.toml")}
    assert pk.proc is not None
    refused = detente("restore", "--data", str(pk.data), "--from", str(copy))
    assert_error(refused, f"a node serves from {pk.data} (pid {pk.proc.pid}); stop it first")
    assert {name: (pk.data / name).read_bytes() for name in before} == before
    assert not list(pk.data.glob(".*restoring*"))
    assert pk.is_up()


def test_a_restore_takes_only_a_complete_sound_backup_of_the_same_node(pair: Cluster, tmp_path: Path) -> None:
    pk_copy = backed_up(pair["pk"].data, tmp_path / "pk-copy")
    ir_copy = backed_up(pair["ir"].data, tmp_path / "ir-copy")
    # Into a new directory (a move): the database goes to DIR/node.db, and node.toml says so.
    moved = tmp_path / "moved"
    done = detente("restore", "--data", str(moved), "--from", str(pk_copy))
    assert done.code == 0, done.stderr
    assert NODE_FILES <= set(files_of(moved)) and sidecars(moved) == []
    assert f'db = "sqlite:///{moved / "node.db"}"' in (moved / "node.toml").read_text()
    assert stat.S_IMODE((moved / "node.key").stat().st_mode) == 0o600
    assert log_size(moved / "node.db") == log_size(pk_copy / "node.db")
    node = files_of(moved)

    def refused(source: Path, says: str, data: Path = moved) -> None:
        assert_error(detente("restore", "--data", str(data), "--from", str(source)), says)
        assert files_of(moved) == node and sidecars(moved) == []

    def spoiled(name: str, spoil: Callable[[Path], object]) -> Path:
        spoilt = tmp_path / name
        shutil.copytree(pk_copy, spoilt)
        spoil(spoilt)
        return spoilt

    refused(ir_copy, f"{ir_copy} is a backup of node ir, not of pk in {moved}")
    other_key = Signer.generate("pk.detente/log").to_pem()
    refused(spoiled("other-key", lambda d: (d / "node.key").write_bytes(other_key)), "a backup of another node pk")
    refused(tmp_path / "none", "is not a directory: give the directory `detente backup` wrote")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "is not a complete backup of a node: it has no node.toml, node.key, tls.crt")
    refused(spoiled("no-db", lambda d: (d / "node.db").unlink()), "it has no node.db (the node's is SQLite)")
    refused(
        spoiled("no-tls", lambda d: (d / "tls.key").unlink()), "is not a complete backup of a node: it has no tls.key"
    )
    refused(spoiled("not-db", lambda d: (d / "node.db").write_bytes(b"x" * 4096)), "file is not a database")

    def garble(directory: Path) -> None:
        with (directory / "node.db").open("r+b") as db:
            db.seek(4096)  # past the header: the pages of the tables
            db.write(b"\xff" * 8192)

    refused(spoiled("garbled", garble), "node.db cannot be restored")

    def no_log(directory: Path) -> None:
        (directory / "node.db").unlink()
        with contextlib.closing(sqlite3.connect(directory / "node.db")) as db:
            db.execute("CREATE TABLE other (x)")

    refused(spoiled("no-log", no_log), "node.db is not a node's database: it has no log")
    refused(moved, f"{moved} is inside {moved}: restore from a backup kept elsewhere")
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("mine")
    refused(pk_copy, f"{stranger} holds keep.txt but no node.toml", data=stranger)
    assert [p.name for p in stranger.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "moved-again").exists()
    refused(spoiled("garbled-new", garble), "cannot be restored", data=tmp_path / "moved-again")
    assert not (tmp_path / "moved-again").exists()  # a directory made for the restore is removed again

    # A backup of a stopped node whose database is in WAL mode: nothing left beside either database.
    with contextlib.closing(sqlite3.connect(moved / "node.db")) as db:
        assert db.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    again = backed_up(moved, tmp_path / "again")
    assert sidecars(moved) == [] and sidecars(again) == []
    # And back in place, over the node it was taken of.
    done = detente("restore", "--data", str(moved), "--from", str(again))
    assert done.code == 0, done.stderr
    assert files_of(moved) == node and sidecars(moved) == []


def test_evidence_is_checked_on_the_way_in_and_out_and_a_loss_refused_unless_accepted(
    pair: Cluster, tmp_path: Path
) -> None:
    pk = pair["pk"]
    first, second = b"first " + os.urandom(8).hex().encode(), b"second " + os.urandom(8).hex().encode()
    a, b = upload(pk, first)["sha256"], upload(pk, second)["sha256"]
    copy = backed_up(pk.data, tmp_path / "copy")
    assert stat.S_IMODE((copy / "evidence").stat().st_mode) == 0o700
    assert {a: first, b: second}.items() <= sound(copy).items()
    moved = tmp_path / "moved"
    done = detente("restore", "--data", str(moved), "--from", str(copy))
    assert done.code == 0, done.stderr
    assert "every file the database lists as stored is here" in done.stdout
    assert sound(moved) == sound(copy) and sidecars(moved / "evidence") == []

    def spoiled(name: str, spoil: Callable[[Path], object]) -> Path:
        spoilt = tmp_path / name
        shutil.copytree(copy, spoilt)
        spoil(spoilt / "evidence")
        return spoilt

    damaged = spoiled("damaged", lambda d: damage(d / a))
    lacking = spoiled("lacking", lambda d: (d / b).unlink())
    earlier = spoiled("earlier", shutil.rmtree)
    new = tmp_path / "new"
    refusals = ((damaged, f"{a} (damaged in the backup (its bytes do not hash to its name): {NO_PEER})"),
                (lacking, f"{b} (not in the backup: {NO_PEER})"),
                (earlier,
                 f"{a} (not in the backup (an earlier release's, which copied no evidence): {NO_PEER}"))  # fmt: skip
    for source, says in refusals:
        refused = detente("restore", "--data", str(new), "--from", str(source))
        assert_error(refused, says)
        assert "--accept-lost-evidence" in refused.stderr and not new.exists()
    # Every file is named, none hidden behind "and N more": each here is one that only the operator has.
    refused = detente("restore", "--data", str(new), "--from", str(earlier))
    listed = [sha256 for sha256, (state, _, _) in evidence_rows(copy / "node.db").items() if state == "stored"]
    assert all(f"{sha256} (not in the backup" in refused.stderr for sha256 in listed), refused.stderr
    assert " more" not in refused.stderr
    # A refusal into a directory made beforehand leaves it as it was: empty, no serve.lock.
    premade = tmp_path / "premade"
    premade.mkdir(mode=0o755)
    assert_error(detente("restore", "--data", str(premade), "--from", str(earlier)), "would lose")
    assert list(premade.iterdir()) == []
    # Restored into it, the node is as private as `init` makes it, whatever the umask made the directory.
    done = detente("restore", "--data", str(premade), "--from", str(copy))
    assert done.code == 0, done.stderr
    modes = {name: stat.S_IMODE((premade / name).stat().st_mode) for name in ("", "node.db", "node.key", "evidence")}
    assert modes == {"": 0o700, "node.db": 0o600, "node.key": 0o600, "evidence": 0o700}
    # DIR's own sound copy counts: a backup lacking a file restores over a node that holds it.
    done = detente("restore", "--data", str(moved), "--from", str(lacking))
    assert done.code == 0, done.stderr
    assert sound(moved)[b] == second
    held = len(sound(moved))  # each counted, b too, which the backup lacks
    assert f"evidence     {held} files here, each SHA-256 checked: 0 put back from the backup, {held} here already; " \
        "every file" in done.stdout  # fmt: skip
    # A damaged copy in DIR does not: refused, and DIR left as it was.
    damage(moved / "evidence" / a)
    before = {p.name: p.read_bytes() for p in (moved / "evidence").iterdir()}
    assert_error(
        detente("restore", "--data", str(moved), "--from", str(damaged)),
        f"{a} (damaged in the backup (its bytes do not hash to its name), and {moved} holds a damaged copy (its "
        f"bytes hash to {hashlib.sha256((moved / 'evidence' / a).read_bytes()).hexdigest()[:12]}…): {NO_PEER})",
    )
    assert {p.name: p.read_bytes() for p in (moved / "evidence").iterdir()} == before and sidecars(moved) == []
    # A backup of a node whose file is damaged names it and exits 1; the copy is written without it.
    taken = detente("backup", "--data", str(moved), "--out", str(tmp_path / "of-damaged"))
    assert taken.code == 1 and f"lost         {a}: damaged on the node: its bytes do not hash to its name" in (
        taken.stdout
    )
    assert_error(taken, "lacks 1 file of evidence the database lists as stored")
    assert a not in sound(tmp_path / "of-damaged") and b in sound(tmp_path / "of-damaged")
    # A loss accepted: restored, and the file marked missing; no peer ever had it, so it is uploaded again.
    done = detente("restore", "--data", str(new), "--from", str(earlier), "--accept-lost-evidence")
    assert done.code == 0, done.stderr
    assert f"lost         {a}: not in the backup (an earlier release's, which copied no evidence); marked " \
        "missing, no peer has it: upload it again" in done.stdout  # fmt: skip
    assert "evidence     the backup has no evidence/ (taken by an earlier release)" in done.stdout
    assert not (new / "evidence").exists()
    rows = evidence_rows(new / "node.db")
    assert rows[a][:2] == ("missing", None) and rows[b][:2] == ("missing", None)
    assert all(state == "missing" for state, _, _ in rows.values())  # that backup held no file at all


def test_a_backup_taken_during_uploads_holds_every_file_its_database_lists(pair: Cluster, tmp_path: Path) -> None:
    pk = pair["pk"]
    uploaded: list[str] = []

    def uploads() -> None:
        with pk.client("pk-dgmo") as client:
            for n in range(40):
                response = client.post("/api/v1/evidence", content=f"upload {n} {os.urandom(8).hex()}".encode(),
                                       headers={"Content-Type": "text/plain"})  # fmt: skip
                assert response.status_code == 201, response.text
                uploaded.append(response.json()["evidence"]["sha256"])

    uploading = threading.Thread(target=uploads)
    uploading.start()
    try:
        wait_for(lambda: len(uploaded) >= 2, what="the uploads to start")
        copy = backed_up(pk.data, tmp_path / "copy")
    finally:
        uploading.join()
    with contextlib.closing(sqlite3.connect(copy / "node.db")) as db:
        listed = {row[0] for row in db.execute("SELECT sha256 FROM evidence WHERE state = 'stored'")}
    assert set(uploaded[:2]) <= listed <= set(sound(copy))  # extra files, uploaded meanwhile, are harmless
    done = detente("restore", "--data", str(tmp_path / "moved"), "--from", str(copy))
    assert done.code == 0 and "every file the database lists as stored is here" in done.stdout, done.stderr


@pytest.mark.postgres
def test_a_postgresql_node_s_files_are_restored_and_its_database_left_to_the_server(
    tmp_path: Path, pg_database: Callable[[str], str]
) -> None:
    url = pg_database("backup")
    cluster = Cluster(tmp_path, db_urls={"pk": url, "ir": pg_database("backup")})
    pk = cluster["pk"]
    # A file on disk the database does not list (as an upload between the dump and `backup`): copied.
    content = b"kept beside the dump"
    sha256 = hashlib.sha256(content).hexdigest()
    (pk.data / "evidence").mkdir()
    (pk.data / "evidence" / sha256).write_bytes(content)
    taken = detente("backup", "--data", str(pk.data), "--out", str(tmp_path / "copy"))
    assert taken.code == 0, taken.stderr
    assert "evidence     1 file, SHA-256 checked; every file the database lists as stored is in the copy" in (
        taken.stdout
    )
    copy = tmp_path / "copy"
    assert "node.db" not in files_of(copy) and sound(copy) == {sha256: content}
    before = pk.counts()
    done = detente("restore", "--data", str(pk.data), "--from", str(copy))
    assert done.code == 0, done.stderr
    assert (
        "database     not restored: " in done.stdout
        and "is PostgreSQL; restore it with the server's own tools" in done.stdout
    )
    assert pk.counts() == before and not (pk.data / "node.db").exists()
    moved = tmp_path / "moved"
    # The database's list is in the dump: only a file damaged in the backup is known lost, and refused.
    damage(copy / "evidence" / sha256)
    assert_error(
        detente("restore", "--data", str(moved), "--from", str(copy)),
        f"would lose 1 evidence file the database may list as stored, which {moved} does not hold sound either: "
        f"{sha256} (damaged in the backup",
    )
    (copy / "evidence" / sha256).write_bytes(content)
    done = detente("restore", "--data", str(moved), "--from", str(copy))
    assert done.code == 0, done.stderr
    assert "evidence     1 file here, each SHA-256 checked: 1 put back from the backup, 0 here already; the list" \
        in done.stdout  # fmt: skip
    assert (moved / "node.toml").read_bytes() == (copy / "node.toml").read_bytes()  # the same server's database
    assert not (moved / "node.db").exists() and sound(moved) == {sha256: content}

    # The QA report: the node lost its evidence, and the server's database (a dump restored by its own
    # tools) still says `stored`. Restore cannot read that list: the node marks each such file missing
    # when it starts, and fetches it again from the peer that holds it.
    ir = cluster["ir"]
    cluster.start()
    try:
        action, item, report = reported_with_evidence(pk, ir)
        pk.stop()
        shutil.rmtree(pk.data / "evidence")  # a lost disk; the server's database still says `stored`
        earlier = tmp_path / "earlier"
        shutil.copytree(copy, earlier, ignore=shutil.ignore_patterns("evidence"))
        done = detente("restore", "--data", str(pk.data), "--from", str(earlier), "--accept-lost-evidence")
        assert done.code == 0, done.stderr
        assert "evidence     the backup has no evidence/ (taken by an earlier release)" in done.stdout
        assert "which restore does not read: when the node starts, it marks each file" in done.stdout
        assert "--accept-lost-evidence cannot mark a PostgreSQL database" in done.stdout
        pk.start()
        said = f"evidence {item['sha256']} is listed as stored but {pk.data / 'evidence' / item['sha256']} is not " \
            "there: marked missing, fetched again from ir"  # fmt: skip
        assert said in pk.log_path.read_text()

        def fetched_again() -> bool:
            with pk.client("pk-dgmo") as client:
                return bool(client.get(f"/api/v1/evidence/{item['sha256']}").content == report)

        wait_for(fetched_again, what="pk to fetch its lost evidence again from ir")
        assert get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["evidence"][0]["state"] == "stored"
    finally:
        cluster.stop()
