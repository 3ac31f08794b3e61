"""Tests for `detente.core.proof_bundle`: a tlog-proof bundle of one envelope, checked with the agreement's keys."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from functools import cache

import pytest

from detente.core import agreement as agreement_mod
from detente.core import merkle, merkle_memory
from detente.core.agreement import Agreement
from detente.core.checkpoint import Checkpoint, ProofBundle, format_proof_bundle, parse_proof_bundle, sign_checkpoint
from detente.core.envelope import Envelope
from detente.core.keys import Signer
from detente.core.note import add_signatures, cosign
from detente.core.proof_bundle import (
    ProvenEntry,
    cosigned_under,
    envelope_in,
    log_party_of,
    verify_bundle,
    with_envelope,
)
from detente.errors import Error, Invalid, MalformedError, VerificationError
from record_support import agreement_and_keys, envelope, saved_before_rotation

SIZE = 7
TS = 1_800_000_000


@dataclass(frozen=True)
class Log:
    """pk's log of `SIZE` envelopes, both ways, with its agreement and the parties' keys."""

    doc: Agreement
    signers: dict[str, Signer]
    entries: tuple[Envelope, ...]
    root: bytes


@cache
def pk_log() -> Log:
    doc, signers = agreement_and_keys()
    entries = tuple(
        envelope(doc, signers["pk"], i + 1, f"message {i}")
        if i % 2 == 0
        else envelope(doc, signers["ir"], i + 1, f"reply {i}", **{"from": "ir:dgmo", "to": "pk:dgmo"})
        for i in range(SIZE)
    )
    return Log(doc, signers, entries, merkle_memory.MemoryHashStore(e.raw for e in entries).root())


def checkpoint_note(log: Log, *, cosigned: bool = True, origin: str = "pk.detente/log") -> bytes:
    signer = log.signers["pk"] if origin == "pk.detente/log" else Signer.generate(origin)
    signed = sign_checkpoint(Checkpoint(origin, SIZE, log.root), signer)
    if not cosigned:
        return signed.format()
    return add_signatures(signed, cosign(signed.text, log.signers["ir"], TS)).format()


def bundle(log: Log, index: int, note: bytes | None = None) -> ProofBundle:
    store = merkle_memory.MemoryHashStore(e.raw for e in log.entries)
    proof = tuple(merkle.prove_inclusion(index, SIZE, store))
    return ProofBundle(index, proof, checkpoint_note(log) if note is None else note)


def fails(log: Log, data: ProofBundle | bytes, entry: Envelope, says: str, **kwargs: str) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_bundle(data, entry, log.doc, **kwargs)
    assert says in caught.value.detail, caught.value.detail


# --- what verifies ------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(SIZE))
def test_every_entry_verifies_with_what_it_proves(index: int) -> None:
    log = pk_log()
    entry = log.entries[index]
    proven = verify_bundle(bundle(log, index), entry, log.doc)
    assert proven == ProvenEntry(entry, "pk", "pk.detente/log", index, SIZE, log.root, {"ir": TS}, (), entry.sender)
    assert proven.witnessed
    assert verify_bundle(bundle(log, index).format(), entry, log.doc, log_party="pk") == proven


def test_a_checkpoint_no_other_party_cosigned_verifies_as_unwitnessed() -> None:
    log = pk_log()
    proven = verify_bundle(bundle(log, 2, checkpoint_note(log, cosigned=False)), log.entries[2], log.doc)
    assert not proven.witnessed and proven.cosigned_by == {} and proven.not_cosigned_by == ("ir",)


def with_last(log: Log, last: Envelope) -> tuple[Log, ProofBundle]:
    """pk's log with `last` as its last entry, and the bundle of that entry."""
    entries = (*log.entries[:-1], last)
    changed = replace(log, entries=entries, root=merkle_memory.MemoryHashStore(e.raw for e in entries).root())
    return changed, bundle(changed, SIZE - 1, checkpoint_note(changed))


def test_an_envelope_under_an_earlier_agreement_given_is_checked_with_its_keys() -> None:
    # A log across an amendment that rotated the keys: the old envelope, the new checkpoint (QA5 #11).
    log = pk_log()
    earlier, old_signers = agreement_and_keys()
    old = envelope(earlier, old_signers["pk"], 1, "before the amendment")
    _, proof = with_last(log, old)
    proven = verify_bundle(proof, old, log.doc, earlier=(earlier,))
    assert proven.signed_by == "pk:dgmo" and proven.index == SIZE - 1 and proven.witnessed
    # Another earlier agreement given as well changes nothing.
    assert verify_bundle(proof, old, log.doc, earlier=(agreement_and_keys()[0], earlier)) == proven


def test_an_envelope_under_an_agreement_not_given_is_not_a_verified_proof() -> None:
    log = pk_log()
    earlier, old_signers = agreement_and_keys()
    old = envelope(earlier, old_signers["pk"], 1)
    changed, proof = with_last(log, old)
    says = (
        f"envelope {old.id} is sealed under agreement {earlier.hash[:12]}…, not given, so its signature cannot be "
        "checked: if the log spans an amendment, give that agreement with --earlier"
    )
    fails(changed, proof, old, says)
    with pytest.raises(VerificationError, match="is sealed under agreement"):
        verify_bundle(proof, old, log.doc, earlier=(agreement_and_keys()[0],))  # another earlier one
    unknown = envelope(log.doc, log.signers["pk"], 1, agreement="ab" * 32)
    changed, proof = with_last(log, unknown)
    fails(changed, proof, unknown, f"is sealed under agreement {'ab' * 6}…, not given")


def test_an_envelope_under_an_earlier_agreement_signed_with_the_new_key_is_refused() -> None:
    # Whoever holds only the new key cannot add to the earlier era: the key of the agreement named counts.
    log = pk_log()
    earlier, _ = agreement_and_keys()
    forged = envelope(earlier, log.signers["pk"], 1, "written after the rotation")
    _, proof = with_last(log, forged)
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_bundle(proof, forged, log.doc, earlier=(earlier,))
    # And an envelope naming the agreement in force, signed with an earlier key, is refused alike.
    earlier_signed = envelope(log.doc, agreement_and_keys()[1]["pk"], 1)
    _, proof = with_last(log, earlier_signed)
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_bundle(proof, earlier_signed, log.doc, earlier=(earlier,))


def test_a_witness_cosignature_by_a_key_an_earlier_agreement_pins_is_named_by_cosigned_under() -> None:
    # QA: a proof of ir's log saved before pk rotated its key; ir's key did not change, so the
    # checkpoint is checked under the agreement in force, where pk's cosignature of then is absent.
    saved = saved_before_rotation()
    old, new = agreement_mod.load(saved.old_text), agreement_mod.load(saved.new_text)
    unwitnessed = verify_bundle(saved.bundle, saved.envelope, new, earlier=(old,))
    assert not unwitnessed.witnessed and unwitnessed.not_cosigned_by == ("pk",)
    assert cosigned_under(saved.bundle, old) == ("pk",) and cosigned_under(saved.bundle, new) == ()
    # With the agreement of its time as the one given, it verifies, witnessed.
    assert verify_bundle(saved.bundle, saved.envelope, old).cosigned_by == {"pk": 1_800_000_000}
    # Another agreement's keys name no one; nor does a bundle whose note does not parse.
    assert cosigned_under(saved.bundle, agreement_and_keys()[0]) == ()
    assert cosigned_under(replace(saved.bundle, note_bytes=b"no note"), old) == ()


def test_an_envelope_from_no_party_of_its_agreement_is_refused() -> None:
    log = pk_log()
    stray = envelope(log.doc, log.signers["ir"], 1, **{"from": "xx:dgmo", "to": "pk:dgmo"})
    changed, proof = with_last(log, stray)
    fails(changed, proof, stray, f"envelope {stray.id} is sent by xx:dgmo, of no party of {log.doc.id}")


def test_log_party_of_names_the_party_whose_log_an_origin_is() -> None:
    doc = pk_log().doc
    assert log_party_of("ir.detente/log", doc).id == "ir"
    with pytest.raises(VerificationError, match="'example.com/log' is the log of no party of agreement"):
        log_party_of("example.com/log", doc)


# --- what does not --------------------------------------------------------------------------------


def test_the_log_asked_for_must_be_the_bundles() -> None:
    log = pk_log()
    fails(
        log,
        bundle(log, 0),
        log.entries[0],
        "proves inclusion in pk's log (pk.detente/log), not in ir's",
        log_party="ir",
    )
    with pytest.raises(Invalid, match="unknown party 'xx'"):
        verify_bundle(bundle(log, 0), log.entries[0], log.doc, log_party="xx")


def test_another_agreements_keys_do_not_verify_the_checkpoint() -> None:
    log = pk_log()
    other, _ = agreement_and_keys()  # the same parties and names, other keys
    says = f"is not signed by the key agreement {other.id} pins for pk"
    fails(replace(log, doc=other), bundle(log, 0), log.entries[0], says)


def test_a_checkpoint_signed_by_an_unpinned_key_of_the_same_name_does_not_verify() -> None:
    log = pk_log()
    impostor = replace(log, signers={**log.signers, "pk": Signer.generate("pk.detente/log")})
    note = checkpoint_note(impostor)
    fails(log, bundle(log, 0, note), log.entries[0], "checkpoint of pk.detente/log at size 7 is not signed by the key")


def test_a_checkpoint_of_no_partys_log_does_not_verify() -> None:
    log = pk_log()
    note = checkpoint_note(log, cosigned=False, origin="xx.detente/log")
    fails(log, bundle(log, 0, note), log.entries[0], "'xx.detente/log' is the log of no party")


def test_a_changed_root_breaks_the_log_signature() -> None:
    log = pk_log()
    good = checkpoint_note(log).decode()
    root = base64.b64encode(log.root).decode()
    other = base64.b64encode(bytes(32)).decode()
    fails(log, bundle(log, 0, good.replace(root, other).encode()), log.entries[0], "is not signed by the key")


def test_a_cosignature_that_does_not_verify_is_named() -> None:
    log = pk_log()
    signed = sign_checkpoint(Checkpoint("pk.detente/log", SIZE, log.root), log.signers["pk"])
    wrong = cosign(signed.text.replace("\n7\n", "\n8\n"), log.signers["ir"], TS)  # ir's key, another text
    note = add_signatures(signed, wrong).format()
    fails(
        log, bundle(log, 0, note), log.entries[0], "the cosignature of ir (ir.detente/log) on the checkpoint does not"
    )


def test_an_envelope_neither_sent_nor_received_by_the_log_party_is_refused() -> None:
    log = pk_log()
    stray = envelope(log.doc, log.signers["ir"], 1, **{"from": "ir:dgmo", "to": "ir:fs"})
    fails(log, bundle(log, 0), stray, f"envelope {stray.id} goes from ir:dgmo to ir:fs: it has no place in pk's log")


@pytest.mark.parametrize("index", range(SIZE))
def test_another_entrys_envelope_does_not_verify(index: int) -> None:
    log = pk_log()
    other = log.entries[(index + 1) % SIZE]
    fails(
        log, bundle(log, index), other,
        f"the inclusion proof does not verify: envelope {other.id} is not entry {index} of pk.detente/log at size 7",
    )  # fmt: skip


def test_a_changed_proof_or_index_does_not_verify() -> None:
    log = pk_log()
    good = bundle(log, 3)
    for i in range(len(good.proof)):
        changed = list(good.proof)
        changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
        fails(log, replace(good, proof=tuple(changed)), log.entries[3], "the inclusion proof does not verify")
    fails(log, replace(good, proof=good.proof[:-1]), log.entries[3], "the inclusion proof does not verify")
    fails(log, replace(good, proof=(*good.proof, bytes(32))), log.entries[3], "the inclusion proof does not verify")
    fails(log, replace(good, index=2), log.entries[3], "is not entry 2 of")
    fails(log, replace(good, index=SIZE), log.entries[3], "out of range")


def test_an_envelope_in_the_log_with_a_forged_signature_is_refused() -> None:
    log = pk_log()
    forged = envelope(log.doc, log.signers["ir"], 1)  # "from pk:dgmo", signed by ir's key
    entries = (*log.entries[:-1], forged)
    changed = replace(log, entries=entries, root=merkle_memory.MemoryHashStore(e.raw for e in entries).root())
    fails(changed, bundle(changed, SIZE - 1, checkpoint_note(changed)), forged, "signature does not verify")


def test_every_one_byte_change_fails_or_only_drops_a_cosignature() -> None:
    log = pk_log()
    data = bundle(log, 4).format()
    for i in range(len(data)):
        changed = data[:i] + bytes([(data[i] + 1) % 256]) + data[i + 1 :]
        try:
            proven = verify_bundle(changed, log.entries[4], log.doc)
        except Error:
            continue
        # Only an unknown signature line is ignored (C2SP signed-note): what is proven is unchanged.
        assert not proven.witnessed and (proven.index, proven.root) == (4, log.root), i


def test_malformed_bytes_are_malformed() -> None:
    log = pk_log()
    with pytest.raises(MalformedError, match="malformed proof bundle"):
        verify_bundle(b"c2sp.org/tlog-proof@v1\nindex 0\n", log.entries[0], log.doc)


# --- the envelope carried in `extra` ----------------------------------------------------------------


def test_with_envelope_carries_the_envelope_and_still_verifies() -> None:
    log = pk_log()
    data = with_envelope(bundle(log, 5), log.entries[5])
    parsed = parse_proof_bundle(data)
    assert parsed.extra == log.entries[5].raw and envelope_in(parsed) == log.entries[5]
    assert verify_bundle(data, envelope_in(parsed), log.doc).index == 5


def test_a_changed_envelope_in_extra_does_not_verify() -> None:
    log = pk_log()
    good = parse_proof_bundle(with_envelope(bundle(log, 5), log.entries[5]))
    assert good.extra is not None
    changed = replace(good, extra=good.extra.replace(b"reply 5", b"reply 6"))
    fails(log, changed, envelope_in(changed), "the inclusion proof does not verify")


def test_extra_that_is_missing_or_no_envelope_is_refused() -> None:
    log = pk_log()
    with pytest.raises(MalformedError, match="carries no envelope"):
        envelope_in(bundle(log, 0))
    for extra in (b"not json", b'{"v": 1}', b"[]"):
        data = format_proof_bundle(0, bundle(log, 0).proof, checkpoint_note(log), extra)
        with pytest.raises(Error):
            envelope_in(parse_proof_bundle(data))
