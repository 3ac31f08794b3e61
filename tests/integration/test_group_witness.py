"""Export and audit with `--witness`: a third state's outage does not block the audit of a pair's record.

QA, with three real nodes pk, ir and af: while af was down, pk and ir went on talking and ir
cosigned pk's checkpoints, but pk's `log export` stopped at the last size af cosigned, and the
audit failed ("entries 132..158 are not witnessed by af") unless --allow-unwitnessed, whose best
verdict was "OK up to size 132 only". The auditor of a pk–ir incident requires ir's witnessing.

This module stops af, so it has a cluster of its own (test_group.py's must stay whole).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from cli_support import assert_error, detente
from support import Cluster, NodeProc, running_cluster, wait_for
from workflow_support import get, send


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("trio-witness"), group=True) as cluster:
        yield cluster


def cosigned_by(pk: NodeProc, party: str) -> int:
    """The newest size of pk's log that `party` cosigned, as pk's node says (0: none)."""
    return int(get(pk, "pk-admin", "/api/v1/log")["peers"][party]["our_size_cosigned"] or 0)


def delivered(node: NodeProc, message: str) -> bool:
    return node.message(f"{node.party}-dgmo", message, missing_ok=True).get("state") == "delivered"


def exported_size(out: Path) -> int:
    return int(json.loads((out / "export.json").read_text(encoding="utf-8"))["size"])


def test_with_af_down_pks_log_is_exported_and_audited_as_witnessed_by_ir(trio: Cluster, tmp_path: Path) -> None:
    pk, ir, af = trio["pk"], trio["ir"], trio["af"]
    wait_for(lambda: cosigned_by(pk, "af") > 0 and cosigned_by(pk, "ir") > 0, timeout=30, what="pk's log cosigned")
    af.stop()
    af_size = cosigned_by(pk, "af")
    for words in ("Shots heard near the Mirjaveh post", "Patrol sent to the post"):
        sent = str(send(pk, "pk-dgmo", "hotline.text", {"text": words}, to="ir:dgmo")["id"])
        wait_for(partial(delivered, ir, sent), what="pk→ir")
    wait_for(lambda: cosigned_by(pk, "ir") > af_size, timeout=30, what="ir to cosign beyond af's last size")

    agreement = trio.info["agreement"]
    # By default the export waits for af, and stops where af stopped.
    blocked = detente("log", "export", "--data", str(pk.data), "--out", str(tmp_path / "all"))
    assert blocked.code == 0, blocked.stderr
    assert "not yet cosigned by every peer" in blocked.stdout and exported_size(tmp_path / "all") <= af_size

    out = tmp_path / "ir"
    exported = detente("log", "export", "--data", str(pk.data), "--out", str(out), "--witness", "ir")
    assert exported.code == 0, exported.stderr
    size = exported_size(out)
    assert size > af_size
    assert f"warning: the checkpoint of size {size} is not cosigned by af (not required: --witness ir)" in (
        exported.stdout
    )
    assert "left out" not in exported.stdout or "not yet cosigned by ir (" in exported.stdout

    lag = f"entries {af_size}..{size - 1} are not witnessed by af: its newest cosignature is on size {af_size}"
    audited = detente("audit", str(out), "--agreement", agreement, "--witness", "ir")
    assert audited.code == 0, audited.stdout
    assert f"warning      UNWITNESSED {lag} (not required: --witness ir)\n" in audited.stdout
    assert "required     ir (--witness); not required: af\n" in audited.stdout
    assert f"witnessed    af up to size {af_size}, ir up to size {size} (of {size})\n" in audited.stdout
    assert audited.stdout.splitlines()[-1].startswith("OK (")

    every = detente("audit", str(out), "--agreement", agreement)
    assert every.code == 1 and f"FAIL {lag}\n" in every.stdout


def test_export_refuses_a_witness_that_is_no_peer_writing_nothing(trio: Cluster, tmp_path: Path) -> None:
    pk, out = trio["pk"], tmp_path / "out"
    given = ("log", "export", "--data", str(pk.data), "--out", str(out), "--witness")
    assert_error(detente(*given, "cn"), "--witness 'cn': not a peer of this node (its peers: af, ir)")
    assert_error(
        detente(*given, "pk"), "--witness pk: that is this node's own party; its peers witness its log: af, ir"
    )
    assert not out.exists()
