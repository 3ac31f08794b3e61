"""Upgrading a node's database that an earlier release wrote: nothing lost, nothing reported falsely.

And a node upgraded before its peer: what the peer last said it accepts outlasts a restart.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from sqlalchemy import Connection, Engine, func, insert, select, update

from detente.core import agreement as agreement_mod
from detente.core import wire
from detente.core.envelope import Envelope, seal
from detente.core.keys import Signer
from detente.core.precedence import format_time
from detente.core.search import parse, words_of
from detente.node import workflow
from detente.node.config import load_config
from detente.node.rebuild import differences, log_envelopes
from detente.node.workflow_views import listing
from detente.store import links as links_db
from detente.store import messages
from detente.store import workflow as store
from detente.store.db import alembic_config, migrate
from detente.store.tables import envelopes, links
from support import Cluster, NodeProc, envelope_row, wait_for
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


def test_links_stored_before_0011_are_of_peers_never_heard_from(any_engine: Engine) -> None:
    """Migration 0011: what a peer said it accepts was never kept before; its link gets NULL."""
    config = alembic_config(any_engine)
    with any_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        conn.execute(insert(links).values(peer="pk", state="UP", since=at(0), failures=0))  # as 0010 left it
    announced: list[tuple[str, str]] = []
    migrate(any_engine, announce=lambda *revisions: announced.append(revisions))
    with any_engine.connect() as conn:
        row = links_db.get_link(conn, "pk")
    assert row is not None and row["state"] == "UP" and row["accepts"] is None
    # The upgrade was said before it ran (a node upgrading a large log is not silent for minutes); once.
    assert len(announced) == 1 and announced[0][0] == "0010" and announced[0][1] >= "0011", announced
    migrate(any_engine, announce=lambda *revisions: announced.append(revisions))
    assert len(announced) == 1


THIS_RELEASE = " ".join(wire.ACCEPTS)
TRANSLATION = {"lang": "fa", "text": "پیام آزمایشی"}


def _pk_says(cluster: Cluster, accepts: str | None) -> None:
    """Send ir an empty batch signed with pk's node key, naming what pk accepts (None: as the first release)."""
    config = load_config(cluster["pk"].data)
    signer, doc, ir = config.signer(), config.agreement(), cluster["ir"]
    path, body = "/federation/v1/envelopes", b'{"envelopes": []}'
    headers = wire.sign_request(signer, "pk", wire.ratify(doc, signer), doc, "POST", path, body, int(time.time()), "ir")
    if accepts is not None:
        headers[wire.ACCEPTS_HEADER] = accepts
    answer = httpx.post(ir.url + path, content=body, headers=headers, verify=ir.context, timeout=30)
    assert answer.status_code == 200, answer.text


def _kept_at(node: NodeProc, peer: str) -> str | None:
    """What `node`'s database keeps of what `peer` accepts (None: never heard from)."""
    engine = node.engine()
    try:
        with engine.connect() as conn:
            row = links_db.get_link(conn, peer)
        return None if row is None else row["accepts"]
    finally:
        engine.dispose()


def _translations_at(node: NodeProc) -> int:
    engine = node.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(envelopes.c.type == "translation")).scalar() or 0)
    finally:
        engine.dispose()


def test_a_peer_of_an_earlier_release_is_known_as_one_after_a_restart_while_it_is_down(fresh_pair: Cluster) -> None:
    """Upgrade QA: ir, restarted while pk (of an earlier release) was unreachable, forgot what pk accepts,
    took pk to run this release and let a translation be queued that pk refuses when the link comes
    back: a refused envelope holds its channel, FLASH included, until pk upgrades."""
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    fresh_pair.start()
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text", "body": {}}
    message = pk.created("pk-dgmo", "/api/v1/messages", {**request, "body": {"text": "Mortar fire near PANJGUR"}})
    wait_for(lambda: ir.message("ir-dgmo", message["id"], missing_ok=True) != {}, what="the message at ir")
    wait_for(lambda: _kept_at(ir, "pk") == THIS_RELEASE, what="ir to keep what pk's link tests say")
    pk.stop()

    def earlier() -> bool:  # pk's last word before its outage, as the first release: nothing named
        _pk_says(fresh_pair, None)
        return _kept_at(ir, "pk") == ""

    wait_for(earlier, interval=0.2, what="ir to keep that pk accepts nothing")
    ir.stop()
    ir.start()  # pk is still down: nothing heard from it since
    with ir.client("ir-translator1") as client:
        refused = client.post(f"/api/v1/messages/{message['id']}/translations", json=TRANSLATION)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "pk's node runs an earlier release, which cannot take translations or their reviews: "
        "nothing was sent; translate once pk has upgraded"
    )
    assert ir.message("ir-translator1", message["id"]).get("translations", []) == [] and _translations_at(ir) == 0
    _pk_says(fresh_pair, THIS_RELEASE)  # pk upgraded: its next request says so
    sent = ir.created("ir-translator1", f"/api/v1/messages/{message['id']}/translations", TRANSLATION)
    assert _translations_at(ir) == 1 and sent["id"]
    wait_for(lambda: _kept_at(ir, "pk") == THIS_RELEASE, what="ir to keep that pk upgraded")
