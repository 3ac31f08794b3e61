"""`detente log export` and `detente audit` on a real node's log: what is witnessed, and what is not.

Two real nodes exchange messages until each is verified in the other's log; then pk is stopped, so
that its database and key are at hand. The tests export pk's log (or a copy of its database), then
play a dishonest pk that rewrites its log, or damage the export, and audit what results.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from audit_support import HISTORY_CUTS
from cli_support import assert_error, detente
from detente.cli.app import app
from detente.core import envelope as envelope_mod
from detente.core import merkle_memory, tiles
from detente.core.audit_checkpoints import NOTHING_WITNESSED
from detente.core.audit_report import Report, entry_range
from detente.core.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from detente.core.note import parse_note
from detente.node.config import load_config
from support import Cluster, NodeProc, wait_for


def _send(node: NodeProc, operator: str, to: str, text: str) -> str:
    request = {"channel": "dgmo", "to": to, "precedence": "FLASH", "type": "hotline.text", "body": {"text": text}}
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _verified(node: NodeProc, operator: str, message_id: str) -> bool:
    with node.client(operator) as client:
        response = client.get(f"/api/v1/messages/{message_id}")
    return response.status_code == 200 and bool(response.json()["verified"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """pk and ir, each message verified in the other's log; then pk is stopped and ir runs on.

    ir's three messages go one at a time, each proven in pk's log before the next is sent, so
    that pk's log has at least three checkpoints cosigned by ir, one between each two messages.
    """
    pair = Cluster(tmp_path_factory.mktemp("audit")).start()
    try:
        pk, ir = pair["pk"], pair["ir"]
        to_ir = _send(pk, "pk-dgmo", "ir:dgmo", "Drone sighted over Kech district")
        wait_for(lambda: _verified(pk, "pk-dgmo", to_ir), what="pk's message to be verified")
        to_pk = []
        for text in ("Not ours; tracking it", "It turned back at 14:10Z", "Tracking ended"):
            to_pk.append(_send(ir, "ir-dgmo", "pk:dgmo", text))
            wait_for(lambda: _verified(ir, "ir-dgmo", to_pk[-1]), what="ir's message to be verified")
        pk.stop()
        pair.info["to_pk"] = to_pk[1]
        yield pair
    finally:
        pair.stop()


def export(data: Path, out: Path, *options: str) -> Result:
    result = CliRunner().invoke(app, ["log", "export", "--data", str(data), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return result


def audit(cluster: Cluster, out: Path, *options: str) -> Result:
    return CliRunner().invoke(app, ["audit", str(out), "--agreement", cluster.info["agreement"], *options])


def copy_node(node: NodeProc, to: Path) -> Path:
    """Copy a stopped node's data directory; point its configuration at the copied database."""
    shutil.copytree(node.data, to)
    text = (to / "node.toml").read_text(encoding="utf-8").replace(str(node.data), str(to))
    (to / "node.toml").write_text(text, encoding="utf-8")
    return to


def size_of(out: Path) -> int:
    return parse_checkpoint(parse_note((out / "checkpoint").read_bytes()).text).size


# --- witnessing -----------------------------------------------------------------------------------


def test_a_fresh_export_is_witnessed_to_its_end(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "pk"
    export(cluster["pk"].data, out)
    size = size_of(out)
    audited = audit(cluster, out, "--party", "pk")
    assert audited.exit_code == 0, audited.output
    assert f"witnessed    ir up to size {size} (of {size})" in audited.output
    assert audited.output.rstrip().splitlines()[-1].startswith("OK (")
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["checkpoints"] == len((out / "checkpoints.jsonl").read_text().splitlines())
    # The auditor expecting ir's log is told it is pk's; a party the agreement does not know is a usage error.
    other = audit(cluster, out, "--party", "ir")
    assert other.exit_code == 1 and "FAIL checkpoint: this is the log of pk (pk.detente/log), not of ir" in other.output
    unknown = audit(cluster, out, "--party", "xx")
    assert unknown.exit_code == 2 and "'xx' is not a party of this agreement" in unknown.output


def test_the_entries_listed_are_those_the_audit_counted(cluster: Cluster, clean: Path) -> None:
    """An auditor reconciles the audit's counts with the envelopes: `log entries` lists them by type."""
    audited = audit(cluster, clean)
    assert audited.exit_code == 0, audited.output
    types_line = next(line for line in audited.output.splitlines() if line.startswith("types "))
    counted = dict(item.rsplit(" ", 1) for item in types_line.removeprefix("types").strip().split(", "))
    listed = detente("log", "entries", str(clean), "--json")
    assert listed.code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["index"] for row in rows] == list(range(size_of(clean)))
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row["envelope"]["type"]] = by_type.get(row["envelope"]["type"], 0) + 1
    assert {kind: int(n) for kind, n in counted.items()} == by_type and by_type["hotline.text"] == 4
    # ir's message to pk, found by its id, is the one the node says it logged.
    one = detente("log", "entries", str(clean), "--id", cluster.info["to_pk"])
    assert one.code == 0 and one.stdout.splitlines()[-1].startswith(
        f"1 of {size_of(clean)} entries listed: hotline.text 1"
    )
    assert f"ir:dgmo → pk:dgmo  {cluster.info['to_pk']}" in one.stdout


def test_an_export_that_cannot_be_written_says_why_and_leaves_nothing(cluster: Cluster, tmp_path: Path) -> None:
    afile = tmp_path / "pk.log"
    afile.write_text("a file\n")
    for out, says in ((afile, "is a file"), (afile / "sub", "cannot write the export to")):
        result = detente("log", "export", "--data", str(cluster["pk"].data), "--out", str(out))
        assert_error(result, says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pk.log"] and afile.read_text() == "a file\n"


def test_a_tail_not_yet_cosigned_is_left_out_or_named(cluster: Cluster, tmp_path: Path) -> None:
    """As if ir had not yet cosigned pk's newest checkpoints (signed just before the export, or ir down)."""
    copy = copy_node(cluster["pk"], tmp_path / "pk-copy")
    with sqlite3.connect(copy / "node.db") as db:
        cosigned = [int(r[0]) for r in db.execute("SELECT size FROM cosignatures ORDER BY size")]
        assert len(cosigned) >= 2, cosigned  # link tests every second give pk's log many checkpoints
        kept = cosigned[-2]
        db.execute("DELETE FROM cosignatures WHERE size > ?", (kept,))
        newest = int(db.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0])
    tail = entry_range(kept, newest)

    # By default the export ends at the newest checkpoint ir cosigned, and says what it left out.
    witnessed = tmp_path / "witnessed"
    exported = export(copy, witnessed)
    assert f"left out: {tail}, not yet cosigned by every peer" in exported.output
    assert size_of(witnessed) == kept
    audited = audit(cluster, witnessed)
    assert audited.exit_code == 0 and f"witnessed    ir up to size {kept} (of {kept})" in audited.output

    # Asked for the newest checkpoint, it warns; the audit fails naming the tail, unless allowed.
    whole = tmp_path / "whole"
    exported = export(copy, whole, "--include-unwitnessed")
    assert f"warning: the checkpoint of size {newest} is not cosigned by ir" in exported.output
    assert size_of(whole) == newest
    line = f"{tail} rest"  # "rest" or "rests"
    refused = audit(cluster, whole)
    assert refused.exit_code == 1, refused.output
    assert f"FAIL {line}" in refused.output
    assert f"on pk's signature alone: ir cosigned no checkpoint beyond size {kept} (the tree has size {newest})" in (
        refused.output
    )
    assert "--allow-unwitnessed accepts them" in refused.output
    assert refused.output.rstrip().splitlines()[-1].startswith("FAILED: 1 problem(s)")
    allowed = audit(cluster, whole, "--allow-unwitnessed")
    assert allowed.exit_code == 0, allowed.output
    assert f"warning      UNWITNESSED {line}" in allowed.output and "FAIL" not in allowed.output
    assert allowed.output.rstrip().splitlines()[-1].startswith(f"OK up to size {kept} only: {tail} ")


def test_a_log_rewritten_by_its_owner_fails(cluster: Cluster, tmp_path: Path) -> None:
    """QA2 #1: pk drops the message ir sent it, rebuilds its tree and re-signs every later checkpoint."""
    pk = cluster["pk"]
    out = tmp_path / "forged"
    export(pk.data, out)
    size = size_of(out)
    entries: list[bytes] = []
    for n, width in tiles.entry_bundles_for_size(size):
        entries += tiles.parse_entry_bundle((out / tiles.entries_path(n, width)).read_bytes(), width)
    drop = next(i for i, e in enumerate(entries) if envelope_mod.parse(e).id == cluster.info["to_pk"])
    forged = entries[:drop] + entries[drop + 1 :]
    shutil.rmtree(out / "tile")
    store = merkle_memory.MemoryHashStore(forged)
    for level, n, width in tiles.tiles_for_size(len(forged)):
        (out / tiles.tile_path(level, n, width)).parent.mkdir(parents=True, exist_ok=True)
        (out / tiles.tile_path(level, n, width)).write_bytes(tiles.read_tile(level, n, width, store))
    for n, width in tiles.entry_bundles_for_size(len(forged)):
        (out / tiles.entries_path(n, width)).parent.mkdir(parents=True, exist_ok=True)
        (out / tiles.entries_path(n, width)).write_bytes(tiles.entry_bundle(forged[n * 256 : n * 256 + width]))
    # The checkpoints ir cosigned before the dropped entry stay; the later ones are pk's alone.
    signer = load_config(pk.data).signer()
    lines, sizes = [], []
    for line in (out / "checkpoints.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["size"] > drop:
            item["size"] -= 1
            if sizes and item["size"] <= sizes[-1]:
                continue
            root = merkle_memory.MemoryHashStore(forged[: item["size"]]).root()
            cp = Checkpoint("pk.detente/log", item["size"], root)
            item["note"] = sign_checkpoint(cp, signer).format().decode()
        lines.append(json.dumps(item))
        sizes.append(item["size"])
    (out / "checkpoints.jsonl").write_text("\n".join(lines) + "\n")
    (out / "checkpoint").write_text(json.loads(lines[-1])["note"])
    manifest = json.loads((out / "export.json").read_text())  # a careful forger edits it too
    manifest.update(size=len(forged), root=base64.b64encode(store.root()).decode(), checkpoints=len(lines))
    (out / "export.json").write_text(json.dumps(manifest))

    cosigned = [s for s, line in zip(sizes, lines, strict=True) if "ir.detente/log" in json.loads(line)["note"]]
    witnessed = max(cosigned, default=0)
    assert 0 < witnessed <= drop
    refused = audit(cluster, out)
    assert refused.exit_code == 1, refused.output
    problems = [line for line in refused.output.splitlines() if line.startswith("FAIL ")]
    # The exact wording is pinned by the unit tests; here: one problem, this tail, nothing else.
    expected = Report(party="pk", size=len(forged), witnessed={"ir": witnessed}).unwitnessed()
    assert problems == [f"FAIL {line}" for line in expected] and len(expected) == 1
    assert expected[0].startswith(f"{entry_range(witnessed, len(forged))} rest")
    allowed = audit(cluster, out, "--allow-unwitnessed")
    assert allowed.exit_code == 0 and f"OK up to size {witnessed} only:" in allowed.output

    # QA6 #1: pk also re-signs every checkpoint alone, stripping ir's cosignatures: nothing is
    # witnessed, and --allow-unwitnessed (meant for a tail) does not accept that.
    stripped = []
    for line in lines:
        item = json.loads(line)
        cp = parse_checkpoint(parse_note(item["note"].encode()).text)
        item["note"] = sign_checkpoint(cp, signer).format().decode()
        stripped.append(json.dumps(item))
    (out / "checkpoints.jsonl").write_text("\n".join(stripped) + "\n")
    (out / "checkpoint").write_text(json.loads(stripped[-1])["note"])
    alone = audit(cluster, out, "--allow-unwitnessed")
    assert alone.exit_code == 1, alone.output
    assert f"FAIL {NOTHING_WITNESSED}\n" in alone.output and "\nFAILED: 1 problem(s)" in alone.output


# --- a damaged export -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "pk"
    export(cluster["pk"].data, out)
    return out


def damaged(clean: Path, tmp_path: Path, history: list[str] | None = None, **files: bytes) -> Path:
    """A copy of the clean export with these history lines and these files (a "/" in a name: "__")."""
    out = tmp_path / "damaged"
    shutil.copytree(clean, out)
    if history is not None:
        (out / "checkpoints.jsonl").write_text("".join(line + "\n" for line in history))
    for name, data in files.items():
        (out / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (out / name.replace("__", "/")).write_bytes(data)
    return out


CUTS = HISTORY_CUTS


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_history_that_lost_lines_fails(cluster: Cluster, clean: Path, tmp_path: Path, cut: str) -> None:
    """QA2 #2: every cut is a FAIL (export.json counts the history's lines)."""
    lines = (clean / "checkpoints.jsonl").read_text().splitlines()
    assert len(lines) >= 3, lines
    kept = CUTS[cut](lines)
    audited = audit(cluster, damaged(clean, tmp_path, kept))
    assert audited.exit_code == 1, audited.output
    count = f"FAIL export.json: says {len(lines)} checkpoints, checkpoints.jsonl has {len(kept)} lines"
    assert count in audited.output
    if cut in ("last line deleted", "emptied"):
        assert "checkpoints.jsonl: empty" in audited.output or "is not the newest checkpoint" in audited.output


def test_a_malformed_history_line_is_named(cluster: Cluster, clean: Path, tmp_path: Path) -> None:
    """QA2 #8: no `unexpected OverflowError`, a FAIL naming the line."""
    lines = (clean / "checkpoints.jsonl").read_text().splitlines()
    bad = [*lines[:1], '{"size": 1e400, "note": "x"}', *lines[1:]]
    out = damaged(clean, tmp_path, bad)
    manifest = json.loads((out / "export.json").read_text())
    (out / "export.json").write_text(json.dumps({**manifest, "checkpoints": len(bad)}))
    audited = audit(cluster, out)
    assert audited.exit_code == 1 and isinstance(audited.exception, SystemExit), audited.output
    fails = [line for line in audited.output.splitlines() if line.startswith("FAIL ")]
    assert fails == ['FAIL checkpoints.jsonl line 2: malformed: "size" is not a JSON integer from 0 to 2^63-1']


def test_export_json_and_stray_files(cluster: Cluster, clean: Path, tmp_path: Path) -> None:
    """QA2 #9: export.json must agree with the checkpoint; files the audit does not read are named."""
    manifest = json.loads((clean / "export.json").read_text())
    edited = json.dumps({**manifest, "party": "ir", "size": 999}).encode()
    audited = audit(cluster, damaged(clean, tmp_path, **{"export.json": edited}))
    assert audited.exit_code == 1
    assert "FAIL export.json: says party 'ir', the checkpoint says 'pk'" in audited.output
    assert f"FAIL export.json: says size 999, the checkpoint says {manifest['size']}" in audited.output

    bundle = next(p for p in sorted((clean / "tile" / "entries").rglob("*")) if p.is_file()).read_bytes()
    stray = {"notes.txt": b"hello", "tile__entries__009": bundle}
    audited = audit(cluster, damaged(clean, tmp_path / "2", **stray))
    assert audited.exit_code == 0, audited.output
    size = manifest["size"]
    assert (
        "warning      not part of the export, so not audited: notes.txt, "
        f"tile/entries/009 (not a tile of the tree of size {size})"
    ) in audited.output


def test_a_damaged_export_is_not_reported_witnessed(cluster: Cluster, clean: Path, tmp_path: Path) -> None:
    """QA: the audit of a damaged export printed "witnessed ir up to size N", as if the witnessing held.

    The last entry bundle is cut short: the entries before the damage are listed by `log entries`,
    and the audit claims ir's witnessing only up to a checkpoint whose root the entries read give.
    """
    size = size_of(clean)
    n, width = tiles.entry_bundles_for_size(size)[-1]
    path = tiles.entries_path(n, width)
    out = damaged(clean, tmp_path, **{path.replace("/", "__"): (clean / path).read_bytes()[:-5]})
    audited = audit(cluster, out)
    assert audited.exit_code == 1, audited.output
    last = n * tiles.TILE_WIDTH + width - 1
    assert f"FAIL {path}: entry {last} is cut short (the bundle ends inside it)" in audited.output
    line = next(line for line in audited.output.splitlines() if line.startswith("witnessed "))
    assert f"up to size {size} (of {size})" not in line
    assert line.endswith(f"(it cosigned size {size}, but the entries read do not give that checkpoint's root)")
    assert audited.output.rstrip().splitlines()[-1].startswith("FAILED: 1 problem(s)")

    listed = detente("log", "entries", str(out))
    assert listed.code == 1
    assert listed.stdout.splitlines()[-1].startswith(f"{last} of {size} entries listed (read {last} before the error)")
    assert_error(listed, f"{path}: entry {last} is cut short (the bundle ends inside it); listed ")
