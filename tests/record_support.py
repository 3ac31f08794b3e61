"""Test support for the record: a two-party agreement with fresh keys, envelopes, and node contexts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detente.core import agreement as agreement_mod
from detente.core import envelope as envelope_mod
from detente.core import merkle, merkle_memory
from detente.core.agreement import Agreement
from detente.core.checkpoint import Checkpoint, ProofBundle, sign_checkpoint
from detente.core.envelope import Envelope, uuid7
from detente.core.keys import Signer
from detente.core.note import add_signatures, cosign
from detente.node.config import NodeConfig
from detente.node.context import NodeContext
from detente.node.demo import fill_agreement
from detente.node.events import EventBus
from detente.store.db import make_engine, migrate, sqlite_url
from detente.store.writer import Writer
from support import AGREEMENT

PARTIES = ("pk", "ir")


def agreement_and_keys() -> tuple[Agreement, dict[str, Signer]]:
    """The shipped pk-ir agreement, completed with freshly generated node keys."""
    text, signers = agreement_text_and_keys()
    return agreement_mod.load(text), signers


def agreement_text_and_keys() -> tuple[str, dict[str, Signer]]:
    """The TOML text of the shipped pk-ir agreement, completed with freshly generated node keys."""
    signers = {p: Signer.generate(f"{p}.detente/log") for p in PARTIES}
    values = {
        p: {"url": f"https://127.0.0.1:{8440 + i}", "vkey": s.verifier.vkey(), "tls_fingerprint": "0" * 64}
        for i, (p, s) in enumerate(signers.items())
    }
    return fill_agreement(AGREEMENT.read_text(encoding="utf-8"), values, None), signers


def envelope(doc: Agreement, signer: Signer, seq: int, text: str = "hello", **fields: Any) -> Envelope:
    """A signed hotline.text envelope from pk:dgmo to ir:dgmo (or as `fields` say)."""
    data: dict[str, Any] = {
        "v": 1, "id": uuid7(), "agreement": doc.hash, "channel": "dgmo", "from": "pk:dgmo", "to": "ir:dgmo",
        "seq": seq, "author": "tester", "precedence": "ROUTINE", "type": "hotline.text", "lang": "en",
        "refs": [], "case": None, "created": "2026-01-16T13:05:00.000Z", "body": {"text": text},
    }  # fmt: skip
    data.update(fields)
    return envelope_mod.seal(data, signer)


def node_context(tmp: Path, party: str, doc: Agreement, signers: dict[str, Signer]) -> NodeContext:
    """A node context over a fresh SQLite database in `tmp` (the writer is started; stop it after)."""
    db = sqlite_url(tmp / f"{party}.db")
    engine = make_engine(db)
    migrate(engine)
    writer = Writer(engine)
    writer.start()
    config = NodeConfig(tmp, party, "127.0.0.1", 8443, db)
    return NodeContext(config, signers[party], doc, engine, writer, EventBus())


@dataclass(frozen=True)
class SavedBeforeRotation:
    """A proof in ir's log, saved before pk rotated its key: pk cosigned its checkpoint with its old key.

    `old_text` is the agreement of that time, `new_text` the amendment pinning pk's new key (ir's
    key is the same in both, so ir's signature on the checkpoint verifies under either).
    """

    old_text: str
    new_text: str
    envelope: Envelope
    bundle: ProofBundle


def saved_before_rotation() -> SavedBeforeRotation:
    """Make ir's log of three envelopes pk sent under the old agreement, and the bundle of the second."""
    old_text, signers = agreement_text_and_keys()
    old = agreement_mod.load(old_text)
    new_text = old_text.replace(signers["pk"].verifier.vkey(), Signer.generate("pk.detente/log").verifier.vkey())
    entries = [envelope(old, signers["pk"], seq, f"message {seq}") for seq in (1, 2, 3)]
    store = merkle_memory.MemoryHashStore(e.raw for e in entries)
    signed = sign_checkpoint(Checkpoint("ir.detente/log", len(entries), store.root()), signers["ir"])
    note = add_signatures(signed, cosign(signed.text, signers["pk"], 1_800_000_000)).format()
    bundle = ProofBundle(1, tuple(merkle.prove_inclusion(1, len(entries), store)), note, entries[1].raw)
    return SavedBeforeRotation(old_text, new_text, entries[1], bundle)
