"""The audit's required witnesses (`--witness`): a third party's outage need not block every audit.

QA, with three states pk, ir and af: while af was down, ir went on cosigning pk's checkpoints, but
the audit of pk's log failed ("entries 12..19 are not witnessed by af") and its best verdict was
"OK up to size 12 only". An auditor of a pk–ir incident requires ir's witnessing; af's lag is then
a warning, never a problem.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit_support import Export, history_file, manifest
from cli_support import assert_usage_error, detente
from detente.core import agreement as agreement_mod
from detente.core import merkle, merkle_memory, tiles
from detente.core.agreement import Agreement
from detente.core.audit import Report, audit
from detente.core.audit_checkpoints import NOTHING_WITNESSED
from detente.core.checkpoint import Checkpoint, sign_checkpoint
from detente.core.keys import Signer
from detente.core.note import add_signatures, cosign
from detente.node.demo import fill_agreement
from record_support import envelope
from support import group_agreement

SIZE = 20
SIZES = (0, 5, 12, SIZE)
AF_DOWN = {"ir": SIZES, "af": (0, 5, 12)}  # af went down after cosigning size 12; ir cosigned on
AF_LAG = "entries 12..19 are not witnessed by af: its newest cosignature is on size 12"


@dataclass(frozen=True)
class Group:
    """pk's log of `SIZE` envelopes to ir, under an agreement of pk, ir and af."""

    doc: Agreement
    text: str
    signers: dict[str, Signer]
    entries: list[bytes]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Group:
    signers = {p: Signer.generate(f"{p}.detente/log") for p in ("pk", "ir", "af")}
    values = {
        p: {"url": f"https://127.0.0.1:{8440 + i}", "vkey": s.verifier.vkey(), "tls_fingerprint": "0" * 64}
        for i, (p, s) in enumerate(signers.items())
    }
    text = fill_agreement(group_agreement(tmp_path_factory.mktemp("group")).read_text(encoding="utf-8"), values, None)
    doc = agreement_mod.load(text)
    entries = [envelope(doc, signers["pk"], i + 1, f"message {i}").raw for i in range(SIZE)]
    return Group(doc, text, signers, entries)


def make_export(group: Group, cosigned: Mapping[str, Collection[int]]) -> Export:
    """pk's export with checkpoints at `SIZES`, each cosigned by the parties `cosigned` lists it for."""
    store = merkle_memory.MemoryHashStore(group.entries)
    files: Export = {}
    for level, n, width in tiles.tiles_for_size(SIZE):
        files[tiles.tile_path(level, n, width)] = tiles.read_tile(level, n, width, store)
    for n, width in tiles.entry_bundles_for_size(SIZE):
        files[tiles.entries_path(n, width)] = tiles.entry_bundle(group.entries[n * 256 : n * 256 + width])
    notes = []
    for size in SIZES:
        signed = sign_checkpoint(Checkpoint("pk.detente/log", size, merkle.tree_hash(size, store)), group.signers["pk"])
        cosigs = [
            cosign(signed.text, group.signers[p], 1_800_000_000 + size)
            for p, sizes in cosigned.items()
            if size in sizes
        ]
        notes.append(add_signatures(signed, *cosigs).format())
    files["checkpoint"] = notes[-1]
    files["checkpoints.jsonl"] = history_file(list(zip(SIZES, notes, strict=True)))
    files["agreement.toml"] = group.text.encode()
    files["export.json"] = manifest(party="pk", size=SIZE, root=store.root(), checkpoints=len(SIZES))
    return files


def run(files: Export, group: Group, *witnesses: str, allow_unwitnessed: bool = False) -> Report:
    return audit(files.get, group.doc, names=list(files), allow_unwitnessed=allow_unwitnessed, witnesses=witnesses)


def test_by_default_a_third_partys_outage_fails_the_audit(group: Group) -> None:
    files = make_export(group, AF_DOWN)
    report = run(files, group)
    assert report.problems == [AF_LAG] and report.required == () and report.witnessed_size == 12
    allowed = run(files, group, allow_unwitnessed=True)
    assert allowed.verdict() == (
        "OK up to size 12 only: entries 12..19 are not witnessed by every party (accepted by --allow-unwitnessed)"
    )


def test_the_counterparts_witnessing_is_enough_when_it_alone_is_required(group: Group) -> None:
    report = run(make_export(group, AF_DOWN), group, "ir")
    assert report.ok and report.problems == [] and report.verdict() == "OK"
    assert report.required == ("ir",) and report.witnessed_size == SIZE
    assert report.warnings == [f"UNWITNESSED {AF_LAG} (not required: --witness ir)"]
    # The witnessed line still names every party, af with how far it got.
    assert report.witnessed == {"af": 12, "ir": SIZE}
    assert report.witnessed_line() == "af up to size 12, ir up to size 20 (of 20)"
    assert report.entries == SIZE and report.consistency_proofs == len(SIZES) - 1


def test_a_required_witness_that_lags_is_a_problem_and_named_in_the_verdict(group: Group) -> None:
    files = make_export(group, AF_DOWN)
    report = run(files, group, "af")
    assert report.problems == [AF_LAG] and report.warnings == []
    allowed = run(files, group, "af", allow_unwitnessed=True)
    assert allowed.ok and allowed.warnings == [f"UNWITNESSED {AF_LAG}"]
    assert allowed.verdict() == (
        "OK up to size 12 only: entries 12..19 are not witnessed by af (accepted by --allow-unwitnessed)"
    )
    # Naming both is the default's rule, the verdict naming the one behind.
    both = run(files, group, "ir", "af", allow_unwitnessed=True)
    assert both.required == ("af", "ir") and both.warnings == allowed.warnings
    assert both.verdict() == allowed.verdict()


def test_entries_no_one_witnessed_stay_a_problem_whoever_is_required(group: Group) -> None:
    files = make_export(group, {"ir": (0, 5), "af": (0, 5, 12)})
    alone = (
        "entries 12..19 rest on pk's signature alone: af and ir cosigned no checkpoint beyond size 12 "
        "(the tree has size 20)"
    )
    ir_lag = "entries 5..19 are not witnessed by ir: its newest cosignature is on size 5"
    assert run(files, group, "ir").problems == [alone, ir_lag]
    report = run(files, group, "af")
    assert report.problems == [alone] and report.warnings == [f"UNWITNESSED {ir_lag} (not required: --witness af)"]
    assert run(files, group, "ir", allow_unwitnessed=True).verdict() == (
        "OK up to size 5 only: entries 5..19 are not witnessed by ir (accepted by --allow-unwitnessed)"
    )


def test_nothing_witnessed_is_judged_on_the_required_witnesses(group: Group) -> None:
    files = make_export(group, {"ir": (0,), "af": SIZES})
    report = run(files, group, "ir", allow_unwitnessed=True)
    assert report.problems == [NOTHING_WITNESSED] and report.verdict() == "FAILED: 1 problem(s)"
    report = run(files, group, "af")
    assert report.ok and report.warnings == [
        "UNWITNESSED entries 0..19 are not witnessed by ir: it cosigned no checkpoint (not required: --witness af)"
    ]


def test_a_witness_that_cannot_witness_this_log_is_a_problem(group: Group) -> None:
    files = make_export(group, AF_DOWN)
    own = run(files, group, "pk")
    assert own.problems == [
        "--witness pk: pk is the party whose log this is (pk.detente/log); its witnesses are the other parties: af, ir",
        AF_LAG,  # with no valid witness named, every other party is required: never fewer than asked
    ]
    assert own.required == () and own.verdict() == "FAILED: 2 problem(s)"
    unknown = run(files, group, "ir", "cn", "ir")
    assert unknown.problems == ["--witness 'cn': not a party of the agreement in force (the other parties: af, ir)"]
    assert unknown.required == ("ir",) and not unknown.ok


def test_the_report_sorts_lagging_parties_into_required_and_not() -> None:
    report = Report(party="pk", size=15, witnessed={"ir": 5, "af": 10, "cn": 15}, required=("cn",))
    assert report.unwitnessed() == [] and report.witnessed_size == 15 and report.verdict() == "OK"
    assert report.unwitnessed_not_required() == [
        "entries 10..14 are not witnessed by af: its newest cosignature is on size 10 (not required: --witness cn)",
        "entries 5..14 are not witnessed by ir: its newest cosignature is on size 5 (not required: --witness cn)",
    ]
    default = Report(party="pk", size=15, witnessed={"ir": 5, "af": 10, "cn": 15})
    assert len(default.unwitnessed()) == 2 and default.unwitnessed_not_required() == []
    assert default.witnessed_size == 5


def _write(files: Export, root: Path) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_the_cli_audits_with_the_witnesses_named(group: Group, tmp_path: Path) -> None:
    export = _write(make_export(group, AF_DOWN), tmp_path / "export")
    (tmp_path / "agreement.toml").write_text(group.text, encoding="utf-8")
    given = ("audit", str(export), "--agreement", str(tmp_path / "agreement.toml"))
    plain = detente(*given)
    assert plain.code == 1 and f"FAIL {AF_LAG}\n" in plain.stdout
    named = detente(*given, "--witness", "ir")
    assert named.code == 0, named.stdout
    assert "witnessed    af up to size 12, ir up to size 20 (of 20)\n" in named.stdout
    assert "required     ir (--witness); not required: af\n" in named.stdout
    assert f"warning      UNWITNESSED {AF_LAG} (not required: --witness ir)\n" in named.stdout
    assert "FAIL" not in named.stdout and named.stdout.splitlines()[-1].startswith("OK (")
    own = detente(*given, "--witness", "pk")
    assert own.code == 1 and "FAIL --witness pk: pk is the party whose log this is" in own.stdout
    assert_usage_error(detente(*given, "--witness", "cn"), "'cn' is not a party of this agreement (af, ir, pk)")
