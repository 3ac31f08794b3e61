"""Checking a c2sp.org/tlog-proof@v1 bundle of one envelope against the agreement's pinned keys.

A bundle (`core.checkpoint.parse_proof_bundle`) says that an entry sits at `index` in a log's
tree, by an inclusion proof and the checkpoint of that tree, signed by the log and cosigned by
witnesses. `verify_bundle` checks it for one envelope, with nothing from the node that served it:

1. the checkpoint's origin is the log of a party of the agreement (`<party>.detente/log`), the
   party asked for if one was;
2. the checkpoint is signed by the key the agreement pins for that party, or, for a checkpoint
   older than an amendment that rotated it (a proof saved before), the key an earlier agreement
   given pins, as `detente audit --earlier` accepts it;
3. each other party's cosignature on it, if present, verifies with that party's key pinned by the
   same agreement, as a cosignature/v1 key (type 0x04); which parties cosigned is returned, and
   whether that is enough is the caller's choice;
4. the envelope is sent or received by the log's party (nothing else is ever in its log);
5. the inclusion proof leads from `SHA-256(0x00 ‖ envelope bytes)` at `index` to the checkpoint's
   root;
6. the envelope names the agreement given or one of the earlier agreements given (a log spans
   the amendments of its agreement: each envelope names the hash it was sealed under), and its
   signature verifies with the key that agreement pins for its sender. An envelope under an
   agreement not given cannot be checked, so the bundle does not verify.

The bundle's `extra` line is unauthenticated, application-defined data: a bundle written by
`detente log proof --out` carries the envelope's canonical bytes there, so that one file can be
checked offline (`envelope_in`). It needs no trust: the inclusion proof binds the envelope.

Every failure raises `VerificationError` with one line naming what failed, or `MalformedError`
for a bundle or an envelope that does not parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detente.core import envelope as envelope_mod
from detente.core import keys, merkle, merkle_verify
from detente.core.agreement import Agreement, Party
from detente.core.checkpoint import ProofBundle, open_checkpoint, parse_checkpoint, parse_proof_bundle
from detente.core.envelope import Envelope
from detente.core.note import Note, parse_note, signature_for
from detente.errors import Error, MalformedError, VerificationError

__all__ = ["ProvenEntry", "cosigned_under", "envelope_in", "log_party_of", "verify_bundle", "with_envelope"]


@dataclass(frozen=True)
class ProvenEntry:
    """What a verified bundle proves: the envelope is entry `index` of `origin`'s tree of `size`.

    `cosigned_by` maps each other party whose cosignature verified to its cosignature time (Unix
    seconds); `not_cosigned_by` lists the other parties whose cosignature is absent. `signed_by` is
    the sender office whose key, as the agreement the envelope names pins it, verified the envelope.
    """

    envelope: Envelope
    log_party: str
    origin: str
    index: int
    size: int
    root: bytes
    cosigned_by: dict[str, int]
    not_cosigned_by: tuple[str, ...]
    signed_by: str

    @property
    def witnessed(self) -> bool:
        """Whether at least one other party cosigned the checkpoint (else only the log's owner vouches)."""
        return bool(self.cosigned_by)


def log_party_of(origin: str, doc: Agreement) -> Party:
    """Return the party whose log is `origin`. Raises `VerificationError` if it is no party's."""
    for party in doc.parties.values():
        if party.log_origin == origin:
            return party
    raise VerificationError(f"the checkpoint's origin {origin!r} is the log of no party of agreement {doc.id}")


def envelope_in(bundle: ProofBundle) -> Envelope:
    """Return the envelope a bundle carries in its `extra` line (unauthenticated until verified).

    Raises `MalformedError` if the bundle has no `extra` line, or what `envelope.parse` raises
    (`MalformedError`, `Invalid`, `TooLarge`) for one that is not an envelope.
    """
    if bundle.extra is None:
        raise MalformedError("the proof bundle carries no envelope (no extra line)")
    return envelope_mod.parse(bundle.extra)


def with_envelope(bundle: ProofBundle, envelope: Envelope) -> bytes:
    """Return the bundle's bytes with the envelope's canonical bytes as its `extra` line.

    Raises `MalformedError` like `checkpoint.format_proof_bundle`.
    """
    return ProofBundle(bundle.index, bundle.proof, bundle.note_bytes, envelope.raw).format()


def verify_bundle(
    bundle: ProofBundle | bytes,
    envelope: Envelope,
    doc: Agreement,
    *,
    log_party: str | None = None,
    earlier: Sequence[Agreement] = (),
) -> ProvenEntry:
    """Verify that `bundle` proves `envelope` is in the log of a party of `doc` (of `log_party` if given).

    `doc` is the agreement in force; `earlier`, agreements it amended, under one of which the
    envelope may have been sealed. Checks, in order, what the module docstring lists. Raises
    `MalformedError` for bytes that are not a tlog-proof bundle, `Invalid` for a `log_party` the
    agreement does not name, and `VerificationError` naming the first check that fails (an
    envelope naming an agreement not given is one).
    """
    parsed = parse_proof_bundle(bundle) if isinstance(bundle, bytes) else bundle
    note = parse_note(parsed.note_bytes)
    cp = parse_checkpoint(note.text)  # parse_proof_bundle checked both
    party = log_party_of(cp.origin, doc)
    if log_party is not None and doc.party(log_party).id != party.id:
        raise VerificationError(f"the bundle proves inclusion in {party.id}'s log ({cp.origin}), not in {log_party}'s")
    # The checkpoint may be older than an amendment that rotated the keys (a proof saved before it):
    # it verifies under the agreement whose key signed it, and its cosignatures under that one too.
    era, log_key = _signing_era(note, party.id, (doc, *earlier))
    if era is None or log_key is None:
        raise VerificationError(
            f"the checkpoint of {cp.origin} at size {cp.size} is not signed by the key agreement {doc.id} pins for "
            f"{party.id}" + (" nor by one an earlier agreement given pins" if earlier else "")
        )
    cosigned: dict[str, int] = {}
    absent: list[str] = []
    for peer in era.peers(party.id):
        witness = _pinned(peer).with_alg(keys.ALG_COSIGNATURE_V1)
        if signature_for(note, witness) is None:
            absent.append(peer.id)
            continue
        try:
            _, _, matched = open_checkpoint(note, log_key, [witness])
        except (VerificationError, MalformedError):
            matched = {}
        if witness.name not in matched:
            raise VerificationError(f"the cosignature of {peer.id} ({witness.name}) on the checkpoint does not verify")
        cosigned[peer.id] = matched[witness.name]
    if party.id not in (envelope.sender_party, envelope.recipient_party):
        raise VerificationError(
            f"envelope {envelope.id} goes from {envelope.sender} to {envelope.recipient}: it has no place in "
            f"{party.id}'s log"
        )
    try:
        merkle_verify.verify_inclusion(parsed.index, cp.size, merkle.leaf_hash(envelope.raw), parsed.proof, cp.root)
    except VerificationError as exc:
        raise VerificationError(
            f"the inclusion proof does not verify: envelope {envelope.id} is not entry {parsed.index} of "
            f"{cp.origin} at size {cp.size} ({exc.detail})"
        ) from None
    named = envelope.data["agreement"]
    sealed = next((a for a in (doc, *earlier) if a.hash == named), None)
    if sealed is None:
        raise VerificationError(
            f"envelope {envelope.id} is sealed under agreement {named[:12]}…, not given, so its signature cannot be "
            "checked: if the log spans an amendment, give that agreement with --earlier"
        )
    sender = sealed.parties.get(envelope.sender_party)
    if sender is None:
        raise VerificationError(f"envelope {envelope.id} is sent by {envelope.sender}, of no party of {sealed.id}")
    envelope.verify(_pinned(sender))
    return ProvenEntry(
        envelope, party.id, cp.origin, parsed.index, cp.size, cp.root, cosigned, tuple(absent), envelope.sender
    )


def cosigned_under(bundle: ProofBundle, doc: Agreement) -> tuple[str, ...]:
    """Return the other parties whose cosignature on the bundle's checkpoint verifies with a key `doc` pins.

    `verify_bundle` checks the cosignatures with the keys of the agreement whose key for the log's
    owner signed the checkpoint, the first given: when only a witness rotated its key, that is the
    agreement in force, and the witness's cosignature of before counts as absent. This says which
    parties did cosign under `doc` (an earlier agreement given), so that the caller can name the
    agreement a saved proof needs. Empty if `doc` does not pin the key that signed the checkpoint,
    or pins no usable key. Raises nothing.
    """
    try:
        note = parse_note(bundle.note_bytes)
        party = log_party_of(parse_checkpoint(note.text).origin, doc)
        witnesses = {peer.id: _pinned(peer).with_alg(keys.ALG_COSIGNATURE_V1) for peer in doc.peers(party.id)}
        _, _, matched = open_checkpoint(note, _pinned(party), list(witnesses.values()))
    except (Error, ValueError):
        return ()
    return tuple(peer for peer, witness in witnesses.items() if witness.name in matched)


def _signing_era(
    note: Note, party_id: str, agreements: Sequence[Agreement]
) -> tuple[Agreement | None, keys.Verifier | None]:
    """Return the first of `agreements` whose key for `party_id` signed the checkpoint `note`, and that key.

    (None, None) if none did. Raises `VerificationError` if the first agreement pins no usable key.
    """
    for n, candidate in enumerate(agreements):
        party = candidate.parties.get(party_id)
        if party is None:
            continue
        try:
            key = _pinned(party)
        except VerificationError:
            if n == 0:
                raise
            continue
        try:
            open_checkpoint(note, key)
        except VerificationError:
            continue
        return candidate, key
    return None, None


def _pinned(party: Party) -> keys.Verifier:
    """Return the party's pinned key. Raises `VerificationError` if the agreement pins none (or a bad one)."""
    try:
        return party.verifier()
    except Error as exc:
        raise VerificationError(f"no usable key for {party.id} in the agreement: {exc.detail}") from None
