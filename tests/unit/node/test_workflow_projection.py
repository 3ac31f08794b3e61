"""The projection tables (`node.workflow`) equal `fold` of the same envelopes, whatever the arrival order."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, delete

from detente.core import agreement as agreement_mod
from detente.core.envelope import Envelope, seal
from detente.core.keys import Signer
from detente.core.precedence import format_time
from detente.core.workflow_json import state_from_json
from detente.core.workflows import fold, minutes_digest
from detente.errors import Invalid, InvalidTransition
from detente.node import workflow
from detente.node.rebuild import differences, log_envelopes, rebuild_connection
from detente.store import workflow as store
from detente.store.db import alembic_config, make_engine, migrate, sqlite_url
from detente.store.tables import envelopes, log, tree_hashes
from workflow_support import store_received

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
SIGNERS = {party: Signer.generate(f"{party}.detente/log") for party in ("pk", "ir")}
T0 = datetime(2024, 1, 18, 0, 0, tzinfo=UTC)
SHA = "ab" * 32
_seq = itertools.count(1)


def at(hours: float) -> str:
    return format_time(T0 + timedelta(hours=hours))


def env(kind: str, sender: str, recipient: str, body: dict[str, Any], hours: float, *, refs: list[str] | None = None,
        case: str | None = None) -> Envelope:  # fmt: skip
    channel = "liaison" if ":lo-" in sender else sender.split(":")[1]
    fields = {
        "v": 1, "id": str(uuid.uuid4()), "agreement": "0" * 64, "channel": channel, "from": sender, "to": recipient,
        "seq": next(_seq), "author": "duty", "precedence": "PRIORITY", "type": kind, "lang": "en",
        "refs": refs or [], "case": case, "created": at(hours), "body": body,
    }  # fmt: skip
    return seal(fields, SIGNERS[sender.split(":")[0]])


def scenario() -> list[Envelope]:
    """A case, an action whose consent crossed its withdrawal, and a consultation to co-signed minutes."""
    incident = env("incident.report", "pk:dgmo", "ir:dgmo", {
        "kind": "strike", "time": at(-1), "location": {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"},
        "description": "Missiles hit a house.", "assessment": "Deliberate.", "escalation": 3}, 0)  # fmt: skip
    contained = env("case.update", "ir:dgmo", "pk:dgmo", {"status": "contained", "escalation": 2}, 1, case=incident.id)
    prenotify = env("operation.prenotify", "pk:dgmo", "ir:dgmo", {
        "area": {"center": {"lat": 27.35, "lon": 62.33}, "radius_km": 15.0}, "window": {"start": at(30), "end": at(31)},
        "forces": "Drones", "target_group": "BLF", "objective": "Hideouts"}, 2, case=incident.id)  # fmt: skip
    withdraw = env("action.withdraw", "pk:dgmo", "ir:dgmo", {}, 3, refs=[prenotify.id], case=incident.id)
    consent = env("action.consent", "ir:dgmo", "pk:dgmo", {}, 3.5, refs=[prenotify.id])  # crossed: refused
    report = env("action.report", "pk:dgmo", "ir:dgmo", {"summary": "Nothing to report.", "evidence": [
        {"sha256": SHA, "name": "x.png", "media_type": "image/png", "size": 10}]}, 4, refs=[prenotify.id])  # fmt: skip
    propose = env("consultation.propose", "ir:dgmo", "pk:dgmo", {
        "title": "Border security", "agenda": ["Incidents"], "start": at(10), "venue": "Taftan"}, 5)  # fmt: skip
    agree = env("consultation.agree", "pk:dgmo", "ir:dgmo", {}, 6, refs=[propose.id])
    held = env("consultation.held", "ir:dgmo", "pk:dgmo", {"held_at": at(11)}, 11.5, refs=[propose.id])
    minutes_body = {"text": "Agreed.", "items": [{"id": "i1", "title": "Patrols", "owner": "pk:dgmo", "due": at(20)}]}
    minutes = env("consultation.minutes", "pk:dgmo", "ir:dgmo", minutes_body, 12, refs=[propose.id])
    digest = {"sha256": minutes_digest(minutes_body)}
    cosign_pk = env("consultation.cosign", "pk:dgmo", "ir:dgmo", digest, 13, refs=[propose.id, minutes.id])
    cosign_ir = env("consultation.cosign", "ir:dgmo", "pk:dgmo", digest, 13, refs=[propose.id, minutes.id])
    done = env("consultation.item_done", "pk:dgmo", "ir:dgmo", {"item": "i1"}, 14, refs=[propose.id])
    text = env("hotline.text", "ir:dgmo", "pk:dgmo", {"text": "On it."}, 15, case=incident.id)
    return [incident, contained, prenotify, withdraw, consent, report, propose, agree, held, minutes, cosign_pk,
            cosign_ir, done, text]  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(sqlite_url(tmp_path / "node.db"))
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def receive(conn: Connection, envelope: Envelope) -> list[Any]:
    """What the receiving node does: store, then project (never refusing)."""
    store_received(conn, envelope)
    return workflow.save(conn, workflow.plan(conn, AGREEMENT, envelope, strict=False))


def clear(conn: Connection) -> None:
    for table in (*store.TABLES.values(), store.workflow_offices, store.workflow_conflicts, envelopes, log,
                  tree_hashes):  # fmt: skip
        conn.execute(delete(table))


def test_in_order_arrival_equals_fold(any_engine: Engine) -> None:
    envs = scenario()
    with any_engine.begin() as conn:
        for envelope in envs:
            receive(conn, envelope)
        assert differences(conn, workflow.derive(envs, AGREEMENT)) == []
        action = store.get(conn, "action", envs[2].id)
        assert action is not None and action.status == "withdrawn"
        conflicts = store.conflicts_of(conn, "action", envs[2].id)
        assert [(c["type"], c["reason"].split(" (")[0]) for c in conflicts] == [
            ("action.consent", "action.consent is not allowed when the action is withdrawn"),
            ("action.report", "action.report is not allowed when the action is withdrawn"),
        ]
        case = store.get(conn, "case", envs[0].id)
        assert case is not None and case.status == "contained" and case.state["escalation"] == {"ir": 2, "pk": 3}
        consultation = store.get(conn, "consultation", envs[6].id)
        assert consultation is not None and consultation.status == "minutes_cosigned"
        readers = store.offices_of(conn, "action", envs[2].id)
        assert readers == {"pk:dgmo", "ir:dgmo", "pk:lo-zahedan", "ir:lo-turbat"}


@pytest.mark.parametrize("seed", range(12))
def test_any_arrival_order_equals_fold(engine: Engine, seed: int) -> None:
    envs = scenario()
    shuffled = random.Random(seed).sample(envs, len(envs))
    with engine.begin() as conn:
        for envelope in shuffled:
            receive(conn, envelope)
        assert differences(conn, workflow.derive(envs, AGREEMENT)) == []
        report = rebuild_connection(conn, AGREEMENT, write=False)
        assert report.matches and report.counts == {"case": 1, "clarification": 0, "action": 1, "consultation": 1,
                                                    "conflict": 2}  # fmt: skip


def test_crossed_envelopes_converge_on_both_sides(any_engine: Engine) -> None:
    """pk applies its withdrawal then the consent; ir its consent then the withdrawal: one result."""
    envs = scenario()
    prenotify, withdraw, consent = envs[2], envs[3], envs[4]
    sides: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for side, order in (("pk", [prenotify, withdraw, consent]), ("ir", [prenotify, consent, withdraw])):
        with any_engine.begin() as conn:
            clear(conn)
            for envelope in [envs[0], *order]:
                receive(conn, envelope)
            row = store.get(conn, "action", prenotify.id)
            assert row is not None
            sides[side] = (row.state, [dict(c) for c in store.conflicts_of(conn, "action", prenotify.id)])
    assert sides["pk"][0] == sides["ir"][0] and sides["pk"][0]["status"] == "withdrawn"
    strip = [[{k: v for k, v in c.items() if k != "id"} for c in side[1]] for side in sides.values()]
    assert strip[0] == strip[1] and strip[0][0]["envelope_id"] == consent.id


def test_the_sender_is_refused_before_anything_is_written(engine: Engine) -> None:
    envs = scenario()
    with engine.begin() as conn:
        for envelope in envs[:4]:  # the action is withdrawn
            receive(conn, envelope)
        before = store.get(conn, "action", envs[2].id)
        with pytest.raises(InvalidTransition, match="not allowed when the action is withdrawn"):
            workflow.plan(conn, AGREEMENT, envs[4], strict=True)
        assert store.get(conn, "action", envs[2].id) == before
        assert store.conflicts_of(conn) == []


def test_sender_refused_when_its_envelope_would_be_refused_after_a_refold(engine: Engine) -> None:
    """An envelope older than the stored state (a slow clock) is checked by re-folding, strictly too."""
    envs = scenario()
    prenotify, withdraw = envs[2], envs[3]
    late_consent = env("action.consent", "ir:dgmo", "pk:dgmo", {}, 3.5, refs=[prenotify.id])
    early_object = env("action.object", "ir:dgmo", "pk:dgmo", {"reason": "No."}, 2.5, refs=[prenotify.id])
    with engine.begin() as conn:
        for envelope in (envs[0], prenotify, withdraw):
            receive(conn, envelope)
        with pytest.raises(InvalidTransition):
            workflow.plan(conn, AGREEMENT, late_consent, strict=True)
        plan = workflow.plan(conn, AGREEMENT, early_object, strict=True)  # before the withdrawal: fine
        assert plan.changes[0].refolded and plan.changes[0].state is not None
        assert plan.changes[0].state.status == "withdrawn"


def test_states_survive_their_json() -> None:
    projection = fold(scenario())
    for kind, states in (("case", projection.cases), ("action", projection.actions),
                         ("consultation", projection.consultations)):  # fmt: skip
        for state in states.values():
            assert state_from_json(kind, state.to_json()) == state
    with pytest.raises(Invalid, match="does not fit"):
        state_from_json("action", {"id": "x"})
    with pytest.raises(Invalid, match="unknown workflow"):
        state_from_json("drill", {})


def test_rebuild_write_replaces_spoiled_tables(any_engine: Engine) -> None:
    envs = scenario()
    with any_engine.begin() as conn:
        for envelope in envs:
            receive(conn, envelope)
        conn.execute(store.actions.update().values(status="verified"))
        conn.execute(delete(store.workflow_conflicts))
        assert len(log_envelopes(conn)) == len(envs)
        report = rebuild_connection(conn, AGREEMENT, write=True)
        assert report.written and any("status is 'verified'" in d for d in report.differences)
        assert any(d.startswith("conflict missing: action.consent") for d in report.differences)
        assert rebuild_connection(conn, AGREEMENT, write=False).matches


def ministers_minutes(incident: Envelope) -> tuple[list[Envelope], str]:
    """A consultation of the ministers in `incident`'s case, whose minutes give an item to pk:dgmo; and its id."""
    proposal = {"title": "Ministers", "agenda": ["Border"], "start": at(10), "venue": "Tehran"}
    propose = env("consultation.propose", "pk:fs", "ir:fs", proposal, 5, case=incident.id)
    agree = env("consultation.agree", "ir:fs", "pk:fs", {}, 6, refs=[propose.id], case=incident.id)
    held = env("consultation.held", "pk:fs", "ir:fs", {"held_at": at(11)}, 11.5, refs=[propose.id], case=incident.id)
    items = [{"id": "A1", "title": "Brief the posts", "owner": "pk:dgmo", "due": at(20)}]
    minutes = env("consultation.minutes", "ir:fs", "pk:fs", {"text": "Agreed.", "items": items}, 12,
                  refs=[propose.id], case=incident.id)  # fmt: skip
    return [incident, propose, agree, held, minutes], propose.id


def liaison_incident() -> Envelope:
    return env("incident.report", "pk:lo-zahedan", "ir:lo-turbat", {
        "kind": "strike", "time": at(-1), "location": {"lat": 26.9, "lon": 63.5, "place": "Turbat"},
        "description": "Shots.", "assessment": "Unclear.", "escalation": 1}, 0)  # fmt: skip


def test_an_office_given_an_action_item_reads_the_consultation_and_not_its_case(any_engine: Engine) -> None:
    """QA: minutes of the ministers gave pk:dgmo an item; pk:dgmo could close it but not see it."""
    envs, consultation = ministers_minutes(liaison_incident())
    with any_engine.begin() as conn:
        for envelope in envs:
            receive(conn, envelope)
        assert store.get(conn, "consultation", consultation) is not None
        assert store.offices_of(conn, "consultation", consultation) == {"pk:fs", "ir:fs", "pk:dgmo"}
        # Only the consultation: the case the minutes name (the liaison officers' incident) gains no reader.
        assert "pk:dgmo" not in store.offices_of(conn, "case", envs[0].id)
        assert [r.id for r in store.listing(conn, "consultation", offices=["pk:dgmo"])] == [consultation]
        assert store.listing(conn, "consultation", offices=["pk:lo-zahedan"]) == []
        assert differences(conn, workflow.derive(envs, AGREEMENT)) == []  # `detente rebuild` derives the same


def test_refused_minutes_give_no_one_the_consultation(engine: Engine) -> None:
    envs, consultation = ministers_minutes(liaison_incident())
    with engine.begin() as conn:
        for envelope in envs[:3] + envs[4:]:  # never held: the minutes are refused (a conflict)
            receive(conn, envelope)
        assert [c["type"] for c in store.conflicts_of(conn, "consultation", consultation)] == ["consultation.minutes"]
        assert store.offices_of(conn, "consultation", consultation) == {"pk:fs", "ir:fs"}
        assert differences(conn, workflow.derive(envs[:3] + envs[4:], AGREEMENT)) == []


def test_the_upgrade_gives_the_owners_of_earlier_minutes_their_consultation(engine: Engine) -> None:
    """Migration 0008: minutes recorded by an earlier release gain their items' owners as readers."""
    envs, consultation = ministers_minutes(liaison_incident())
    with engine.begin() as conn:
        for envelope in envs:
            receive(conn, envelope)
        # As an earlier release left it: the owner not among the readers.
        owner = (store.workflow_offices.c.office == "pk:dgmo", store.workflow_offices.c.workflow == "consultation")
        conn.execute(delete(store.workflow_offices).where(*owner))
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    for _ in range(2):  # the upgrade, then again: nothing is added twice
        migrate(engine)
        with engine.begin() as conn:
            assert store.offices_of(conn, "consultation", consultation) == {"pk:fs", "ir:fs", "pk:dgmo"}
            assert differences(conn, workflow.derive(envs, AGREEMENT)) == []
