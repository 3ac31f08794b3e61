"""A log kept across an amendment of the agreement that rotated both keys: audited with both agreements.

pk's log holds `CUT` envelopes sealed under the first agreement with the first keys, then envelopes
sealed under the amended one with new keys; checkpoints up to `CUT` carry the first keys'
signatures, later ones the new keys'. The auditor gives the agreement in force and the earlier
one (`earlier`); each envelope is checked under the agreement it names.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from audit_support import HISTORY, SIZE, Export, Log, make_export, make_log, note, run
from cli_support import assert_error, assert_usage_error, detente
from detente.core import audit as audit_module
from detente.core import merkle, merkle_memory, tiles
from detente.core.audit import Report, audit
from detente.core.audit_checkpoints import CHECKPOINT_FILE
from detente.core.checkpoint import ProofBundle
from record_support import envelope

CUT = 150  # entries 0..149 under the first agreement; checkpoints of size <= CUT signed by its keys


@pytest.fixture(scope="module")
def logs() -> tuple[Log, Log]:
    """(the first agreement's log, the amended one's), the amended log holding the whole history."""
    first, amended = make_log(), make_log()
    assert first.doc.hash != amended.doc.hash and first.doc.party("pk").vkey != amended.doc.party("pk").vkey
    entries = first.entries[:CUT] + amended.entries[CUT:]
    return first, Log(amended.doc, amended.text, amended.signers, entries)


def amended_export(logs: tuple[Log, Log], cosigned: list[int] | None = None) -> Export:
    first, amended = logs
    return make_export(amended, cosigned=cosigned, signed_by=lambda size: first if size <= CUT else amended)


def test_a_log_across_an_amendment_passes_with_both_agreements(logs: tuple[Log, Log]) -> None:
    first, amended = logs
    report = run(amended_export(logs), amended.doc, earlier=(first.doc,))
    assert report.ok and report.problems == [] and report.warnings == [], report.problems
    assert report.entries == SIZE and report.checkpoints == len(HISTORY)
    assert report.witnessed == {"ir": SIZE} and report.senders == {"pk": 200, "ir": 100}


def test_without_the_earlier_agreement_its_era_fails_and_is_named(logs: tuple[Log, Log]) -> None:
    first, amended = logs
    problems = run(amended_export(logs), amended.doc).problems
    assert any(p.startswith("entry 0 (envelope ") and "is not the hash of an agreement given" in p for p in problems)
    assert any("checkpoint of size 100" in p and "not signed by pk's log key" in p for p in problems)
    assert not any(p.startswith(f"entry {CUT} ") for p in problems)  # the amended era verifies
    old_key, new_key = key_id(first), key_id(amended)
    assert (
        "checkpoints.jsonl line 3 (checkpoint of size 100): not signed by pk's log key (pk.detente/log): "
        f"signed by key {old_key}, the agreement pins key {new_key}"
    ) in problems
    # The earlier agreement alone (an auditor who gave the wrong one as in force): the newest
    # checkpoint carries none of its keys, and with no tree to check the audit stops there.
    older = run(amended_export(logs), first.doc)
    assert older.problems == [
        f"checkpoint: not signed by pk's log key (pk.detente/log): signed by key {new_key}, the agreement pins key "
        f"{old_key}"
    ]
    assert older.hints == [key_hint(new_key, newest=True)]


def hint(*named: str, these: str = "that agreement") -> str:
    return f"{', '.join(named)}, not given: if the log spans an amendment, give {these} with --earlier"


def key_id(log: Log) -> str:
    """The key id (hex) of pk's log key in `log`."""
    return log.signers["pk"].verifier.key_id.hex()


def key_hint(key: str, newest: bool = False) -> str:
    also = " (and the agreement in force after it with --agreement)" if newest else ""
    return (
        f"checkpoints signed by pk.detente/log key {key}, which no agreement given pins: if the log spans an "
        f"amendment that rotated this key, give the agreement in force before it with --earlier{also}"
    )


def test_without_the_earlier_agreement_one_hint_names_it_and_counts_its_entries(logs: tuple[Log, Log]) -> None:
    # 150 entries fail, 50 are listed: the hint is one line, and counts them all (QA5 #14).
    first, amended = logs
    report = run(amended_export(logs), amended.doc)
    assert report.more_problems > 0 and report.agreements == {first.doc.hash: CUT, amended.doc.hash: SIZE - CUT}
    # The checkpoints signed with the first key come first (they are read first), then the entries.
    assert report.hints == [key_hint(key_id(first)), hint(f"{CUT} entries name agreement {first.doc.hash[:12]}…")]
    assert report.warnings == []
    assert run(amended_export(logs), amended.doc, earlier=(first.doc,)).hints == []


def test_two_agreements_not_given_are_named_in_the_one_hint(logs: tuple[Log, Log]) -> None:
    first, amended = logs
    middle = make_log()
    entries = first.entries[:CUT] + middle.entries[CUT:200] + amended.entries[200:]
    files = make_export(Log(amended.doc, amended.text, amended.signers, entries), signed_by=lambda s: amended)
    report = run(files, amended.doc)
    named = f"{CUT} entries name agreement {first.doc.hash[:12]}…", f"50 entries name agreement {middle.doc.hash[:12]}…"
    assert report.hints == [hint(*named, these="those agreements")]
    # Given one of them, the hint names the other alone.
    assert run(files, amended.doc, earlier=(middle.doc,)).hints == [hint(named[0])]


def test_one_entry_not_given_is_named_in_the_singular() -> None:
    report = Report(agreements=Counter({"ab" * 32: 1, "cd" * 32: 7}))
    report.check_agreements_named([("pk-ir-2025", "cd" * 32)])
    assert report.hints == [hint(f"1 entry names agreement {'ab' * 6}…")] and report.warnings == []


def test_an_earlier_agreement_no_entry_names_is_a_warning(logs: tuple[Log, Log]) -> None:
    # The agreement of another pair of nodes given by mistake: it changes nothing, and is named.
    first, amended = logs
    stranger = make_log()
    report = run(amended_export(logs), amended.doc, earlier=(first.doc, stranger.doc))
    assert report.ok and report.hints == [], report.problems
    assert report.warnings == [f"--earlier {stranger.doc.id} {stranger.doc.hash[:12]}…: no entry names it"]
    # Given alone, it is unused and the earlier era's entries are not checked: both are said.
    alone = run(amended_export(logs), amended.doc, earlier=(stranger.doc,))
    assert not alone.ok and alone.warnings == [
        f"--earlier {stranger.doc.id} {stranger.doc.hash[:12]}…: no entry names it"
    ]
    assert alone.hints == [key_hint(key_id(first)), hint(f"{CUT} entries name agreement {first.doc.hash[:12]}…")]


def test_an_audit_that_stops_before_the_entries_neither_hints_nor_warns(logs: tuple[Log, Log]) -> None:
    # No entry read: nothing is known of the agreements they name.
    first, amended = logs
    files = {k: v for k, v in amended_export(logs).items() if k != CHECKPOINT_FILE}
    report = run(files, amended.doc, earlier=(make_log().doc,))
    assert report.problems == [f"{CHECKPOINT_FILE}: missing"] and report.hints == [] and report.warnings == []


def test_an_envelope_under_the_earlier_agreement_signed_with_the_new_key_fails(logs: tuple[Log, Log]) -> None:
    # Whoever holds only the new key cannot add to the earlier era: each envelope is checked with
    # the key of the agreement it names.
    first, amended = logs
    forged = envelope(first.doc, amended.signers["pk"], 3, "written after the rotation").raw
    entries = amended.entries[:2] + [forged] + amended.entries[3:]
    files = make_export(
        Log(amended.doc, amended.text, amended.signers, entries), signed_by=lambda s: first if s <= CUT else amended
    )
    problems = run(files, amended.doc, earlier=(first.doc,)).problems
    assert len(problems) == 1 and problems[0].startswith("entry 2 (envelope ") and "signature" in problems[0]


def test_a_checkpoint_signed_by_neither_era_s_key_fails(logs: tuple[Log, Log]) -> None:
    first, amended = logs
    stranger = make_log()
    files = make_export(amended, signed_by=lambda s: stranger if s == 256 else (first if s <= CUT else amended))
    problems = run(files, amended.doc, earlier=(first.doc,)).problems
    assert any("checkpoint of size 256" in p and "not signed by pk's log key" in p for p in problems)


def test_cosignatures_count_with_the_key_of_their_era(logs: tuple[Log, Log]) -> None:
    # ir cosigned with its first key only, before the amendment: what came after rests on pk alone.
    first, amended = logs
    report = run(amended_export(logs, cosigned=[0, 1, 100]), amended.doc, earlier=(first.doc,))
    assert report.witnessed == {"ir": 100}
    assert report.problems == [
        "entries 100..299 rest on pk's signature alone: "
        "ir cosigned no checkpoint beyond size 100 (the tree has size 300)"
    ]


def test_worker_processes_check_each_era_alike(logs: tuple[Log, Log], monkeypatch: pytest.MonkeyPatch) -> None:
    first, amended = logs
    files = amended_export(logs)
    changed = list(amended.entries)
    changed[7] = changed[7].replace(b"message 7", b"message 8")
    damaged = {**files, "tile/entries/000": tiles.entry_bundle(changed[:256])}
    serial = run(damaged, amended.doc, earlier=(first.doc,))
    alone = run(damaged, amended.doc)
    monkeypatch.setattr(audit_module, "PARALLEL_MIN", 0)
    parallel = audit(damaged.get, amended.doc, jobs=2, names=list(damaged), earlier=(first.doc,))
    assert parallel.problems == serial.problems and serial.problems[0].startswith("entry 7 ")
    # The workers' counts of the agreements named add up to the same hint.
    parallel_alone = audit(damaged.get, amended.doc, jobs=2, names=list(damaged))
    assert parallel_alone.hints == alone.hints and len(alone.hints) == 2  # the first key's, the first agreement's
    assert parallel_alone.agreements == alone.agreements == {first.doc.hash: CUT, amended.doc.hash: SIZE - CUT}


def test_the_cli_takes_earlier_agreements(logs: tuple[Log, Log], tmp_path: Path) -> None:
    first, amended = logs
    export = tmp_path / "export"
    for name, data in amended_export(logs).items():
        (export / name).parent.mkdir(parents=True, exist_ok=True)
        (export / name).write_bytes(data)
    (tmp_path / "first.toml").write_text(first.text)
    (tmp_path / "amended.toml").write_text(amended.text)
    given = ("audit", str(export), "--agreement", str(tmp_path / "amended.toml"))
    passed = detente(*given, "--earlier", str(tmp_path / "first.toml"))
    assert passed.code == 0, passed.stdout
    assert f"earlier      pk-ir-2024 {first.doc.hash}" in passed.stdout and "\nOK (" in passed.stdout
    failed = detente(*given)
    assert failed.code == 1 and "is not the hash of an agreement given" in failed.stdout
    hints = [line for line in failed.stdout.splitlines() if line.startswith("hint ")]
    assert hints == [
        f"hint         {key_hint(key_id(first))}",
        f"hint         {hint(f'{CUT} entries name agreement {first.doc.hash[:12]}…')}",
    ], hints
    assert_usage_error(detente(*given, "--earlier", str(tmp_path / "amended.toml")), "an agreement given already")
    twice = ("--earlier", str(tmp_path / "first.toml"))
    assert_usage_error(detente(*given, *twice, *twice), "an agreement given already")
    # An earlier agreement no entry names: a warning, and the verdict stands.
    stranger = make_log()
    (tmp_path / "stranger.toml").write_text(stranger.text)
    extra = detente(*given, *twice, "--earlier", str(tmp_path / "stranger.toml"))
    assert extra.code == 0, extra.stdout
    assert f"warning      --earlier {stranger.doc.id} {stranger.doc.hash[:12]}…: no entry names it" in extra.stdout
    assert "\nOK (" in extra.stdout and "hint " not in extra.stdout


def test_a_proof_saved_before_the_rotation_names_both_keys(logs: tuple[Log, Log], tmp_path: Path) -> None:
    """QA6 #2: `log verify-proof` of a bundle whose checkpoint the first key signed, with the amended agreement."""
    first, amended = logs
    store = merkle_memory.MemoryHashStore(amended.entries[:100])
    proof = merkle.prove_inclusion(5, 100, store)
    bundle = ProofBundle(5, tuple(proof), note(first, 100, store.root()), amended.entries[5])
    (tmp_path / "m.tlog-proof").write_bytes(bundle.format())
    (tmp_path / "first.toml").write_text(first.text)
    (tmp_path / "amended.toml").write_text(amended.text)
    verify = ("log", "verify-proof", str(tmp_path / "m.tlog-proof"), "--agreement")
    assert_error(
        detente(*verify, str(tmp_path / "amended.toml")),
        f"VerificationError: the checkpoint of pk.detente/log at size 100 is not signed by the key agreement "
        f"{amended.doc.id} pins for pk (it is signed by key {key_id(first)}; {amended.doc.id} pins key "
        f"{key_id(amended)}): if the proof was saved before an amendment that rotated this key, give the agreement "
        "in force before it with --earlier",
    )
    # What the hint says to do verifies it, as the audit accepts it: the checkpoint under the key the
    # earlier agreement pins, the envelope under the agreement it names.
    passed = detente(*verify, str(tmp_path / "amended.toml"), "--earlier", str(tmp_path / "first.toml"))
    assert passed.code == 0, passed.stderr
    # An earlier agreement that pins neither key does not help, and says it was tried.
    stranger = make_log()
    (tmp_path / "stranger.toml").write_text(stranger.text)
    assert_error(
        detente(*verify, str(tmp_path / "amended.toml"), "--earlier", str(tmp_path / "stranger.toml")),
        f"pins for pk nor by one an earlier agreement given pins (it is signed by key {key_id(first)};",
    )
