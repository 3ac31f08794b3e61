"""`detente log show`, `log proof` and `log verify-proof` against two real nodes.

Commands run through `detente.cli.main` in this process (`cli_support.detente`). A proof is
verified by the command itself with the agreement's pinned keys; each way it can fail (a changed
bundle, another key, an unknown id) is one `error:` line and exit status 1.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_support import Ran, assert_error, assert_usage_error, detente
from detente.cli import log_proofs as log_cli
from detente.core import agreement as agreement_mod
from detente.core.checkpoint import parse_proof_bundle
from detente.core.keys import Signer
from detente.core.note import parse_note
from detente.core.proof_bundle import verify_bundle
from detente.errors import BadRequest, Conflict
from record_support import saved_before_rotation
from support import Cluster, NodeProc, wait_for


def auth(node: NodeProc, operator: str) -> tuple[str, ...]:
    return ("--node", str(node.data), "--token", node.token(operator))


def cosigned_bundle(node: NodeProc, operator: str, message_id: str) -> bytes | None:
    """The node's own-log bundle of `message_id` once its checkpoint carries a cosignature (None before)."""
    with node.client(operator) as client:
        response = client.get(f"/api/v1/messages/{message_id}/proof")
    if response.status_code != 200:
        return None
    return (
        response.content if len(parse_note(parse_proof_bundle(response.content).note_bytes).signatures) >= 2 else None
    )


@dataclass(frozen=True)
class Sent:
    """A message pk sent ir, proven in ir's log, whose checkpoint in pk's log ir has cosigned."""

    id: str
    pk_index: int  # its index in pk's log
    ir_index: int  # its index in ir's log (the receipt's)
    agreement: Path


@pytest.fixture(scope="module")
def sent(pair: Cluster) -> Sent:
    pk = pair["pk"]
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
               "body": {"text": "log proof test"}}  # fmt: skip
    with pk.client("pk-dgmo") as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    message_id = str(response.json()["id"])
    wait_for(lambda: pk.message("pk-dgmo", message_id)["verified"], what="the message to be proven in ir's log")
    wait_for(lambda: cosigned_bundle(pk, "pk-dgmo", message_id), what="ir to cosign pk's checkpoint")
    shown = pk.message("pk-dgmo", message_id)
    return Sent(message_id, int(response.json()["log_index"]), int(shown["receipt"]["log_index"]),
                Path(pair.info["agreement"]))  # fmt: skip


def lines(result: Ran) -> list[str]:
    assert result.code == 0, (result.code, result.stdout, result.stderr)
    return result.stdout.splitlines()


def proves(result: Ran, message_id: str, log: str, witness: str, index: int) -> None:
    """Assert `result` is a verified proof of `message_id` at `index` in `log`'s log, cosigned by `witness`."""
    out = lines(result)
    assert out[1].startswith(f"envelope     {message_id} pk:dgmo → ir:dgmo hotline.text, signature verifies"), out
    assert out[2] == f"log          {log}.detente/log (party {log})"
    assert out[3] == f"leaf index   {index}"
    assert out[4].startswith("tree size    ") and int(out[4].split()[2]) > index
    assert out[5] == f"checkpoint   signed by {log} ({log}.detente/log), the key the agreement pins"
    assert out[6].startswith(f"cosigned by  {witness} ({witness}.detente/log) at 20")
    assert out[-1] == "inclusion proof verifies" and "warning" not in result.stdout
    assert result.stderr == ""


# --- log show -----------------------------------------------------------------------------------


def test_show_prints_the_size_the_checkpoint_and_each_peer(pair: Cluster, sent: Sent) -> None:
    pk = pair["pk"]
    out = lines(detente("log", "show", *auth(pk, "pk-dgmo")))
    assert out[0].startswith("log          pk.detente/log  size ") and int(out[0].split()[-1]) > sent.pk_index
    assert out[1].startswith("checkpoint   size ") and out[2] == "  pk.detente/log"
    assert any(line.startswith("  — pk.detente/log ") for line in out)
    assert any(line.startswith("  — ir.detente/log ") for line in out)  # ir's cosignature
    peer = out.index(next(line for line in out if line.startswith("peer ir")))
    assert out[peer].startswith("peer ir      this node cosigned ir.detente/log up to size ")
    assert out[peer + 1].startswith("             ir cosigned this log up to size ")


def test_show_json_is_the_nodes_answer(pair: Cluster) -> None:
    pk = pair["pk"]
    printed = json.loads(detente("log", "show", "--json", *auth(pk, "pk-dgmo")).stdout)
    assert printed["origin"] == "pk.detente/log" and isinstance(printed["size"], int)
    assert set(printed["peers"]) == {"ir"} and printed["peers"]["ir"]["origin"] == "ir.detente/log"
    assert printed["checkpoint"]["note"].startswith("pk.detente/log\n")


def test_show_needs_a_token_that_opens_the_node(pair: Cluster) -> None:
    pk = pair["pk"]
    result = detente("log", "show", "--node", str(pk.data), "--token", "not-a-token")
    assert_error(result, "Unauthorized: ")


# --- log proof ----------------------------------------------------------------------------------


def test_proof_in_the_senders_log_and_in_the_receivers(pair: Cluster, sent: Sent) -> None:
    pk, ir = pair["pk"], pair["ir"]
    proves(detente("log", "proof", sent.id, *auth(pk, "pk-dgmo")), sent.id, "pk", "ir", sent.pk_index)
    proves(detente("log", "proof", sent.id, "--log", "ir", *auth(pk, "pk-dgmo")), sent.id, "ir", "pk", sent.ir_index)
    proves(detente("log", "proof", sent.id, "--log", "pk", *auth(pk, "pk-dgmo")), sent.id, "pk", "ir", sent.pk_index)
    # The receiver proves the same envelope in its own log, and (asking pk live) in pk's.
    proves(detente("log", "proof", sent.id, *auth(ir, "ir-dgmo")), sent.id, "ir", "pk", sent.ir_index)
    proves(detente("log", "proof", sent.id, "--log", "pk", *auth(ir, "ir-dgmo")), sent.id, "pk", "ir", sent.pk_index)


def test_proof_with_url_and_the_auditors_own_agreement(pair: Cluster, sent: Sent) -> None:
    pk = pair["pk"]
    where = ("--url", pk.url, "--cacert", str(pk.data / "tls.crt"), "--token", pk.token("pk-dgmo"))
    result = detente("log", "proof", sent.id, *where, "--agreement", str(sent.agreement))
    proves(result, sent.id, "pk", "ir", sent.pk_index)
    doc = agreement_mod.load(sent.agreement.read_text(encoding="utf-8"))
    assert lines(result)[0] == f"agreement    {doc.id} {doc.hash}"
    assert_usage_error(detente("log", "proof", sent.id, *where), "give your copy of the agreement, or --node DIR")


def test_proof_of_an_unknown_id_is_not_found(pair: Cluster) -> None:
    pk = pair["pk"]
    unknown = "01900000-0000-7000-8000-000000000000"
    for extra in ((), ("--log", "ir")):
        result = detente("log", "proof", unknown, *extra, *auth(pk, "pk-dgmo"))
        assert_error(result, f"NotFound: no message {unknown} for your offices")
        assert result.stdout == ""
    assert_error(detente("log", "proof", "..", *auth(pk, "pk-dgmo")), "NotFound: no message .. for your offices")
    assert_usage_error(detente("log", "proof", "a/b", *auth(pk, "pk-dgmo")), "an id cannot hold '/'")
    assert_usage_error(detente("log", "proof", unknown, "--log", "xx", *auth(pk, "pk-dgmo")), "'xx' is not a party")


def wrong_key(agreement: Path, party: str, tmp_path: Path) -> Path:
    """A copy of the agreement whose key for `party` is another key of the same name."""
    doc = agreement_mod.load(agreement.read_text(encoding="utf-8"))
    pinned = doc.parties[party].vkey
    other = Signer.generate(f"{party}.detente/log").verifier.vkey()
    path = tmp_path / f"wrong-{party}.toml"
    path.write_text(agreement.read_text(encoding="utf-8").replace(pinned, other), encoding="utf-8")
    return path


def test_a_wrong_key_in_the_agreement_fails_the_proof(pair: Cluster, sent: Sent, tmp_path: Path) -> None:
    pk = pair["pk"]
    wrong_pk, wrong_ir = wrong_key(sent.agreement, "pk", tmp_path), wrong_key(sent.agreement, "ir", tmp_path)
    doc = agreement_mod.load(wrong_pk.read_text(encoding="utf-8"))
    result = detente("log", "proof", sent.id, *auth(pk, "pk-dgmo"), "--agreement", str(wrong_pk))
    assert_error(result, "VerificationError: the checkpoint of pk.detente/log at size ")
    assert f"is not signed by the key agreement {doc.id} pins for pk" in result.stderr and result.stdout == ""
    in_ir = detente("log", "proof", sent.id, "--log", "ir", *auth(pk, "pk-dgmo"), "--agreement", str(wrong_ir))
    assert_error(in_ir, "is not signed by the key agreement")
    # The envelope names the real agreement, not this copy: its signature cannot be checked, and the
    # proof is not verified (QA5 #11), unless the real one is given as an earlier agreement.
    real = agreement_mod.load(sent.agreement.read_text(encoding="utf-8"))
    given = ("log", "proof", sent.id, *auth(pk, "pk-dgmo"), "--agreement", str(wrong_ir))
    refused = detente(*given, "--allow-unwitnessed")
    assert_error(refused, f"is sealed under agreement {real.hash[:12]}…, not given, so its signature cannot be checked")
    assert "give that agreement with --earlier" in refused.stderr and refused.stdout == ""
    # ir's real cosignature is not by the key this copy pins for ir: pk's checkpoint is then unwitnessed
    # under it, and the error names the earlier agreement whose key for ir it verifies with.
    unwitnessed = detente(*given, "--earlier", str(sent.agreement))
    assert_error(unwitnessed, "VerificationError: ir cosigned the checkpoint of pk.detente/log at size")
    assert f"with its key pinned by earlier agreement pk-ir-2024 {real.hash[:12]}…, not by agreement" in (
        unwitnessed.stderr
    )
    out = lines(detente(*given, "--earlier", str(sent.agreement), "--allow-unwitnessed"))
    assert "not cosigned by ir" in out and out[-1] == "inclusion proof verifies"
    assert "warning      no other party cosigned this checkpoint: it rests on pk's word alone" in out
    assert "signature verifies (pk's key pinned by earlier agreement" in out[2]


# --- --earlier: a log across an amendment ---------------------------------------------------------


def amended(agreement: Path, tmp_path: Path) -> Path:
    """A copy of the agreement amended (another id, so another hash), the keys unchanged."""
    text = agreement.read_text(encoding="utf-8")
    assert 'id = "pk-ir-2024"' in text
    path = tmp_path / "amended.toml"
    path.write_text(text.replace('id = "pk-ir-2024"', 'id = "pk-ir-2025"', 1), encoding="utf-8")
    return path


def proves_earlier(result: Ran, sent: Sent, new: Path, log: str, index: int) -> None:
    """Assert `result` proves the message under the amended agreement `new`, its envelope under the real one."""
    doc = agreement_mod.load(new.read_text(encoding="utf-8"))
    real = agreement_mod.load(sent.agreement.read_text(encoding="utf-8"))
    out = lines(result)
    assert out[:2] == [f"agreement    {doc.id} {doc.hash}", f"earlier      {real.id} {real.hash}"], out
    assert out[2] == (
        f"envelope     {sent.id} pk:dgmo → ir:dgmo hotline.text, signature verifies "
        f"(pk's key pinned by earlier agreement pk-ir-2024 {real.hash[:12]}…)"
    )
    assert out[3] == f"log          {log}.detente/log (party {log})" and out[4] == f"leaf index   {index}"
    assert out[-1] == "inclusion proof verifies" and "warning" not in result.stdout and result.stderr == ""


def test_proof_of_an_envelope_under_an_earlier_agreement_needs_it(pair: Cluster, sent: Sent, tmp_path: Path) -> None:
    pk = pair["pk"]
    new = amended(sent.agreement, tmp_path)
    real = agreement_mod.load(sent.agreement.read_text(encoding="utf-8"))
    given = ("log", "proof", sent.id, *auth(pk, "pk-dgmo"), "--agreement", str(new))
    refused = detente(*given)
    assert_error(refused, f"VerificationError: envelope {sent.id} is sealed under agreement {real.hash[:12]}…, not")
    assert refused.stdout == ""
    proves_earlier(detente(*given, "--earlier", str(sent.agreement)), sent, new, "pk", sent.pk_index)
    in_ir = detente(*given, "--log", "ir", "--earlier", str(sent.agreement))
    proves_earlier(in_ir, sent, new, "ir", sent.ir_index)
    # An earlier agreement not named by the envelope, given too, changes nothing.
    other = wrong_key(sent.agreement, "pk", tmp_path)
    both = detente(*given, "--earlier", str(other), "--earlier", str(sent.agreement))
    assert lines(both)[3].startswith(f"envelope     {sent.id} ") and "earlier agreement pk-ir-2024" in lines(both)[3]
    assert_usage_error(detente(*given, "--earlier", str(new)), "is an agreement given already")
    twice = ("--earlier", str(sent.agreement))
    assert_usage_error(detente(*given, *twice, *twice), "is an agreement given already")
    assert_usage_error(detente(*given, "--earlier", str(tmp_path / "missing.toml")), "does not exist")


# --- --out and log verify-proof -------------------------------------------------------------------


@pytest.fixture
def saved(pair: Cluster, sent: Sent, tmp_path: Path) -> Path:
    """The bundle of the module's message in ir's log, written by `log proof --out`."""
    path = tmp_path / "m.tlog-proof"
    result = detente("log", "proof", sent.id, "--log", "ir", *auth(pair["pk"], "pk-dgmo"), "--out", str(path))
    assert lines(result)[-1] == f"wrote        {path}"
    return path


def verify(path: Path, agreement: Path, *extra: str) -> Ran:
    return detente("log", "verify-proof", str(path), "--agreement", str(agreement), *extra)


def test_a_saved_bundle_verifies_offline(sent: Sent, saved: Path) -> None:
    bundle = parse_proof_bundle(saved.read_bytes())
    assert bundle.extra is not None and json.loads(bundle.extra)["id"] == sent.id  # the envelope travels with it
    proves(verify(saved, sent.agreement), sent.id, "ir", "pk", sent.ir_index)
    proves(verify(saved, sent.agreement, "--log", "ir"), sent.id, "ir", "pk", sent.ir_index)
    assert_error(
        verify(saved, sent.agreement, "--log", "pk"), "proves inclusion in ir's log (ir.detente/log), not in pk's"
    )


def tampered(saved: Path, old: bytes, new: bytes) -> Path:
    data = saved.read_bytes()
    assert old in data, old
    path = saved.with_name("tampered.tlog-proof")
    path.write_bytes(data.replace(old, new, 1))
    return path


def test_a_tampered_bundle_fails_naming_what(sent: Sent, saved: Path) -> None:
    bundle = parse_proof_bundle(saved.read_bytes())
    note = parse_note(bundle.note_bytes)
    root = note.text.split("\n")[2].encode()
    first_hash = base64.b64encode(bundle.proof[0])
    changed_hash = base64.b64encode(bytes([bundle.proof[0][0] ^ 1]) + bundle.proof[0][1:])
    assert bundle.extra is not None
    other_envelope = base64.b64encode(bundle.extra.replace(b"log proof test", b"log proof TEST"))
    cases = {
        "a proof hash": (first_hash, changed_hash, "the inclusion proof does not verify: envelope"),
        "the index": (b"index %d\n" % bundle.index, b"index %d\n" % (bundle.index + 1), "is not entry"),
        "the envelope": (base64.b64encode(bundle.extra), other_envelope, "the inclusion proof does not verify"),
        "the root": (b"\n" + root + b"\n", b"\n" + base64.b64encode(bytes(32)) + b"\n", "is not signed by the key"),
        "the witness": (
            b"\n\xe2\x80\x94 pk.detente/log ",
            b"\n\xe2\x80\x94 pk.detente/lug ",
            "no other party cosigned the checkpoint of ir.detente/log at size",
        ),
        "the format": (b"c2sp.org/tlog-proof@v1", b"c2sp.org/tlog-proof@v2", "is not a tlog-proof bundle"),
    }
    for what, (old, new, says) in cases.items():
        result = verify(tampered(saved, old, new), sent.agreement)
        assert result.code == 1 and result.stdout == "", what
        assert_error(result, says)
    # A file does not change by asking again: the advice for an unwitnessed one says what to do instead.
    unwitnessed = verify(tampered(saved, *cases["the witness"][:2]), sent.agreement)
    assert "a saved bundle stays as it is: fetch a newer one with `log proof`, or accept it with" in unwitnessed.stderr
    assert "try again" not in unwitnessed.stderr


def test_a_proof_saved_before_a_witness_rotated_its_key_says_which_agreement_it_needs(tmp_path: Path) -> None:
    """QA: with the agreement in force and --earlier it failed as cosigned by no one; pk had cosigned it."""
    saved = saved_before_rotation()  # built offline: no node needed
    old, new = agreement_mod.load(saved.old_text), agreement_mod.load(saved.new_text)
    proof, old_file, new_file = tmp_path / "m.tlog-proof", tmp_path / "old.toml", tmp_path / "new.toml"
    proof.write_bytes(saved.bundle.format())
    old_file.write_text(saved.old_text, encoding="utf-8")
    new_file.write_text(saved.new_text, encoding="utf-8")
    refused = verify(proof, new_file, "--earlier", str(old_file))
    assert_error(
        refused,
        f"VerificationError: pk cosigned the checkpoint of ir.detente/log at size 3 with its key pinned by earlier "
        f"agreement {old.id} {old.hash[:12]}…, not by agreement {new.id} {new.hash[:12]}…: a checkpoint is checked "
        "with the keys of one agreement, so a proof saved before a key rotation verifies with the agreement of its "
        f"time as --agreement ({old.hash[:12]}…)",
    )
    verified = lines(verify(proof, old_file))
    assert verified[-1] == "inclusion proof verifies" and "cosigned by  pk (pk.detente/log) at " in verified[-2]
    # Accepted unwitnessed, it verifies with the warning, as before.
    accepted = lines(verify(proof, new_file, "--earlier", str(old_file), "--allow-unwitnessed"))
    assert "not cosigned by pk" in accepted and accepted[-1] == "inclusion proof verifies"
    # A checkpoint no one cosigned under any agreement given gets the advice it always had.
    entry = verify_bundle(saved.bundle, saved.envelope, new, earlier=(old,))
    assert log_cli._earlier_cosigners(saved.bundle, entry, new, []) == ""
    assert log_cli._unwitnessed(entry, live=True) == (
        "no other party cosigned the checkpoint of ir.detente/log at size 3: it rests on ir's word alone (a checkpoint "
        "is usually cosigned within a second: try again, or accept it with --allow-unwitnessed)"
    )


def test_proof_out_refuses_a_file_that_exists_unless_forced(pair: Cluster, sent: Sent, tmp_path: Path) -> None:
    given = ("log", "proof", sent.id, "--log", "ir", *auth(pair["pk"], "pk-dgmo"))
    keep = tmp_path / "keep.txt"
    keep.write_text("precious\n", encoding="utf-8")
    refused = detente(*given, "--out", str(keep))
    assert_error(refused, f"Conflict: {keep} exists: name a new file, or give --force to replace it")
    assert refused.stdout == "" and keep.read_text(encoding="utf-8") == "precious\n"  # refused before fetching
    # A dangling link exists too: writing through it would create its target.
    link = tmp_path / "link.tlog-proof"
    link.symlink_to(tmp_path / "target")
    assert_error(detente(*given, "--out", str(link)), f"Conflict: {link} exists")
    assert not (tmp_path / "target").exists()
    forced = detente(*given, "--out", str(keep), "--force")
    assert lines(forced)[-1] == f"wrote        {keep}"
    proves(verify(keep, sent.agreement), sent.id, "ir", "pk", sent.ir_index)
    assert_usage_error(detente(*given, "--force"), "--force replaces the file of --out: give --out FILE")
    assert_usage_error(detente(*given, "--out", str(tmp_path)), "is a directory")


def test_a_file_made_after_the_check_is_not_overwritten(tmp_path: Path) -> None:
    # `log proof` checks before fetching, then creates the file exclusively: one made meanwhile stays.
    keep = tmp_path / "keep.txt"
    keep.write_text("precious\n", encoding="utf-8")
    with pytest.raises(Conflict, match="exists: name a new file, or give --force"):
        log_cli._write(keep, b"bundle", force=False)
    assert keep.read_text(encoding="utf-8") == "precious\n"
    log_cli._write(keep, b"bundle", force=True)
    assert keep.read_bytes() == b"bundle"
    with pytest.raises(BadRequest, match="cannot write"):
        log_cli._write(tmp_path / "missing" / "m.tlog-proof", b"bundle", force=False)


def test_a_bundle_from_the_api_carries_its_envelope(pair: Cluster, sent: Sent, tmp_path: Path) -> None:
    """A proof downloaded from the console or the API verifies alone; one without its envelope needs it given."""
    pk = pair["pk"]
    with pk.client("pk-dgmo") as client:
        served = client.get(f"/api/v1/messages/{sent.id}/proof", params={"log": "ir"}).content
    path = tmp_path / "served.tlog-proof"
    path.write_bytes(served)
    proves(verify(path, sent.agreement), sent.id, "ir", "pk", sent.ir_index)
    path.write_bytes(b"".join(line for line in served.splitlines(keepends=True) if not line.startswith(b"extra ")))
    assert_error(verify(path, sent.agreement), "carries no envelope (no extra line): give the envelope with --envelope")
    message = tmp_path / "message.json"
    message.write_text(detente("message", sent.id, *auth(pk, "pk-dgmo")).stdout, encoding="utf-8")
    proves(verify(path, sent.agreement, "--envelope", str(message)), sent.id, "ir", "pk", sent.ir_index)
    message.write_text(json.dumps({"envelope": {"v": 1}}), encoding="utf-8")
    assert_error(verify(path, sent.agreement, "--envelope", str(message)), "holds no envelope: envelope lacks member")


def test_verify_proof_refuses_what_is_no_bundle(sent: Sent, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\xff" * 10)
    assert_error(verify(garbage, sent.agreement), f"MalformedError: {garbage} is not a tlog-proof bundle")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1_000_001)
    assert_error(verify(big, sent.agreement), "is larger than 1000000 bytes")
    assert_usage_error(verify(tmp_path / "missing", sent.agreement), "does not exist")
    assert_usage_error(verify(garbage, sent.agreement, "--log", "xx"), "'xx' is not a party of this agreement")


def test_verify_proof_takes_earlier_agreements(sent: Sent, saved: Path, tmp_path: Path) -> None:
    new = amended(sent.agreement, tmp_path)
    refused = verify(saved, new)
    assert_error(refused, "is sealed under agreement")
    assert "give that agreement with --earlier" in refused.stderr and refused.stdout == ""
    proves_earlier(verify(saved, new, "--earlier", str(sent.agreement)), sent, new, "ir", sent.ir_index)
    assert_usage_error(verify(saved, new, "--earlier", str(new)), "is an agreement given already")
    # The real agreement in force and the amended one as earlier: the envelope names the one in force.
    out = lines(verify(saved, sent.agreement, "--earlier", str(new)))
    assert out[1].startswith("earlier      pk-ir-2025 ") and out[2].endswith("signature verifies (pk's pinned key)")
