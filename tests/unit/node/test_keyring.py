"""Rotating a node key: `key new`, `key show`, `agreement ratify` switching keys, `serve` refusing a key the
agreement does not pin, and `backup`/`restore` across a rotation.

Two nodes are made as an operator makes them (`init`, the agreement completed, `ratify`), but never
started: every command runs through `detente.cli.main` in this process (`cli_support.detente`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_support import Ran, assert_error, detente
from detente.core import agreement as agreement_mod
from detente.core import wire
from detente.core.keys import Signer
from detente.node import keyring, serving
from detente.node.demo import fill_agreement
from detente.node.serving import ServeLock
from detente.node.setup import init_node
from support import ratifications

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = ROOT / "agreements" / "pk-ir.toml"


@dataclass
class Nodes:
    """pk and ir, set up and ratified; `values` is what the agreement pins for each."""

    root: Path
    agreement: Path
    values: dict[str, dict[str, str]]

    def data(self, party: str) -> Path:
        return self.root / party

    def amended(self, name: str, **vkeys: str) -> Path:
        """Write the agreement with these parties' vkeys changed; return the file."""
        values = {p: {**v, **({"vkey": vkeys[p]} if p in vkeys else {})} for p, v in self.values.items()}
        path = self.root / name
        path.write_text(fill_agreement(AGREEMENT.read_text(encoding="utf-8"), values, None), encoding="utf-8")
        return path


@pytest.fixture
def nodes(tmp_path: Path) -> Nodes:
    made = {
        p: init_node(tmp_path / p, p, AGREEMENT, "127.0.0.1", port, None) for p, port in (("pk", 18443), ("ir", 18444))
    }
    values = {p: {"url": r.config.url, "vkey": r.vkey, "tls_fingerprint": r.fingerprint} for p, r in made.items()}
    found = Nodes(tmp_path, tmp_path / "agreement.toml", values)
    found.agreement.write_text(fill_agreement(AGREEMENT.read_text(encoding="utf-8"), values, None), encoding="utf-8")
    for party in values:
        assert ratify(found.data(party), found.agreement).code == 0
    return found


def ratify(data: Path, agreement: Path, *options: str) -> Ran:
    return detente("agreement", "ratify", "--data", str(data), "--agreement", str(agreement), *options)


def files(data: Path) -> dict[str, bytes]:
    """Every file of a data directory but the database's, byte for byte."""
    return {
        str(p.relative_to(data)): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and not p.name.startswith("node.db") and p.name != "serve.lock"
    }


def vkey_of(path: Path) -> str:
    return keyring.load(path, "pk.detente/log").verifier.vkey()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_new(data: Path, *options: str) -> str:
    """Run `key new`; return the vkey it printed."""
    made = detente("key", "new", "--data", str(data), *options)
    assert made.code == 0, made.stderr
    line = next(x for x in made.stdout.splitlines() if x.startswith('vkey = "'))
    return line.removeprefix('vkey = "').removesuffix('"')


def rotated(nodes: Nodes, new: str | None = None) -> tuple[Path, str, str]:
    """Rotate pk's key: `key new` (unless `new` is the next key's vkey), the amended agreement, both ratify it.

    Returns (amended file, old vkey, new vkey).
    """
    pk = nodes.data("pk")
    old, new = nodes.values["pk"]["vkey"], new or key_new(pk)
    amended = nodes.amended("amended.toml", pk=new)
    for party in ("pk", "ir"):
        done = ratify(nodes.data(party), amended, "--replace")
        assert done.code == 0, done.stderr
    return amended, old, new


def stop_before_listening(host: str, port: int) -> list[object]:
    raise AssertionError("serve went past its checks")


def test_key_new_makes_a_private_next_key_and_refuses_a_second(nodes: Nodes) -> None:
    pk = nodes.data("pk")
    before = files(pk)
    made = detente("key", "new", "--data", str(pk))
    assert made.code == 0, made.stderr
    path = pk / "node.key.next"
    vkey = vkey_of(path)
    assert made.stdout.splitlines() == [
        f"next node key written to {path}; node.key stays in force until this node ratifies an agreement that pins "
        "the new key",
        "Put it in the amended agreement under [parties.pk]:",
        f'vkey = "{vkey}"',
        "then every party ratifies the amended agreement, each node stopped; this node switches to the new key",
        f"when it ratifies it: detente agreement ratify --data {pk} --agreement NEW.toml --replace",
    ]
    assert mode(path) == 0o600 and vkey != nodes.values["pk"]["vkey"]
    assert {k: v for k, v in files(pk).items() if k != "node.key.next"} == before  # node.key untouched
    assert not [p.name for p in pk.iterdir() if p.name.endswith(".new")]

    waiting = files(pk)
    refused = detente("key", "new", "--data", str(pk))
    assert_error(refused, f"Conflict: {path} holds a next key already, {vkey}: put its vkey in the amended agreement")
    assert "give --replace to make another in its place" in refused.stderr
    assert files(pk) == waiting

    replaced = detente("key", "new", "--data", str(pk), "--replace")
    assert replaced.code == 0, replaced.stderr
    assert f"it replaces the next key made before, {vkey}" in replaced.stdout.splitlines()
    assert vkey_of(path) not in (vkey, nodes.values["pk"]["vkey"]) and mode(path) == 0o600
    assert files(pk)["node.key"] == before["node.key"]


def test_key_show_tells_which_key_is_in_force_and_pinned(nodes: Nodes) -> None:
    pk = nodes.data("pk")
    old = nodes.values["pk"]["vkey"]
    doc = agreement_mod.load(nodes.agreement.read_text(encoding="utf-8"))
    shown = detente("key", "show", "--data", str(pk))
    assert shown.code == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"key in force   {old}  (node.key)",
        f"agreement      pk-ir-2024 {doc.hash[:12]}… pins this key for pk",
        f"next key       none (`detente key new --data {pk}` makes one)",
        "retired keys   none",
    ]
    new = key_new(pk)
    assert f"next key       {new}  (node.key.next), for [parties.pk] of an amended agreement" in (
        detente("key", "show", "--data", str(pk)).stdout.splitlines()
    )
    rotated_doc = agreement_mod.load(nodes.amended("amended.toml", pk=new).read_text(encoding="utf-8"))
    assert ratify(pk, nodes.root / "amended.toml", "--replace").code == 0
    retired = next((pk / "retired-keys").iterdir())
    assert detente("key", "show", "--data", str(pk)).stdout.splitlines() == [
        f"key in force   {new}  (node.key)",
        f"agreement      pk-ir-2024 {rotated_doc.hash[:12]}… pins this key for pk",
        f"next key       none (`detente key new --data {pk}` makes one)",
        f"retired key    {old}  (retired-keys/{retired.name})",
    ]
    # A damaged key file is named with the rest, not in place of them.
    (pk / "node.key.next").write_bytes(b"not a key")
    (pk / "retired-keys" / "zz.key").write_bytes(b"")
    damaged = detente("key", "show", "--data", str(pk))
    assert damaged.code == 0, damaged.stderr
    lines = damaged.stdout.splitlines()
    assert f"key in force   {new}  (node.key)" in lines
    assert f"retired key    {old}  (retired-keys/{retired.name})" in lines
    assert [line.split(": ")[0] for line in lines if line.startswith("unusable key")] == [
        f"unusable key   {pk / 'node.key.next'} is damaged",
        f"unusable key   {pk / 'retired-keys' / 'zz.key'} is damaged",
    ]


def test_ratifying_an_agreement_that_pins_the_next_key_switches_to_it(nodes: Nodes) -> None:
    pk = nodes.data("pk")
    old_pem = (pk / "node.key").read_bytes()
    new = key_new(pk)
    new_pem = (pk / "node.key.next").read_bytes()
    amended = nodes.amended("amended.toml", pk=new)
    doc = agreement_mod.load(amended.read_text(encoding="utf-8"))

    # Without --replace it is an amendment refused like any other, keys and all.
    before = files(pk)
    assert_error(ratify(pk, amended), "Give --replace to replace it")
    assert files(pk) == before

    done = ratify(pk, amended, "--replace")
    assert done.code == 0, done.stderr
    old = nodes.values["pk"]["vkey"]
    key_id = keyring.load(pk / "node.key", "pk.detente/log").verifier.key_id.hex()
    assert key_id == new.split("+")[1]
    retired = pk / "retired-keys" / f"{Signer.from_pem('pk.detente/log', old_pem).verifier.key_id.hex()}.key"
    lines = done.stdout.splitlines()
    assert lines[2:4] == [
        f"node key switched: node.key is now {new} (it was node.key.next)",
        f"the key it replaced, {old}, is kept in {retired}",
    ]
    assert (pk / "node.key").read_bytes() == new_pem and mode(pk / "node.key") == 0o600
    assert not (pk / "node.key.next").exists()
    assert retired.read_bytes() == old_pem and mode(retired) == 0o600 and mode(pk / "retired-keys") == 0o700
    # The ratification was signed with the key the agreement pins: the new one.
    signature = lines[1].removeprefix("signature ")
    wire.check_ratification(doc, "pk", signature)
    assert doc.hash in ratifications(pk, "pk")

    after = files(pk)
    again = ratify(pk, amended)
    assert again.code == 0, again.stderr
    assert "this agreement was in force already: nothing else changed" in again.stdout
    assert "switched" not in again.stdout
    assert files(pk) == after


def test_an_agreement_pinning_a_key_this_node_does_not_hold_is_refused_and_changes_nothing(nodes: Nodes) -> None:
    pk = nodes.data("pk")
    key_new(pk)
    stranger = Signer.generate("pk.detente/log").verifier.vkey()
    amended = nodes.amended("stranger.toml", pk=stranger)
    before, held = files(pk), ratifications(pk, "pk")
    refused = ratify(pk, amended, "--replace")
    assert_error(refused, f"Invalid: the agreement does not pin this node's key: it pins {stranger} for pk")
    assert "or for a new key (a rotation), the one `detente key new` makes" in refused.stderr
    assert files(pk) == before and ratifications(pk, "pk") == held


def test_going_back_to_the_earlier_agreement_uses_the_retired_key(nodes: Nodes) -> None:
    pk = nodes.data("pk")
    first_pem = (pk / "node.key").read_bytes()
    amended, old, new = rotated(nodes)
    new_pem = (pk / "node.key").read_bytes()

    back = ratify(pk, nodes.agreement, "--replace")
    assert back.code == 0, back.stderr
    assert f"node key switched: node.key is now {old} (it was " in back.stdout
    assert (pk / "node.key").read_bytes() == first_pem
    # The key in force before is retired in its turn; the one taken back is no longer a retired key.
    assert [p.read_bytes() for p in (pk / "retired-keys").iterdir()] == [new_pem]
    signature = back.stdout.splitlines()[1].removeprefix("signature ")
    wire.check_ratification(agreement_mod.load(nodes.agreement.read_text(encoding="utf-8")), "pk", signature)

    forth = ratify(pk, amended, "--replace")
    assert forth.code == 0, forth.stderr
    assert (pk / "node.key").read_bytes() == new_pem
    assert [p.read_bytes() for p in (pk / "retired-keys").iterdir()] == [first_pem]
    assert vkey_of(pk / "node.key") == new


def test_serve_refuses_a_node_key_the_agreement_does_not_pin_and_ratify_finishes_a_switch(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = nodes.data("pk")
    new = key_new(pk)
    amended = nodes.amended("amended.toml", pk=new)

    # The switch fails after the ratification is stored: node.key still holds the old key.
    real_replace = os.replace

    def failing(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if str(target).endswith("/node.key"):
            raise PermissionError(13, "Permission denied")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing)
    assert_error(ratify(pk, amended, "--replace"), "BadRequest: cannot make ")
    monkeypatch.undo()
    assert vkey_of(pk / "node.key") == nodes.values["pk"]["vkey"] and vkey_of(pk / "node.key.next") == new
    # The next key is the one the installed agreement pins now: not even --replace makes another.
    waiting = files(pk)
    assert_error(
        detente("key", "new", "--data", str(pk), "--replace"),
        f"node.key.next holds the key the installed agreement pins for pk, {new}: `detente agreement ratify",
    )
    assert files(pk) == waiting

    # Should `serve` get past its checks, it must not go on to serve in this process.
    monkeypatch.setattr(serving, "listen", stop_before_listening)
    served = detente("serve", "--data", str(pk))
    assert_error(
        served,
        f"Invalid: {pk / 'node.key'} is not the key the agreement pins for pk ({new}); node.key.next holds it: "
        f"`detente agreement ratify --data {pk}` makes it node.key",
    )
    # Not while a node serves from the directory: it signs with node.key until it stops.
    lock = ServeLock(pk, agreement_mod.load(amended.read_text(encoding="utf-8")))
    try:
        before = files(pk)
        assert_error(detente("agreement", "ratify", "--data", str(pk)), "stop it, ratify, then start it again")
        assert files(pk) == before
    finally:
        lock.release()
    finished = detente("agreement", "ratify", "--data", str(pk))
    assert finished.code == 0, finished.stderr
    assert f"node key switched: node.key is now {new} (it was node.key.next)" in finished.stdout
    assert "nothing else changed" not in finished.stdout
    assert vkey_of(pk / "node.key") == new

    # A key no file of this node holds.
    (pk / "node.key").write_bytes(Signer.generate("pk.detente/log").to_pem())
    assert_error(
        detente("serve", "--data", str(pk)),
        f"is not the key the agreement pins for pk ({new}); no key file of this node holds it",
    )


def test_backup_and_restore_across_a_rotation(nodes: Nodes, tmp_path: Path) -> None:
    pk = nodes.data("pk")
    first_pem = (pk / "node.key").read_bytes()
    before = tmp_path / "before"
    assert detente("backup", "--data", str(pk), "--out", str(before)).code == 0
    new = key_new(pk)
    with_next = tmp_path / "with-next"
    assert detente("backup", "--data", str(pk), "--out", str(with_next)).code == 0
    assert (with_next / "node.key.next").read_bytes() == (pk / "node.key.next").read_bytes()
    assert mode(with_next / "node.key.next") == 0o600
    amended, _, _ = rotated(nodes, new)
    new_pem = (pk / "node.key").read_bytes()
    after = tmp_path / "after"
    assert detente("backup", "--data", str(pk), "--out", str(after)).code == 0
    assert [p.read_bytes() for p in (after / "retired-keys").iterdir()] == [first_pem]
    assert mode(after / "retired-keys") == 0o700 and not (after / "node.key.next").exists()

    # A copy taken before the rotation is this node's: its node.key is retired here. The key in
    # force, which the copy does not hold, is kept.
    done = detente("restore", "--data", str(pk), "--from", str(before))
    assert done.code == 0, done.stderr
    kept = f"retired-keys/{Signer.from_pem('pk.detente/log', new_pem).verifier.key_id.hex()}.key"
    assert f"kept         {kept}: this node's keys that the backup holds no copy of" in done.stdout
    assert (pk / "node.key").read_bytes() == first_pem and (pk / kept).read_bytes() == new_pem
    assert mode(pk / kept) == 0o600
    assert (pk / "agreement.toml").read_bytes() == nodes.agreement.read_bytes()
    # ...so that the node can go forward to the amended agreement again.
    forth = ratify(pk, amended, "--replace")
    assert forth.code == 0, forth.stderr
    assert vkey_of(pk / "node.key") == new

    # A copy taken after the rotation, into a node as it was before it (a copy restored elsewhere):
    # this node's key is retired in the copy.
    moved = tmp_path / "moved"
    assert detente("restore", "--data", str(moved), "--from", str(before)).code == 0
    assert not (moved / "retired-keys").exists()
    done = detente("restore", "--data", str(moved), "--from", str(after))
    assert done.code == 0, done.stderr
    assert (moved / "node.key").read_bytes() == new_pem and "kept " not in done.stdout

    # Another node's copy, even one with retired keys of its own, is still refused.
    other = tmp_path / "other"
    assert detente("backup", "--data", str(moved), "--out", str(other)).code == 0
    for path in (other / "node.key", *(other / "retired-keys").iterdir()):
        path.write_bytes(Signer.generate("pk.detente/log").to_pem())
    untouched = files(moved)
    assert_error(detente("restore", "--data", str(moved), "--from", str(other)), "is a backup of another node pk")
    assert files(moved) == untouched
