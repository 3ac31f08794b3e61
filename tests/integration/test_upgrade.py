"""Upgrading a node's database that an earlier release wrote: nothing lost, nothing reported falsely."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Connection, Engine, select, update

from detente.core import agreement as agreement_mod
from detente.core.envelope import Envelope, seal
from detente.core.keys import Signer
from detente.core.precedence import format_time
from detente.core.search import parse, words_of
from detente.node import workflow
from detente.node.rebuild import differences, log_envelopes
from detente.node.workflow_views import listing
from detente.store import messages
from detente.store import workflow as store
from detente.store.db import alembic_config, migrate
from detente.store.tables import envelopes
from support import envelope_row
from workflow_support import store_received

ROOT = Path(__file__).resolve().parents[2]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
SIGNERS = {party: Signer.generate(f"{party}.detente/log") for party in ("pk", "ir")}
T0 = datetime(2024, 1, 18, 0, 0, tzinfo=UTC)
_seq = itertools.count(1)


def at(hours: float) -> str:
    return format_time(T0 + timedelta(hours=hours))


def env(kind: str, sender: str, recipient: str, body: dict[str, Any], hours: float, refs: list[str]) -> Envelope:
    fields = {
        "v": 1, "id": str(uuid.uuid4()), "agreement": "0" * 64, "channel": "fs", "from": sender, "to": recipient,
        "seq": next(_seq), "author": "duty", "precedence": "PRIORITY", "type": kind, "lang": "en", "refs": refs,
        "case": None, "created": at(hours), "body": body,
    }  # fmt: skip
    return seal(fields, SIGNERS[sender.split(":")[0]])


def consultation(held_at: float | None) -> list[Envelope]:
    """A consultation scheduled at hour 10, held at `held_at` (None: not yet held)."""
    body = {"title": "Ministers", "agenda": ["Border"], "start": at(10), "venue": "Taftan"}
    propose = env("consultation.propose", "ir:fs", "pk:fs", body, 5, [])
    envs = [propose, env("consultation.agree", "pk:fs", "ir:fs", {}, 6, [propose.id])]
    if held_at is not None:
        envs.append(env("consultation.held", "ir:fs", "pk:fs", {"held_at": at(held_at)}, 11.5, [propose.id]))
    return envs


def receive(conn: Connection, envelope: Envelope) -> None:
    store_received(conn, envelope)
    workflow.save(conn, workflow.plan(conn, AGREEMENT, envelope, strict=False))


def test_consultations_stored_before_held_before_start_gain_it(any_engine: Engine) -> None:
    """QA: after an upgrade from the release of 2026-11-23, `detente rebuild` reported every consultation
    as differing from the log (`state.held_before_start is null, the log says false`), and the API left
    the member out, until an envelope touched the consultation again."""
    early, late, pending = consultation(9), consultation(11), consultation(None)
    with any_engine.begin() as conn:
        for envelope in early + late + pending:
            receive(conn, envelope)
        # As the earlier release stored them: the state without the member.
        for target, text in conn.execute(select(store.consultations.c.id, store.consultations.c.state)).all():
            state = json.loads(text)
            del state["held_before_start"]
            conn.execute(update(store.consultations).where(store.consultations.c.id == target)
                         .values(state=json.dumps(state, ensure_ascii=False, sort_keys=True)))  # fmt: skip
    config = alembic_config(any_engine)
    with any_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    migrate(any_engine)
    with any_engine.begin() as conn:
        assert differences(conn, workflow.derive(log_envelopes(conn), AGREEMENT)) == []
        shown = {c["id"]: c["held_before_start"] for c in listing(conn, "consultation", None)["consultations"]}
    assert shown == {early[0].id: True, late[0].id: False, pending[0].id: False}


def test_envelopes_stored_before_words_are_found_after_the_upgrade(any_engine: Engine) -> None:
    """Migration 0010: the words of every envelope an earlier release stored are filled from its `raw`,
    so that a search finds the messages received before the upgrade, by their translations too."""
    text = env("hotline.text", "ir:fs", "pk:fs", {"text": "Mortar fire near PANJGUR"}, 1, [])
    code = env("code", "ir:fs", "pk:fs", {"code": "NO-HOSTILE-INTENT", "params": {"place": "Saravan"}}, 2, [])
    translated = env("translation", "pk:fs", "ir:fs", {"lang": "ur", "text": "پنجگور کے قریب گولہ باری"}, 3, [text.id])
    with any_engine.begin() as conn:
        for envelope in (text, code, translated):
            store_received(conn, envelope)  # as an earlier release stored them: no words
        damaged = envelope_row(99, log_index=99, raw=b"{not json")
        messages.insert_envelope(conn, **damaged)
    config = alembic_config(any_engine)
    with any_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    migrate(any_engine)
    with any_engine.connect() as conn:
        stored = {str(i): w for i, w in conn.execute(select(envelopes.c.id, envelopes.c.words))}
        assert stored == {e.id: words_of(e.data) for e in (text, code, translated)} | {damaged["id"]: ""}
        assert stored[code.id] == "no-hostile-intent\nsaravan\n"

        def found(q: str) -> list[str]:
            page = messages.list_envelopes(conn, offices=None, search=parse(q=q), exclude_types=["translation"])
            return [str(r["id"]) for r in page.rows]

        assert found("panjgur fire") == [text.id]
        assert found("گولہ باری") == [text.id]  # by its Urdu translation
        assert found("SARAVAN") == [code.id]
