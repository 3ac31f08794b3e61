"""`detente log entries`: an export's envelopes listed, selected and counted, and what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_support import SIZE, Log, make_export, make_log
from cli_support import assert_error, assert_usage_error, detente
from detente.core import log_listing, tiles
from detente.core.envelope import parse
from detente.errors import MalformedError, NotFound
from record_support import envelope


@pytest.fixture(scope="module")
def log() -> Log:
    """pk's log of 300 envelopes, with an ack from ir answering entry 1 appended (301 entries)."""
    base = make_log()
    answered = parse(base.entries[1])
    ack = envelope(
        base.doc, base.signers["ir"], 999, "", type="ack", body={}, refs=[answered.id],
        **{"from": "ir:dgmo", "to": "pk:dgmo"},
    )  # fmt: skip
    return Log(base.doc, base.text, base.signers, [*base.entries, ack.raw])


def write(files: dict[str, bytes], to: Path) -> Path:
    for name, data in files.items():
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        (to / name).write_bytes(data)
    return to


def test_every_entry_in_log_order(log: Log) -> None:
    files = make_export(log, sizes=(SIZE + 1,))
    tree = log_listing.tree_of(files.get)
    assert (tree.origin, tree.size) == ("pk.detente/log", SIZE + 1)
    listed = list(log_listing.entries(files.get, tree.size))
    assert [item.index for item in listed] == list(range(SIZE + 1))
    assert [item.envelope.raw for item in listed if item.envelope] == log.entries


def test_selections_combine(log: Log) -> None:
    items = list(log_listing.entries(make_export(log, sizes=(SIZE + 1,)).get, SIZE + 1))
    first = items[1].envelope
    assert first is not None

    def pick(**members: object) -> list[int]:
        selection = log_listing.Selection(**members)  # type: ignore[arg-type]
        return [item.index for item in items if log_listing.chosen(item, selection)]

    assert pick(types=frozenset({"ack"})) == [SIZE]
    assert pick(refers_to=(first.id,)) == [SIZE]
    assert pick(refers_to=(first.id[:13],)) == [SIZE]  # a prefix, as --id takes one
    assert pick(refers_to=(first.id + "0",)) == []
    assert pick(ids=(first.id[:20],)) == [1]
    # An office matches as sender or addressee: ir:dgmo sent every third entry and was sent the others.
    assert pick(offices=frozenset({"ir:dgmo"})) == list(range(SIZE + 1))
    assert pick(offices=frozenset({"ir:dgmo", "ir:fm"}), types=frozenset({"ack"})) == [SIZE]
    assert pick(offices=frozenset({"ir:fm"})) == []
    assert pick(types=frozenset({"ack", "hotline.text"})) == list(range(SIZE + 1))
    assert pick(types=frozenset({"incident.notify"})) == []


def test_a_typo_is_named_not_read_as_none_sent(log: Log) -> None:
    selection = log_listing.Selection(types=frozenset({"akc"}), offices=frozenset({"pk:dgmo", "pk:dmgo"}))
    tally = log_listing.Tally(selection)
    for item in log_listing.entries(make_export(log, sizes=(SIZE + 1,)).get, SIZE + 1):
        tally.add(item, log_listing.chosen(item, selection))
    assert tally.total == SIZE + 1 and sum(tally.listed.values()) == 0
    assert tally.hints() == [
        "no entry of this log has type 'akc' (those it has: ack, hotline.text)",
        "no entry of this log has office 'pk:dmgo' (those it has: ir:dgmo, pk:dgmo)",
    ]


def test_an_entry_that_is_not_an_envelope_is_listed_with_why(log: Log) -> None:
    entries = [*log.entries[:5]]
    entries[2] = b'{"v": 1}'
    files = make_export(log, entries=entries, sizes=(5,))
    items = list(log_listing.entries(files.get, 5))
    assert [item.index for item in items] == [0, 1, 2, 3, 4]
    assert items[2].envelope is None and items[2].problem == "not a valid envelope: envelope lacks member(s): " + (
        "id, agreement, channel, from, to, seq, author, precedence, type, lang, refs, case, created, body, sig"
    )
    # Listed only when nothing narrows the selection: it has no type or office to select it by.
    assert log_listing.chosen(items[2], log_listing.Selection())
    assert not log_listing.chosen(items[2], log_listing.Selection(types=frozenset({"hotline.text"})))


def test_what_cannot_be_read_is_named(log: Log) -> None:
    files = make_export(log)
    with pytest.raises(NotFound, match="no checkpoint file"):
        log_listing.tree_of(dict[str, bytes]().get)
    with pytest.raises(MalformedError, match="checkpoint: not a checkpoint note"):
        log_listing.tree_of({"checkpoint": b"pk.detente/log\n3\n"}.get)
    missing = {k: v for k, v in files.items() if k != "tile/entries/001.p/44"}
    listed: list[log_listing.Listed] = []
    with pytest.raises(NotFound, match=r"^tile/entries/001.p/44: missing \(it holds entries 256..\)$"):
        listed.extend(log_listing.entries(missing.get, SIZE))
    assert len(listed) == 256  # the entries before it were listed
    # A damaged bundle: the entries before the damage are listed, then the error says where it is.
    cut = {**files, "tile/entries/001.p/44": files["tile/entries/001.p/44"][:-3]}
    listed = []
    with pytest.raises(MalformedError) as raised:
        listed.extend(log_listing.entries(cut.get, SIZE))
    assert raised.value.detail == (
        "tile/entries/001.p/44: entry 299 is cut short (the bundle ends inside it); "
        "listed entries 256..298 before the damage"
    )
    assert [item.index for item in listed] == list(range(299))
    assert [item.envelope.raw for item in listed if item.envelope] == log.entries[:299]


def _listed_until_damage(files: dict[str, bytes], size: int) -> tuple[list[int], str]:
    """The indexes listed from `files` before the error, and the error's detail."""
    listed: list[int] = []
    with pytest.raises(MalformedError) as raised:
        listed.extend(item.index for item in log_listing.entries(files.get, size))
    return listed, raised.value.detail


def test_a_damaged_bundle_lists_the_entries_before_the_damage(log: Log) -> None:
    """QA: a damaged entry bundle read as nothing; each kind of damage lists what precedes it, then says so."""
    files = make_export(log, sizes=(5,))
    path = "tile/entries/000.p/5"
    bundle = files[path]

    def damaged(data: bytes) -> tuple[list[int], str]:
        return _listed_until_damage({**files, path: data}, 5)

    assert damaged(bundle[:-1]) == (
        [0, 1, 2, 3],
        f"{path}: entry 4 is cut short (the bundle ends inside it); listed entries 0..3 before the damage",
    )
    assert damaged(b"") == ([], f"{path}: is empty; listed none of its entries")
    # A dropped entry, or one too many: the entries the bundle holds are whole, and listed (at most 5).
    assert damaged(tiles.entry_bundle(log.entries[:4])) == (
        [0, 1, 2, 3],
        f"{path}: holds 4 entries, the tree of size 5 needs 5; listed entries 0..3 before the damage",
    )
    assert damaged(tiles.entry_bundle(log.entries[:6])) == (
        [0, 1, 2, 3, 4],
        f"{path}: holds 6 entries, the tree of size 5 needs 5; listed entries 0..4 before the damage",
    )
    # A length changed: entry 2 swallows the next one's length, and what follows is read out of step.
    # The listing stops at the entry that is not an envelope, where the damage is.
    at = sum(2 + len(entry) for entry in log.entries[:2])
    longer = bundle[:at] + (len(log.entries[2]) + 1).to_bytes(2, "big") + bundle[at + 2 :]
    listed, detail = damaged(longer)
    assert listed == [0, 1]
    assert detail.startswith(f"{path}: ") and detail.endswith(
        "; listed entries 0..1 before the damage (entry 2 is not an envelope)"
    )


def test_an_id_or_a_reference_no_entry_has_is_hinted(log: Log) -> None:
    """QA: `--refers-to` given a prefix, or the id of a message nothing refers to, listed nothing and said nothing."""
    answered, alone = parse(log.entries[1]), parse(log.entries[2])
    selection = log_listing.Selection(
        ids=("0000", alone.id[:20]), refers_to=(answered.id[:13], alone.id, "ffff", alone.id)
    )
    tally = log_listing.Tally(selection)
    for item in log_listing.entries(make_export(log, sizes=(SIZE + 1,)).get, SIZE + 1):
        tally.add(item, log_listing.chosen(item, selection))
    assert tally.hints() == [
        "no entry of this log has an id beginning '0000'",
        f"no entry of this log refers to {alone.id!r}: entry 2 is that message (hotline.text {alone.id}), "
        "and nothing in the log refers to it",
        "no entry of this log refers to 'ffff', and no entry's id begins so",
    ]
    # Nothing to say when every prefix matched something.
    found = log_listing.Selection(ids=(alone.id[:20],), refers_to=(answered.id,))
    tally = log_listing.Tally(found)
    for item in log_listing.entries(make_export(log, sizes=(SIZE + 1,)).get, SIZE + 1):
        tally.add(item, log_listing.chosen(item, found))
    assert tally.hints() == [] and tally.listed == {}


# --- the command ----------------------------------------------------------------------------------


def test_the_command_lists_and_counts(log: Log, tmp_path: Path) -> None:
    out = write(make_export(log, sizes=(SIZE + 1,)), tmp_path / "pk")
    answered = parse(log.entries[1]).id
    result = detente("log", "entries", str(out), "--refers-to", answered)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"log pk.detente/log, size {SIZE + 1}: the entries as exported, not verified by this listing"
    ack = parse(log.entries[SIZE])
    assert lines[1].split() == [
        str(SIZE), "2026-01-16T13:05:00.000Z", "ack", "ROUTINE", "ir:dgmo", "→", "pk:dgmo", ack.id, "re", answered,
    ]  # fmt: skip
    assert lines[2:] == [f"1 of {SIZE + 1} entries listed: ack 1"]

    # --refers-to takes a prefix, as --id does; one that nothing refers to gets a hint, an empty one a usage error.
    prefix = detente("log", "entries", str(out), "--refers-to", answered[:13])
    assert prefix.code == 0 and prefix.stdout.splitlines()[1:] == lines[1:], prefix.stderr
    alone = parse(log.entries[2]).id
    unanswered = detente("log", "entries", str(out), "--refers-to", alone)
    assert unanswered.code == 0 and unanswered.stdout.splitlines()[1:] == [
        f"0 of {SIZE + 1} entries listed: none",
        f"hint: no entry of this log refers to {alone!r}: entry 2 is that message (hotline.text {alone}), "
        "and nothing in the log refers to it",
    ]
    unknown = detente("log", "entries", str(out), "--id", "nosuchid")
    assert unknown.stdout.splitlines()[-1] == "hint: no entry of this log has an id beginning 'nosuchid'"
    for option in ("--id", "--refers-to"):
        assert_usage_error(detente("log", "entries", str(out), option, ""), "an id prefix cannot be empty")

    every = detente("log", "entries", str(out))
    assert every.code == 0 and every.stdout.splitlines()[-1] == (
        f"{SIZE + 1} of {SIZE + 1} entries listed: ack 1, hotline.text {SIZE}"
    )

    as_json = detente("log", "entries", str(out), "--json", "--type", "ack", "--type", "akc")
    assert as_json.code == 0, as_json.stderr
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [{"index": SIZE, "envelope": ack.data}]
    assert as_json.stderr.splitlines() == [
        f"1 of {SIZE + 1} entries listed: ack 1",
        "hint: no entry of this log has type 'akc' (those it has: ack, hotline.text)",
    ]


def test_the_command_exits_1_for_what_it_cannot_read(log: Log, tmp_path: Path) -> None:
    entries = [*log.entries[:5]]
    entries[3] = b"not json"
    out = write(make_export(log, entries=entries, sizes=(5,)), tmp_path / "bad")
    result = detente("log", "entries", str(out))
    assert result.code == 1
    assert "      3  not a valid envelope: envelope is not valid JSON" in result.stdout
    assert "5 of 5 entries listed: (not an envelope) 1, hotline.text 4" in result.stdout
    assert "error: 1 of the entries are not envelopes; `detente audit` says more" in result.stderr

    (out / tiles.entries_path(0, 5)).unlink()
    assert_error(detente("log", "entries", str(out)), "tile/entries/000.p/5: missing (it holds entries 0..)")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_error(detente("log", "entries", str(empty)), "no checkpoint file")


def test_an_alternates_answer_is_found_by_its_office(log: Log, tmp_path: Path) -> None:
    """QA: an ack an alternate gave (its body names the office) was not found by `--office` of that office."""
    answered = parse(log.entries[1])
    ack = envelope(
        log.doc, log.signers["ir"], 1000, "", type="ack", body={"note": "", "office": "ir:fs"}, refs=[answered.id],
        **{"from": "ir:dgmo", "to": "pk:dgmo"},
    )  # fmt: skip
    entries = [*log.entries, ack.raw]
    out = write(make_export(log, entries=entries, sizes=(len(entries),)), tmp_path / "pk")
    found = detente("log", "entries", str(out), "--office", "ir:fs")
    assert found.code == 0, found.stderr
    assert f"ir:dgmo → pk:dgmo (answered by ir:fs)  {ack.id}" in found.stdout
    assert found.stdout.splitlines()[-1] == f"1 of {len(entries)} entries listed: ack 1"


def test_no_hint_from_a_log_read_in_part(log: Log, tmp_path: Path) -> None:
    """QA: a damaged export said the log has no types at all; of a log read in part they are unknown."""
    files = make_export(log)
    out = write({**files, "tile/entries/000": files["tile/entries/000"][:-3]}, tmp_path / "cut")
    result = detente("log", "entries", str(out), "--type", "hotline.text", "--type", "akc")
    assert result.code == 1 and "hint:" not in result.stdout + result.stderr
    # QA: the damaged bundle read as nothing; the entries before the damage are listed, then the error.
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == [str(i) for i in range(255)]
    assert lines[-1] == "255 of 300 entries listed (read 255 before the error): hotline.text 255"
    assert result.stderr == (
        "error: MalformedError: tile/entries/000: entry 255 is cut short (the bundle ends inside it); "
        "listed entries 0..254 before the damage\n"
    )
