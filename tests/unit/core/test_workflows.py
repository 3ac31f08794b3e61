"""Tests for the shared state machines (`detente.core.workflows`): every transition, valid or not."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detente.core import workflows as wf
from detente.core.envelope import Envelope, seal
from detente.core.keys import Signer
from detente.core.precedence import format_time
from detente.core.workflow_json import state_from_json
from detente.core.workflows_action import TRANSITIONS as ACTION_TRANSITIONS
from detente.core.workflows_action import unilateral_reasons
from detente.core.workflows_consultation import TRANSITIONS as CONSULTATION_TRANSITIONS
from detente.errors import InvalidTransition

SIGNERS = {party: Signer.generate(f"{party}.detente/log") for party in ("pk", "ir", "in")}
T0 = datetime(2024, 1, 18, 0, 0, tzinfo=UTC)
SHA = "cd" * 32
EVIDENCE = {"sha256": SHA, "name": "site.jpg", "media_type": "image/jpeg", "size": 2048}
_seq = itertools.count(1)


def at(hours: float) -> str:
    return format_time(T0 + timedelta(hours=hours))


def env(
    kind: str, sender: str, recipient: str, body: dict[str, Any], *, refs: list[str] | None = None,
    case: str | None = None, hours: float = 0, id: str | None = None,
) -> Envelope:  # fmt: skip
    desk = sender.split(":")[1]
    channel = "liaison" if desk.startswith("lo-") else desk
    fields = {
        "v": 1, "id": id or str(uuid.uuid4()), "agreement": "0" * 64, "channel": channel, "from": sender,
        "to": recipient, "seq": next(_seq), "author": "duty-officer", "precedence": "IMMEDIATE", "type": kind,
        "lang": "en", "refs": refs or [], "case": case, "created": at(hours), "body": body,
    }  # fmt: skip
    return seal(fields, SIGNERS[sender.split(":")[0]])


PK, IR, PK_LO, IR_LO, PK_FS, IR_FS = "pk:dgmo", "ir:dgmo", "pk:lo-zahedan", "ir:lo-turbat", "pk:fs", "ir:fs"
COUNTER = {PK: IR, IR: PK, PK_LO: IR_LO, IR_LO: PK_LO, PK_FS: IR_FS, IR_FS: PK_FS}
INCIDENT = {
    "kind": "strike", "time": at(-1), "location": {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"},
    "description": "Missiles hit a house.", "assessment": "Deliberate.", "escalation": 3,
}  # fmt: skip
PRENOTIFY = {
    "area": {"center": {"lat": 27.35, "lon": 62.33}, "radius_km": 15.0}, "window": {"start": at(24), "end": at(30)},
    "forces": "Drones", "target_group": "BLF", "objective": "Hideouts", "respond_by": at(12),
}  # fmt: skip
ACTION_BODIES: dict[str, dict[str, Any]] = {
    "action.request_info": {"questions": ["Which villages?"]},
    "action.provide_info": {"text": "None within 5 km."},
    "action.consent": {},
    "action.object": {"reason": "Civilians nearby."},
    "action.withdraw": {},
    "action.execute": {"started": at(25)},
    "action.report": {"summary": "Two hideouts destroyed.", "evidence": [EVIDENCE]},
    "action.verify": {"note": "Confirmed on site."},
    "action.dispute": {"reason": "A house was hit.", "evidence": [{**EVIDENCE, "sha256": "ef" * 32}]},
}
SENDER = {
    wf_role: office for wf_role, office in (("proposer", PK), ("counterpart", IR), ("counterpart liaison", IR_LO))
}


class Action:
    """A scripted action between pk (proposer) and ir, stepping the clock one hour per envelope."""

    def __init__(self) -> None:
        self.opener = env("operation.prenotify", PK, IR, PRENOTIFY, hours=0)
        self.state: wf.Action = wf.apply_action(None, self.opener)
        self.hours = 0.0

    def make(self, kind: str, sender: str | None = None, **body: Any) -> Envelope:
        self.hours += 1
        sender = sender or SENDER[ACTION_TRANSITIONS[kind][0]]
        return env(kind, sender, COUNTER[sender], {**ACTION_BODIES[kind], **body}, refs=[self.state.id],
                   hours=self.hours)  # fmt: skip

    def send(self, kind: str, sender: str | None = None, **body: Any) -> wf.Action:
        self.state = wf.apply_action(self.state, self.make(kind, sender, **body))
        return self.state


ACTION_PATHS: dict[str, list[str]] = {
    "proposed": [],
    "info_requested": ["action.request_info"],
    "consented": ["action.consent"],
    "objected": ["action.object"],
    "withdrawn": ["action.withdraw"],
    "executed": ["action.consent", "action.execute"],
    "reported": ["action.consent", "action.execute", "action.report"],
    "verified": ["action.consent", "action.execute", "action.report", "action.verify"],
    "disputed": ["action.consent", "action.execute", "action.report", "action.dispute"],
}


def action_in(status: str) -> Action:
    script = Action()
    for kind in ACTION_PATHS[status]:
        script.send(kind)
    assert script.state.status == status
    return script


def test_action_full_lifecycle() -> None:
    script = Action()
    state = script.state
    assert (state.id, state.proposer, state.counterpart, state.status) == (script.opener.id, PK, IR, "proposed")
    assert (state.window_start, state.respond_by, state.target_group) == (at(24), at(12), "BLF")
    assert script.send("action.request_info").status == "info_requested"
    assert script.send("action.provide_info").status == "proposed"
    consent = script.make("action.consent")
    state = script.state = wf.apply_action(script.state, consent)
    assert (state.status, state.decision) == ("consented", consent.id)
    state = script.send("action.execute")
    assert (state.status, state.unilateral, state.outside_window, state.executed_at) == (
        "executed",
        False,
        False,
        at(25),
    )
    state = script.send("action.report")
    assert state.status == "reported" and state.report == state.history[-1].id
    assert [e.sha256 for e in state.evidence] == [SHA]
    state = script.send("action.verify")
    assert state.status == "verified" and state.verdict == state.history[-1].id
    assert [s.status for s in state.history] == [
        "proposed", "info_requested", "proposed", "consented", "executed", "reported", "verified",
    ]  # fmt: skip
    assert json.loads(json.dumps(state.to_json()))["evidence"][0]["envelope"] == state.report


ACTION_TABLE = [(status, kind) for status in ACTION_PATHS for kind in ACTION_TRANSITIONS]


@pytest.mark.parametrize(("status", "kind"), ACTION_TABLE)
def test_every_action_transition(status: str, kind: str) -> None:
    script = action_in(status)
    _, sources, target = ACTION_TRANSITIONS[kind]
    if status in sources:
        assert script.send(kind).status == target
    else:
        with pytest.raises(InvalidTransition, match=f"{kind} is not allowed when the action is {status}"):
            script.send(kind)


def test_action_table_has_the_issue_refusals() -> None:
    refused = {(s, k) for s, k in ACTION_TABLE if s not in ACTION_TRANSITIONS[k][1]}
    assert ("executed", "action.verify") in refused  # verify an action nobody reported
    assert ("withdrawn", "action.consent") in refused  # consent to a withdrawn one
    assert ("verified", "action.dispute") in refused


WRONG_SENDERS = [
    ("action.consent", PK, "must come from ir, the other side"),
    ("action.object", PK_LO, "must come from ir, the other side"),
    ("action.request_info", PK_FS, "must come from ir"),
    ("action.provide_info", IR, "must come from pk, the side that proposed"),
    ("action.withdraw", IR, "must come from pk"),
    ("action.execute", IR_LO, "must come from pk"),
]


@pytest.mark.parametrize(("kind", "sender", "message"), WRONG_SENDERS)
def test_action_messages_from_the_wrong_side_are_refused(kind: str, sender: str, message: str) -> None:
    script = action_in("info_requested" if kind == "action.provide_info" else "proposed")
    with pytest.raises(InvalidTransition, match=message):
        script.send(kind, sender)


@pytest.mark.parametrize("kind", ["action.verify", "action.dispute"])
@pytest.mark.parametrize(
    ("sender", "message"), [(IR, "liaison office"), (IR_FS, "liaison office"), (PK_LO, "other side")]
)
def test_only_the_other_sides_liaison_office_verifies_or_disputes(kind: str, sender: str, message: str) -> None:
    script = action_in("reported")
    with pytest.raises(InvalidTransition, match=message):
        script.send(kind, sender)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ([], "executed without consent"),
        (["action.request_info"], "executed without consent"),
        (["action.object"], "executed despite an objection"),
        (["action.consent", "action.object"], "executed despite an objection"),
    ],
)
def test_execution_without_consent_is_recorded_as_unilateral(path: list[str], reason: str) -> None:
    script = Action()
    for kind in path:
        script.send(kind)
    state = script.send("action.execute")
    assert (state.status, state.unilateral, state.unilateral_reason) == ("executed", True, reason)
    assert script.send("action.report").unilateral  # the flag stays on the record


@pytest.mark.parametrize(
    ("started", "reason"),
    [(at(0.5), "executed before consent was given"),
     (at(-1), "executed before consent was given; executed before it was notified")],
)  # fmt: skip
def test_a_consent_counts_only_for_what_started_after_it(started: str, reason: str) -> None:
    script = action_in("consented")  # notified at hour 0, consented at hour 1
    state = script.send("action.execute", started=started)
    assert (state.status, state.unilateral, state.unilateral_reason) == ("executed", True, reason)
    assert script.state.outside_window  # and, here, before its window too


@pytest.mark.parametrize(
    ("path", "reason"),
    [([], "executed without consent; executed before it was notified"),
     (["action.object"], "executed despite an objection; executed before it was notified")],
)  # fmt: skip
def test_every_reason_for_a_unilateral_execution_is_given(path: list[str], reason: str) -> None:
    script = Action()
    for kind in path:
        script.send(kind)
    state = script.send("action.execute", started=at(-0.001))  # a moment before the notice, and no consent
    assert (state.unilateral, state.unilateral_reason) == (True, reason)
    assert unilateral_reasons(action_in("consented").state, T0 + timedelta(hours=1)) == []


def test_an_execution_started_after_the_consent_is_consented() -> None:
    script = action_in("consented")
    state = script.send("action.execute", started=at(1))  # the consent's own moment: after it, not before
    assert state.unilateral is False and state.unilateral_reason is None


def test_consent_after_objection_then_execution_is_not_unilateral() -> None:
    script = action_in("objected")
    script.send("action.consent")
    assert script.send("action.execute").unilateral is False


@pytest.mark.parametrize(("started", "outside"), [(at(24), False), (at(30), False), (at(23.9), True), (at(30.1), True)])
def test_execution_outside_the_notified_window_is_flagged(started: str, outside: bool) -> None:
    script = action_in("consented")
    assert script.send("action.execute", started=started).outside_window is outside


def test_action_message_for_an_unknown_or_other_action_is_refused() -> None:
    script = action_in("proposed")
    stray = env("action.consent", IR, PK, {}, refs=[str(uuid.uuid4())])
    with pytest.raises(InvalidTransition, match="must carry the action's id"):
        wf.apply_action(script.state, stray)
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_action(None, stray)
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_action(None, env("action.consent", IR, PK, {}))
    other = env("operation.prenotify", PK, IR, PRENOTIFY)
    with pytest.raises(InvalidTransition, match="opens its own action"):
        wf.apply_action(script.state, other)
    with pytest.raises(InvalidTransition, match="not an action message"):
        wf.apply_action(script.state, env("statement", IR, PK, {"text": "x"}, refs=[script.state.id]))


def test_action_applies_each_envelope_once() -> None:
    script = action_in("proposed")
    consent = script.make("action.consent")
    once = wf.apply_action(script.state, consent)
    assert wf.apply_action(once, consent) is once
    assert wf.apply_action(once, script.opener) is once


def test_action_decision_overdue() -> None:
    script = action_in("proposed")
    assert not wf.is_overdue(script.state, T0 + timedelta(hours=12))
    assert wf.is_overdue(script.state, T0 + timedelta(hours=12, seconds=1))
    assert wf.is_overdue(action_in("info_requested").state, T0 + timedelta(hours=13))
    assert not wf.is_overdue(action_in("consented").state, T0 + timedelta(hours=13))


@pytest.mark.parametrize(
    ("status", "office", "allowed"),
    [
        ("proposed", IR, ["action.request_info", "action.consent", "action.object"]),
        ("proposed", PK, ["action.withdraw", "action.execute"]),
        ("proposed", IR_LO, ["action.request_info", "action.consent", "action.object"]),
        ("info_requested", PK, ["action.provide_info", "action.withdraw", "action.execute"]),
        ("reported", IR_LO, ["action.verify", "action.dispute"]),
        ("reported", IR, []),
        ("reported", PK_LO, []),
        ("verified", IR_LO, []),
    ],
)
def test_allowed_action_types(status: str, office: str, allowed: list[str]) -> None:
    assert wf.allowed_types(action_in(status).state, office) == allowed


# Cases ---------------------------------------------------------------------------------------


def open_case() -> tuple[Envelope, wf.Case]:
    report = env("incident.report", PK, IR, INCIDENT, hours=0)
    return report, wf.apply_case(None, report)


def test_incident_report_opens_a_case() -> None:
    report, case = open_case()
    assert (case.id, case.kind, case.title, case.status, case.opened_by) == (
        report.id, "strike", "strike at Koh-e-Sabz", "open", PK,
    )  # fmt: skip
    assert case.escalation == (("ir", None), ("pk", 3))
    assert (case.level("pk"), case.level("ir")) == (3, None)
    assert [(e.id, e.type, e.note) for e in case.timeline] == [(report.id, "incident.report", "opened")]
    assert json.loads(json.dumps(case.to_json()))["escalation"] == {"ir": None, "pk": 3}


def test_an_incident_report_naming_itself_opens_its_case() -> None:
    own = str(uuid.uuid4())
    assert wf.apply_case(None, env("incident.report", PK, IR, INCIDENT, id=own, case=own)).id == own


def test_case_open_opens_a_case_explicitly() -> None:
    opener = env("case.open", IR_FS, PK_FS, {"title": "Saravan strikes", "escalation": 4})
    case = wf.apply_case(None, opener)
    assert (case.id, case.title, case.kind, case.escalation) == (
        opener.id,
        "Saravan strikes",
        None,
        (("ir", 4), ("pk", None)),
    )


CASE_TABLE = [(start, target) for start in wf.CASE_TRANSITIONS for target in ("open", "contained", "resolved")]
CASE_PATHS = {"open": [], "contained": ["contained"], "resolved": ["resolved"]}


@pytest.mark.parametrize(("start", "target"), CASE_TABLE)
def test_every_case_status_transition(start: str, target: str) -> None:
    report, case = open_case()
    for hours, status in enumerate(CASE_PATHS[start], 1):
        case = wf.apply_case(case, env("case.update", IR, PK, {"status": status}, case=case.id, hours=hours))
    update = env("case.update", PK, IR, {"status": target}, case=case.id, hours=5)
    if target in wf.CASE_TRANSITIONS[start]:
        after = wf.apply_case(case, update)
        assert after.status == target and after.timeline[-1].note == f"status {target}"
    else:
        with pytest.raises(InvalidTransition, match=f"a {start} case cannot become {target}"):
            wf.apply_case(case, update)


def test_each_side_sets_its_own_escalation_level() -> None:
    report, case = open_case()
    case = wf.apply_case(case, env("case.update", IR, PK, {"escalation": 4}, case=case.id, hours=1))
    assert case.escalation == (("ir", 4), ("pk", 3)) and case.status == "open"
    assert case.timeline[-1].note == "ir escalation 4"
    joined = env("incident.report", IR, PK, {**INCIDENT, "escalation": 5}, case=case.id, hours=2)
    case = wf.apply_case(case, joined)
    assert case.level("ir") == 5 and case.timeline[-1].note == "ir escalation 5"
    quiet = env("incident.report", PK, IR, {**INCIDENT, "escalation": None}, case=case.id, hours=3)
    case = wf.apply_case(case, quiet)
    assert case.level("pk") == 3 and case.timeline[-1].note == ""
    case = wf.apply_case(
        case, env("case.update", PK, IR, {"status": "contained", "escalation": 1}, case=case.id, hours=4)
    )
    assert case.escalation == (("ir", 5), ("pk", 1)) and case.timeline[-1].note == "status contained; pk escalation 1"


def test_any_envelope_naming_the_case_joins_its_timeline() -> None:
    report, case = open_case()
    statement = env("statement", PK_FS, IR_FS, {"text": "Protest."}, case=case.id, hours=1)
    case = wf.apply_case(case, statement)
    assert [e.type for e in case.timeline] == ["incident.report", "statement"]
    assert case.timeline[-1].sender == PK_FS and case.timeline[-1].recipient == IR_FS
    assert wf.apply_case(case, statement) is case


def test_case_refusals() -> None:
    report, case = open_case()
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_case(None, env("case.update", PK, IR, {"status": "resolved"}, case=str(uuid.uuid4())))
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_case(None, env("incident.report", PK, IR, INCIDENT, case=str(uuid.uuid4())))
    with pytest.raises(InvalidTransition, match="does not belong to case"):
        wf.apply_case(case, env("statement", PK, IR, {"text": "x"}, case=str(uuid.uuid4())))
    with pytest.raises(InvalidTransition, match="cannot name an existing one"):
        wf.apply_case(case, env("case.open", PK, IR, {"title": "again"}, case=case.id))


# Clarifications ------------------------------------------------------------------------------


def clarification(deadline: str | None = None) -> wf.Clarification:
    body: dict[str, Any] = {"questions": ["Who fired?", "From where?"]}
    if deadline:
        body["deadline"] = deadline
    return wf.apply_clarification(None, env("clarification.request", PK_FS, IR_FS, body))


def answer(state: wf.Clarification, sender: str = IR_FS, hours: float = 1, answers: int = 2) -> wf.Clarification:
    body = {"answers": [f"answer {i}" for i in range(answers)]}
    return wf.apply_clarification(
        state, env("clarification.response", sender, COUNTER[sender], body, refs=[state.id], hours=hours)
    )


def test_clarification_deadline_defaults_to_48_hours() -> None:
    assert clarification().deadline == at(48)
    assert clarification(at(6)).deadline == at(6)


@pytest.mark.parametrize(("hours", "late"), [(1, False), (48, False), (48.001, True)])
def test_clarification_answered_on_time_or_late(hours: float, late: bool) -> None:
    state = answer(clarification(), hours=hours)
    assert (state.status, state.late, state.answered_at) == ("answered", late, at(hours))


def test_clarification_refusals() -> None:
    state = clarification()
    with pytest.raises(InvalidTransition, match="from ir, the side that was asked"):
        answer(state, sender=PK_FS)
    with pytest.raises(InvalidTransition, match="1 answer"):
        answer(state, answers=1)
    done = answer(state)
    with pytest.raises(InvalidTransition, match="already answered"):
        answer(done, hours=2)
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_clarification(
            None, env("clarification.response", IR_FS, PK_FS, {"answers": ["x"]}, refs=[str(uuid.uuid4())])
        )
    with pytest.raises(InvalidTransition, match="as its only ref"):
        wf.apply_clarification(
            state, env("clarification.response", IR_FS, PK_FS, {"answers": ["x", "y"]}, refs=[str(uuid.uuid4())])
        )
    with pytest.raises(InvalidTransition, match="not a clarification message"):
        wf.apply_clarification(state, env("statement", IR_FS, PK_FS, {"text": "x"}, refs=[state.id]))


def test_clarification_overdue_and_allowed() -> None:
    state = clarification()
    assert not wf.is_overdue(state, T0 + timedelta(hours=48))
    assert wf.is_overdue(state, T0 + timedelta(hours=48, seconds=1))
    assert wf.allowed_types(state, IR) == ["clarification.response"]
    assert wf.allowed_types(state, PK) == []
    assert not wf.is_overdue(answer(state, hours=50), T0 + timedelta(hours=60))


# Consultations -------------------------------------------------------------------------------

PROPOSE: dict[str, Any] = {
    "title": "Border security, February",
    "agenda": ["Incidents"],
    "start": at(24 * 28),
    "venue": "Taftan",
}
MINUTES: dict[str, Any] = {
    "text": "Both sides reviewed the incidents of January.",
    "items": [
        {"id": "1", "title": "Exchange lists of wanted persons", "owner": "ir:dgmo", "due": at(24 * 40)},
        {"id": "2", "title": "Open the Mand-Pishin crossing", "owner": "pk:fs", "due": at(24 * 50)},
    ],
}


class Consultation:
    """A scripted consultation proposed by pk:dgmo to ir:dgmo."""

    def __init__(self) -> None:
        self.state: wf.Consultation = wf.apply_consultation(None, env("consultation.propose", PK, IR, PROPOSE))
        self.hours = 0.0

    def make(self, kind: str, sender: str = PK, body: dict[str, Any] | None = None, refs: list[str] | None = None,
             hours: float | None = None) -> Envelope:  # fmt: skip
        self.hours = self.hours + 1 if hours is None else hours
        if body is None:
            body = self.default_body(kind)
        if refs is None:
            refs = [self.state.id] + (
                [self.state.minutes] if kind == "consultation.cosign" and self.state.minutes else []
            )
        return env(kind, sender, COUNTER[sender], body, refs=refs, hours=self.hours)

    def default_body(self, kind: str) -> dict[str, Any]:
        bodies: dict[str, dict[str, Any]] = {
            "consultation.agree": {}, "consultation.cancel": {"reason": "Holiday"},
            "consultation.held": {"held_at": at(self.hours)}, "consultation.minutes": MINUTES,
            "consultation.cosign": {"sha256": self.state.minutes_sha256 or SHA},
            "consultation.item_done": {"item": "1"},
        }  # fmt: skip
        return bodies[kind]

    def send(self, kind: str, sender: str = PK, **kwargs: Any) -> wf.Consultation:
        self.state = wf.apply_consultation(self.state, self.make(kind, sender, **kwargs))
        return self.state


CONSULTATION_PATHS: dict[str, list[tuple[str, str]]] = {
    "proposed": [],
    "agreed": [("consultation.agree", IR)],
    "cancelled": [("consultation.cancel", IR)],
    "held": [("consultation.agree", IR), ("consultation.held", PK)],
    "minutes_proposed": [("consultation.agree", IR), ("consultation.held", PK), ("consultation.minutes", PK)],
    "minutes_cosigned": [
        ("consultation.agree", IR), ("consultation.held", PK), ("consultation.minutes", PK),
        ("consultation.cosign", PK), ("consultation.cosign", IR),
    ],
}  # fmt: skip
CONSULTATION_SENDER = {"consultation.agree": IR, "consultation.item_done": IR}
CONSULTATION_TARGET = {
    "consultation.agree": "agreed", "consultation.cancel": "cancelled", "consultation.held": "held",
    "consultation.minutes": "minutes_proposed", "consultation.cosign": "minutes_proposed",
    "consultation.item_done": "minutes_cosigned",
}  # fmt: skip


def consultation_in(status: str) -> Consultation:
    script = Consultation()
    for kind, sender in CONSULTATION_PATHS[status]:
        script.send(kind, sender)
    assert script.state.status == status
    return script


def test_consultation_full_lifecycle() -> None:
    script = Consultation()
    state = script.state
    assert (state.status, state.proposer, state.counterpart, state.parties) == ("proposed", PK, IR, ("ir", "pk"))
    assert script.send("consultation.agree", IR).status == "agreed"
    assert script.send("consultation.held", IR).held_at == at(2)
    minutes = script.make("consultation.minutes", PK)
    state = script.state = wf.apply_consultation(script.state, minutes)
    assert (state.status, state.minutes, state.minutes_sha256) == (
        "minutes_proposed",
        minutes.id,
        wf.minutes_digest(MINUTES),
    )
    assert [(i.id, i.owner, i.status) for i in state.items] == [("1", "ir:dgmo", "open"), ("2", "pk:fs", "open")]
    assert script.send("consultation.cosign", IR).status == "minutes_proposed"
    state = script.send("consultation.cosign", PK)
    assert state.status == "minutes_cosigned" and [p for p, _ in state.cosigned_by] == ["ir", "pk"]
    state = script.send("consultation.item_done", IR, body={"item": "1", "note": "Lists exchanged"})
    assert (state.items[0].status, state.items[0].late, state.items[0].done_by) == ("done", False, state.history[-1].id)
    state = script.send("consultation.item_done", PK_FS, body={"item": "2"}, hours=24 * 51)
    assert state.items[1].late is True
    out = json.loads(json.dumps(state.to_json()))
    assert out["cosigned_by"] == {"ir": state.cosigned_by[0][1], "pk": state.cosigned_by[1][1]}
    assert out["parties"] == ["ir", "pk"]


CONSULTATION_TABLE = [(s, k) for s in CONSULTATION_PATHS for k in CONSULTATION_TRANSITIONS]


@pytest.mark.parametrize(("status", "kind"), CONSULTATION_TABLE)
def test_every_consultation_transition(status: str, kind: str) -> None:
    script = consultation_in(status)
    sender = CONSULTATION_SENDER.get(kind, PK)
    if status in CONSULTATION_TRANSITIONS[kind][1]:
        assert script.send(kind, sender).status == CONSULTATION_TARGET[kind]
    else:
        with pytest.raises(InvalidTransition, match=f"{kind} is not allowed when the consultation is {status}"):
            script.send(kind, sender)


def test_only_the_other_side_agrees() -> None:
    with pytest.raises(InvalidTransition, match="must come from ir"):
        Consultation().send("consultation.agree", PK)


def test_a_third_party_cannot_take_part() -> None:
    script = Consultation()
    with pytest.raises(InvalidTransition, match="party to the consultation"):
        wf.apply_consultation(
            script.state, env("consultation.cancel", "in:dgmo", PK, {"reason": "x"}, refs=[script.state.id])
        )


def test_cosign_must_match_the_pending_minutes() -> None:
    script = consultation_in("minutes_proposed")
    with pytest.raises(InvalidTransition, match="carries sha256") as wrong:
        script.send("consultation.cosign", IR, body={"sha256": "00" * 32})
    # The refusal does not give the digest away: a co-signer computes it from the minutes they read.
    assert str(script.state.minutes_sha256) not in wrong.value.detail
    assert wrong.value.detail.endswith(f"not the SHA-256 of the pending minutes {script.state.minutes}")
    with pytest.raises(InvalidTransition, match="must ref the pending minutes"):
        script.send("consultation.cosign", IR, refs=[script.state.id, str(uuid.uuid4())])
    script.send("consultation.cosign", IR)
    with pytest.raises(InvalidTransition, match="ir has already co-signed"):
        script.send("consultation.cosign", IR_FS)


def test_an_action_item_is_owned_by_an_office_of_a_party_to_the_consultation() -> None:
    script = consultation_in("held")
    items = [{**MINUTES["items"][0], "owner": "ir:lo-turbat"}, {**MINUTES["items"][1], "owner": "in:dgmo"}]
    with pytest.raises(InvalidTransition, match="in:dgmo is not an office of a party") as caught:
        script.send("consultation.minutes", IR, body={**MINUTES, "items": items})
    assert caught.value.extra["fields"] == {
        "items.1.owner": "in:dgmo is not an office of a party to this consultation (ir, pk)"
    }
    assert script.state.status == "held"  # nothing changed
    # Any office of either side may own one: a DGMOs' meeting tasks a liaison officer, ministers a DGMO.
    state = script.send("consultation.minutes", IR, body={**MINUTES, "items": items[:1]})
    assert [i.owner for i in state.items] == ["ir:lo-turbat"]


def test_new_minutes_void_earlier_cosignatures() -> None:
    script = consultation_in("minutes_proposed")
    old = script.state.minutes
    script.send("consultation.cosign", IR)
    revised = {**MINUTES, "text": MINUTES["text"] + " Revised."}
    state = script.send("consultation.minutes", IR, body=revised)
    assert state.cosigned_by == () and state.minutes != old and state.minutes_sha256 == wf.minutes_digest(revised)
    with pytest.raises(InvalidTransition, match="must ref the pending minutes"):
        script.send("consultation.cosign", PK, refs=[state.id, str(old)])
    script.send("consultation.cosign", PK)
    assert script.send("consultation.cosign", IR).status == "minutes_cosigned"


def test_minutes_digest_covers_text_and_items_and_ignores_omitted_defaults() -> None:
    assert wf.minutes_digest({"text": "x"}) == wf.minutes_digest({"text": "x", "items": []})
    assert wf.minutes_digest({"text": "x"}) != wf.minutes_digest({"text": "y"})
    assert wf.minutes_digest(MINUTES) != wf.minutes_digest({**MINUTES, "items": MINUTES["items"][:1]})


def test_action_item_refusals() -> None:
    script = consultation_in("minutes_cosigned")
    with pytest.raises(InvalidTransition, match="no action item '9'"):
        script.send("consultation.item_done", IR, body={"item": "9"})
    with pytest.raises(InvalidTransition, match="belongs to ir:dgmo"):
        script.send("consultation.item_done", PK, body={"item": "1"})
    script.send("consultation.item_done", IR_LO, body={"item": "1"})
    with pytest.raises(InvalidTransition, match="already done"):
        script.send("consultation.item_done", IR, body={"item": "1"})


def test_overdue_items() -> None:
    script = consultation_in("minutes_proposed")
    assert wf.overdue_items(script.state, T0 + timedelta(days=100)) == []  # not agreed yet
    script.send("consultation.cosign", PK)
    script.send("consultation.cosign", IR)
    assert wf.overdue_items(script.state, T0 + timedelta(days=40)) == []
    assert [i.id for i in wf.overdue_items(script.state, T0 + timedelta(days=40, seconds=1))] == ["1"]
    assert [i.id for i in wf.overdue_items(script.state, T0 + timedelta(days=51))] == ["1", "2"]
    assert wf.is_overdue(script.state, T0 + timedelta(days=41))
    script.send("consultation.item_done", IR, body={"item": "1"})
    assert [i.id for i in wf.overdue_items(script.state, T0 + timedelta(days=51))] == ["2"]


def test_held_before_the_proposal_is_refused_and_before_the_start_is_flagged() -> None:
    script = consultation_in("agreed")  # proposed at hour 0, to start at day 28
    before = script.make("consultation.held", IR, body={"held_at": at(-0.5)})
    with pytest.raises(InvalidTransition) as refused:
        wf.apply_consultation(script.state, before)
    assert refused.value.detail == (
        f"consultation.held: held_at {at(-0.5)} is before the consultation was proposed ({at(0)}); "
        "a meeting cannot be held before it is proposed: check the date and time (UTC)"
    )
    assert script.state.status == "agreed"
    early = wf.apply_consultation(script.state, script.make("consultation.held", IR, body={"held_at": at(0)}))
    assert (early.status, early.held_at, early.held_before_start) == ("held", at(0), True)
    assert early.to_json()["held_before_start"] is True
    # Derived, not stored: the projection's JSON reads back as the same state.
    assert state_from_json("consultation", json.loads(json.dumps(early.to_json()))) == early
    on_time = consultation_in("agreed")
    late = on_time.send("consultation.held", PK, body={"held_at": at(24 * 28)}, hours=24 * 28 + 1)
    assert late.held_before_start is False and late.to_json()["held_before_start"] is False
    assert consultation_in("agreed").state.to_json()["held_before_start"] is False  # not held yet


def test_consultation_message_for_an_unknown_consultation() -> None:
    script = Consultation()
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply_consultation(None, env("consultation.agree", IR, PK, {}, refs=[str(uuid.uuid4())]))
    with pytest.raises(InvalidTransition, match="as its first ref"):
        wf.apply_consultation(script.state, env("consultation.agree", IR, PK, {}, refs=[str(uuid.uuid4())]))
    with pytest.raises(InvalidTransition, match="opens its own consultation"):
        wf.apply_consultation(script.state, env("consultation.propose", IR, PK, PROPOSE))
    with pytest.raises(InvalidTransition, match="not a consultation message"):
        wf.apply_consultation(script.state, env("action.consent", IR, PK, {}, refs=[script.state.id]))
    agree = script.make("consultation.agree", IR)
    once = wf.apply_consultation(script.state, agree)
    assert wf.apply_consultation(once, agree) is once


@pytest.mark.parametrize(
    ("status", "office", "allowed"),
    [
        ("proposed", IR, ["consultation.agree", "consultation.cancel"]),
        ("proposed", PK, ["consultation.cancel"]),
        ("held", IR, ["consultation.minutes"]),
        ("minutes_proposed", PK, ["consultation.minutes", "consultation.cosign"]),
        ("minutes_cosigned", IR, ["consultation.item_done"]),
        ("minutes_cosigned", PK_FS, ["consultation.item_done"]),
        ("cancelled", PK, []),
    ],
)
def test_allowed_consultation_types(status: str, office: str, allowed: list[str]) -> None:
    assert wf.allowed_types(consultation_in(status).state, office) == allowed


def test_a_party_that_cosigned_may_not_cosign_again() -> None:
    script = consultation_in("minutes_proposed")
    script.send("consultation.cosign", PK)
    assert wf.allowed_types(script.state, PK) == ["consultation.minutes"]


# Dispatch, order and fold ---------------------------------------------------------------------


def test_targets() -> None:
    report, case = open_case()
    prenotify = env("operation.prenotify", PK, IR, PRENOTIFY, case=case.id)
    consent = env("action.consent", IR, PK, {}, refs=[prenotify.id], case=case.id)
    assert wf.targets(report) == [("case", report.id)]
    assert wf.targets(prenotify) == [("action", prenotify.id), ("case", case.id)]
    assert wf.targets(consent) == [("action", prenotify.id), ("case", case.id)]
    assert wf.targets(env("statement", PK, IR, {"text": "x"})) == []
    assert wf.targets(env("case.update", PK, IR, {"status": "resolved"})) == [("case", "")]
    assert wf.targets(env("consultation.agree", IR, PK, {}, refs=[report.id])) == [("consultation", report.id)]
    assert wf.targets(env("clarification.response", IR, PK, {"answers": ["a"]}, refs=[report.id])) == [
        ("clarification", report.id)
    ]


def test_apply_dispatches_on_the_state_or_the_opener() -> None:
    report, case = open_case()
    assert isinstance(wf.apply(None, report), wf.Case)
    prenotify = env("operation.prenotify", PK, IR, PRENOTIFY, case=case.id)
    action = wf.apply(None, prenotify)
    assert isinstance(action, wf.Action)
    assert isinstance(wf.apply(case, prenotify), wf.Case)
    assert isinstance(wf.apply(None, env("consultation.propose", PK, IR, PROPOSE)), wf.Consultation)
    assert isinstance(wf.apply(None, env("clarification.request", PK, IR, {"questions": ["?"]})), wf.Clarification)
    with pytest.raises(InvalidTransition, match="belongs to no workflow"):
        wf.apply(None, env("statement", PK, IR, {"text": "x"}))
    with pytest.raises(InvalidTransition, match="does not belong to case"):
        wf.apply(case, env("action.consent", IR, PK, {}, refs=[action.id]))
    with pytest.raises(InvalidTransition, match="which is not known"):
        wf.apply(None, env("action.consent", IR, PK, {}, refs=[str(uuid.uuid4())]))


def crisis() -> list[Envelope]:
    """The January 2024 pattern: an incident, a case, a coordinated action, a consultation."""
    report = env("incident.report", PK, IR, INCIDENT, hours=0)
    case = report.id
    out = [report, env("code", IR, PK, {"code": "INVESTIGATING", "params": {}}, case=case, hours=0.5)]
    prenotify = env("operation.prenotify", PK, IR, PRENOTIFY, case=case, hours=1)
    out.append(prenotify)
    for hours, (kind, sender) in enumerate(
        [("action.consent", IR), ("action.execute", PK), ("action.report", PK), ("action.verify", IR_LO)], 2
    ):
        out.append(env(kind, sender, COUNTER[sender], ACTION_BODIES[kind], refs=[prenotify.id], case=case, hours=hours))
    out.append(env("case.update", IR, PK, {"status": "contained", "escalation": 1}, case=case, hours=30))
    propose = env("consultation.propose", PK, IR, PROPOSE, hours=31)
    minutes = env("consultation.minutes", IR, PK, MINUTES, refs=[propose.id], hours=34)
    digest = {"sha256": wf.minutes_digest(MINUTES)}
    out += [
        propose,
        env("consultation.agree", IR, PK, {}, refs=[propose.id], hours=32),
        env("consultation.held", PK, IR, {"held_at": at(33)}, refs=[propose.id], hours=33),
        minutes,
        env("consultation.cosign", IR, PK, digest, refs=[propose.id, minutes.id], hours=35),
        env("consultation.cosign", PK, IR, digest, refs=[propose.id, minutes.id], hours=36),
        env("case.update", PK, IR, {"status": "resolved", "escalation": 0}, case=case, hours=37),
    ]
    return out


def test_fold_derives_every_state() -> None:
    envelopes = crisis()
    projection = wf.fold(envelopes)
    assert projection.conflicts == ()
    (case,) = projection.cases.values()
    (action,) = projection.actions.values()
    (consultation,) = projection.consultations.values()
    assert (case.status, case.escalation) == ("resolved", (("ir", 1), ("pk", 0)))
    assert len(case.timeline) == 9  # report, code, prenotify, four action steps, two updates
    assert (action.status, action.case, action.unilateral) == ("verified", case.id, False)
    assert consultation.status == "minutes_cosigned"
    assert set(projection.states()) == {case.id, action.id, consultation.id}
    assert json.loads(json.dumps(projection.to_json()))["actions"][action.id]["status"] == "verified"


def test_fold_matches_step_by_step_apply() -> None:
    envelopes = crisis()
    states: dict[tuple[str, str], Any] = {}
    for envelope in envelopes:
        for kind, target in wf.targets(envelope):
            states[kind, target] = wf.apply(states.get((kind, target)), envelope)
    projection = wf.fold(envelopes)
    assert {sid: s for (_, sid), s in states.items()} == projection.states()


def test_both_sides_derive_the_same_state_whatever_the_arrival_order() -> None:
    envelopes = crisis()
    expected = wf.fold(envelopes)
    rng = random.Random(2024)
    for _ in range(20):
        shuffled = envelopes[:]
        rng.shuffle(shuffled)
        assert wf.fold(shuffled) == expected
    assert wf.fold(envelopes + envelopes) == expected  # duplicates count once


def test_order_follows_refs_even_against_skewed_clocks() -> None:
    prenotify = env("operation.prenotify", PK, IR, PRENOTIFY, hours=5)
    consent = env("action.consent", IR, PK, {}, refs=[prenotify.id], hours=4)  # ir's clock is behind
    assert wf.ordered([consent, prenotify]) == [prenotify, consent]
    assert wf.fold([consent, prenotify]).actions[prenotify.id].status == "consented"


def test_order_survives_a_cycle_of_refs() -> None:
    a_id, b_id = str(uuid.uuid4()), str(uuid.uuid4())
    a = env("statement", PK, IR, {"text": "a"}, refs=[b_id], id=a_id, hours=2)
    b = env("statement", PK, IR, {"text": "b"}, refs=[a_id], id=b_id, hours=1)
    assert wf.ordered([a, b]) == [b, a]


def test_concurrent_conflicting_updates_fold_deterministically() -> None:
    report, case = open_case()
    resolved = env("case.update", PK, IR, {"status": "resolved"}, case=case.id, hours=1)
    contained = env("case.update", IR, PK, {"status": "contained"}, case=case.id, hours=1.5)
    reopen_contained = env("case.update", IR, PK, {"status": "contained"}, case=case.id, hours=2)
    for order in itertools.permutations([report, resolved, contained, reopen_contained]):
        projection = wf.fold(order)
        assert projection.cases[case.id].status == "resolved"
        assert [(c.envelope, c.workflow) for c in projection.conflicts] == [
            (contained.id, "case"), (reopen_contained.id, "case"),
        ]  # fmt: skip
        assert "a resolved case cannot become contained" in projection.conflicts[0].reason


def test_fold_records_orphans_as_conflicts() -> None:
    stray = env("action.verify", IR_LO, PK_LO, {}, refs=[str(uuid.uuid4())])
    projection = wf.fold([stray])
    assert projection.actions == {} and len(projection.conflicts) == 1
    assert projection.conflicts[0].reason.endswith("which is not known")


def test_case_is_never_overdue_and_allows_updates() -> None:
    _, case = open_case()
    assert not wf.is_overdue(case, T0 + timedelta(days=365))
    # The side it was reported to may also ask for a clarification; the reporting side updates it.
    assert wf.allowed_types(case, IR) == ["case.update", "clarification.request"]
    assert wf.allowed_types(case, IR_LO) == ["case.update", "clarification.request"]
    assert wf.allowed_types(case, PK_LO) == ["case.update"]
    assert wf.allowed_types(case, "in:dgmo") == ["case.update"]
