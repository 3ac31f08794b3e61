"""Tests for the message catalog (`detente.core.notifications`): every type, rule and lead time."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import notifications as n
from detente.core.envelope import seal
from detente.core.keys import Signer
from detente.core.precedence import Precedence, format_time
from detente.errors import Invalid

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
CREATED = datetime(2024, 1, 16, 13, 5, tzinfo=UTC)
F, IMM, P, R = Precedence.FLASH, Precedence.IMMEDIATE, Precedence.PRIORITY, Precedence.ROUTINE
SHA = "ab" * 32
REF = "018d1a2b-0000-7000-8000-000000000001"
REF2 = "018d1a2b-0000-7000-8000-000000000002"
CASE = "018d1a2b-0000-7000-8000-0000000000ca"


def at(hours: float = 0, **delta: float) -> str:
    """A time `hours` (and `delta`) after CREATED, on the wire format."""
    return format_time(CREATED + timedelta(hours=hours, **delta))


def with_raw(**changes: Any) -> agreement_mod.Agreement:
    raw = copy.deepcopy(AGREEMENT.raw)
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return agreement_mod.from_dict(raw)


LOCATION = {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz, Panjgur"}
CIRCLE = {"center": {"lat": 27.35, "lon": 62.33}, "radius_km": 15.0, "place": "near Saravan"}
POLYGON = {"polygon": [{"lat": 27.0, "lon": 62.0}, {"lat": 27.1, "lon": 62.2}, {"lat": 26.9, "lon": 62.3}]}
EVIDENCE = {"sha256": SHA, "name": "strike-site.jpg", "media_type": "image/jpeg", "size": 123_456}

# type -> (body, precedence, refs, case): one valid message of every registered type.
VALID: dict[str, tuple[dict[str, Any], Precedence, list[str], str | None]] = {
    "hotline.text": ({"text": "Hello"}, F, [], None),
    "ack": ({}, R, [REF], None),
    "decline": ({"reason": "no authority"}, R, [REF], None),
    "overdue": ({"deadline": at(1)}, R, [REF], None),
    "status": ({"code": "TECH", "office": "pk:dgmo"}, R, [], None),
    "link.test": ({"nonce": "n1"}, R, [], None),
    "incident.report": (
        {
            "kind": "strike", "time": at(-1), "location": LOCATION,
            "description": "Missiles and drones hit a house and a mosque.",
            "casualties": {"killed": 2, "injured": 3}, "assessment": "Deliberate strike from across the border.",
            "escalation": 3,
        },
        F, [], None,
    ),
    "clarification.request": ({"questions": ["Who fired?", "Why?"], "deadline": at(48)}, IMM, [REF], CASE),
    "clarification.response": ({"answers": ["A.", "B."]}, IMM, [REF], CASE),
    "operation.prenotify": (
        {
            "area": CIRCLE, "window": {"start": at(30), "end": at(36)}, "forces": "Drones and rockets",
            "target_group": "BLF", "objective": "Destroy hideouts", "respond_by": at(12),
        },
        IMM, [], CASE,
    ),
    "missile.prenotify": (
        {
            "missile": "Ghauri", "launch_site": LOCATION, "impact_area": POLYGON,
            "window": {"start": at(72), "end": at(72 + 120)},
        },
        P, [], None,
    ),
    "exercise.prenotify": (
        {
            "name": "Sea Guardians", "domain": "naval", "area": CIRCLE,
            "window": {"start": at(336), "end": at(336 + 72)}, "forces": "Two frigates", "troops": 400,
        },
        R, [], None,
    ),
    "intel.share": (
        {
            "group": "Jaish al-Adl", "location": LOCATION, "confidence": "medium", "valid_until": at(24),
            "summary": "A cell is gathering near the border.",
        },
        IMM, [], None,
    ),
    "diplomatic.status": ({"event": "ambassador_recalled", "note": "Protest"}, IMM, [], None),
    "deescalation.proposal": ({"measures": ["Return ambassadors", "Meet on 29 Jan"]}, P, [], None),
    "statement": ({"text": "Pakistan condemns the violation of its airspace."}, IMM, [], None),
    "code": ({"code": "NO-HOSTILE-INTENT", "params": {"place": "Saravan"}}, F, [], None),
    "case.open": ({"title": "Panjgur strike", "escalation": 2}, F, [], None),
    "case.update": ({"status": "contained", "escalation": 1}, IMM, [], CASE),
    "action.consent": ({"conditions": ["Stay 5 km from villages"]}, IMM, [REF], None),
    "action.object": ({"reason": "Civilians in the area"}, IMM, [REF], None),
    "action.request_info": ({"questions": ["Which villages?"]}, IMM, [REF], None),
    "action.provide_info": ({"text": "None within 5 km."}, IMM, [REF], None),
    "action.withdraw": ({}, IMM, [REF], None),
    "action.execute": ({"started": at(0)}, F, [REF], None),
    "action.report": ({"summary": "Two hideouts destroyed.", "evidence": [EVIDENCE]}, IMM, [REF], None),
    "action.verify": ({"note": "Seen on site."}, P, [REF], None),
    "action.dispute": ({"reason": "Civilian house hit.", "evidence": [EVIDENCE]}, P, [REF], None),
    "consultation.propose": (
        {
            "title": "Border security, February", "agenda": ["Incidents"], "start": at(24 * 30),
            "venue": "Taftan", "schedule": "border-security",
        },
        R, [], None,
    ),
    "consultation.agree": ({}, R, [REF], None),
    "consultation.cancel": ({"reason": "Holiday"}, R, [REF], None),
    "consultation.held": ({"held_at": at(-2), "participants": ["DGMO Pakistan", "DGMO Iran"]}, R, [REF], None),
    "consultation.minutes": (
        {"text": "Agreed ...", "items": [{"id": "1", "title": "Exchange lists", "owner": "ir:dgmo", "due": at(240)}]},
        R, [REF], None,
    ),
    "consultation.cosign": ({"sha256": SHA}, R, [REF, REF2], None),
    "consultation.item_done": ({"item": "1"}, R, [REF], None),
    "translation": ({"lang": "fa", "text": "پهپاد بر فراز کچ دیده شد"}, F, [REF], None),
    "translation.review": ({"verdict": "certified"}, F, [REF], None),
}  # fmt: skip


def check(name: str, body: dict[str, Any] | None = None, agreement: agreement_mod.Agreement = AGREEMENT,
          **over: Any) -> dict[str, Any]:  # fmt: skip
    base, precedence, refs, case = VALID[name]
    return n.validate_message(
        name, base if body is None else body, agreement, created=over.get("created", CREATED),
        precedence=over.get("precedence", precedence), refs=over.get("refs", refs), case=over.get("case", case),
    )  # fmt: skip


def errors(name: str, body: dict[str, Any] | None = None, **over: Any) -> dict[str, str]:
    with pytest.raises(Invalid) as info:
        check(name, body, **over)
    fields: dict[str, str] = info.value.extra["fields"]
    assert info.value.detail
    return fields


def test_every_registered_type_has_a_valid_example() -> None:
    assert set(VALID) == set(n.CATALOG)


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_type_accepts_a_valid_message(name: str) -> None:
    assert check(name) == VALID[name][0]
    assert n.validate_body(name, VALID[name][0], AGREEMENT) == VALID[name][0]


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_type_has_a_json_schema(name: str) -> None:
    schema = n.get(name).json_schema()
    assert schema["type"] == "object"


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_type_refuses_unknown_members(name: str) -> None:
    assert "surprise" in errors(name, {**VALID[name][0], "surprise": 1})


def patch(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a deep copy of `body` with `path` (dotted) set to `value`, or removed if value is DROP."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DROP:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return out


DROP = object()
# (type, path changed, new value, field the error names)
INVALID = [
    ("incident.report", "kind", "invasion", "kind"),
    ("incident.report", "time", "2024-01-16 12:00", "time"),
    ("incident.report", "time", "2024-01-16T12:00:00+05:00", "time"),
    ("incident.report", "location.lat", 91.0, "location.lat"),
    ("incident.report", "location.lon", -181.0, "location.lon"),
    ("incident.report", "location.place", " ", "location.place"),
    ("incident.report", "description", "", "description"),
    ("incident.report", "casualties.killed", -1, "casualties.killed"),
    ("incident.report", "casualties.killed", "2", "casualties.killed"),
    ("incident.report", "assessment", DROP, "assessment"),
    ("incident.report", "escalation", 6, "escalation"),
    ("incident.report", "escalation", -1, "escalation"),
    ("clarification.request", "questions", [], "questions"),
    ("clarification.request", "questions", ["x"] * 21, "questions"),
    ("clarification.request", "deadline", "tomorrow", "deadline"),
    ("clarification.response", "answers", [], "answers"),
    ("operation.prenotify", "area", {"center": {"lat": 1.0, "lon": 2.0}}, "area"),
    ("operation.prenotify", "area", {"radius_km": 3.0}, "area"),
    ("operation.prenotify", "area", {**CIRCLE, **POLYGON}, "area"),
    ("operation.prenotify", "area", {}, "area"),
    ("operation.prenotify", "area.radius_km", 0.0, "area.radius_km"),
    ("operation.prenotify", "area", {"polygon": POLYGON["polygon"][:2]}, "area.polygon"),
    ("operation.prenotify", "window.end", at(30), "window"),
    ("operation.prenotify", "window.end", at(29), "window"),
    ("operation.prenotify", "forces", DROP, "forces"),
    ("operation.prenotify", "target_group", "", "target_group"),
    ("operation.prenotify", "objective", 5, "objective"),
    ("missile.prenotify", "launch_site.place", DROP, "launch_site.place"),
    ("missile.prenotify", "impact_area", {}, "impact_area"),
    ("missile.prenotify", "window", {"start": at(80)}, "window.end"),
    ("exercise.prenotify", "domain", "space", "domain"),
    ("exercise.prenotify", "troops", -5, "troops"),
    ("exercise.prenotify", "name", DROP, "name"),
    ("intel.share", "confidence", "certain", "confidence"),
    ("intel.share", "valid_until", DROP, "valid_until"),
    ("intel.share", "group", "", "group"),
    ("diplomatic.status", "event", "war_declared", "event"),
    ("deescalation.proposal", "measures", [], "measures"),
    ("statement", "text", "", "text"),
    ("statement", "text", "x" * 10_001, "text"),
    ("code", "code", "no-hostile-intent", "code"),
    ("code", "params", {"place": True}, "params.place"),
    ("code", "params", {"place": ["a"]}, "params.place"),
    ("case.open", "title", "", "title"),
    ("case.update", "status", "escalated", "status"),
    ("action.object", "reason", DROP, "reason"),
    ("action.request_info", "questions", [], "questions"),
    ("action.provide_info", "text", "", "text"),
    ("action.execute", "started", DROP, "started"),
    ("action.report", "evidence", [{**EVIDENCE, "sha256": "AB" * 32}], "evidence.0.sha256"),
    ("action.report", "evidence", [{**EVIDENCE, "media_type": "application/x-msdownload"}], "evidence.0.media_type"),
    ("action.report", "evidence", [{**EVIDENCE, "size": 0}], "evidence.0.size"),
    ("action.report", "evidence", [{**EVIDENCE, "size": 20 * 1024 * 1024 + 1}], "evidence.0.size"),
    ("action.report", "evidence", [EVIDENCE] * 21, "evidence"),
    ("action.dispute", "reason", " ", "reason"),
    ("consultation.propose", "agenda", [], "agenda"),
    ("consultation.propose", "schedule", "Border Security", "schedule"),
    ("consultation.propose", "venue", DROP, "venue"),
    ("consultation.cancel", "reason", DROP, "reason"),
    ("consultation.held", "held_at", "yesterday", "held_at"),
    ("consultation.minutes", "text", "", "text"),
    ("consultation.minutes", "items.0.owner", "Iran DGMO", "items.0.owner"),
    ("consultation.minutes", "items.0.id", "has space", "items.0.id"),
    ("consultation.minutes", "items", [VALID["consultation.minutes"][0]["items"][0]] * 2, "items"),
    ("consultation.cosign", "sha256", "xyz", "sha256"),
    ("consultation.item_done", "item", DROP, "item"),
]


@pytest.mark.parametrize(("name", "path", "value", "field"), INVALID)
def test_invalid_bodies_name_the_field(name: str, path: str, value: Any, field: str) -> None:
    assert field in errors(name, patch(VALID[name][0], path, value))


def test_case_update_must_change_something() -> None:
    assert errors("case.update", {"note": "nothing"}) == {"body": "give a status, an escalation level or both"}


def test_body_that_is_not_an_object_is_refused() -> None:
    assert errors("statement", ["text"])["body"] == "body must be a JSON object"  # type: ignore[arg-type]


LEAD_TIMES = [("operation.prenotify", 24), ("missile.prenotify", 72), ("exercise.prenotify", 336)]


@pytest.mark.parametrize(("name", "hours"), LEAD_TIMES)
def test_lead_time_exactly_at_the_boundary_is_accepted(name: str, hours: int) -> None:
    body = patch(VALID[name][0], "window", {"start": at(hours), "end": at(hours + 1)})
    body.pop("respond_by", None)
    assert check(name, body) == body


@pytest.mark.parametrize(("name", "hours"), LEAD_TIMES)
def test_lead_time_one_millisecond_short_is_refused(name: str, hours: int) -> None:
    body = patch(VALID[name][0], "window", {"start": at(hours, milliseconds=-1), "end": at(hours + 1)})
    body.pop("respond_by", None)
    fields = errors(name, body)
    assert fields == {"window.start": f"lead time {hours - 1} h 59 min is below the agreement's {hours} h for {name}"}


@pytest.mark.parametrize(("name", "hours"), LEAD_TIMES)
def test_lead_time_in_the_past_is_refused(name: str, hours: int) -> None:
    body = patch(VALID[name][0], "window", {"start": at(-3), "end": at(1)})
    body.pop("respond_by", None)
    assert errors(name, body)["window.start"] == f"lead time -3 h is below the agreement's {hours} h for {name}"


def test_missile_lead_time_error_reads_as_the_issue_says() -> None:
    body = patch(VALID["missile.prenotify"][0], "window", {"start": at(41), "end": at(50)})
    with pytest.raises(Invalid) as info:
        check("missile.prenotify", body)
    assert info.value.detail == "window.start: lead time 41 h is below the agreement's 72 h for missile.prenotify"


def test_missile_lead_time_floor_holds_when_the_agreement_is_silent() -> None:
    silent = with_raw(lead_times=None)
    body = patch(VALID["missile.prenotify"][0], "window", {"start": at(71), "end": at(80)})
    with pytest.raises(Invalid) as info:
        check("missile.prenotify", body, silent)
    assert (
        info.value.extra["fields"]["window.start"]
        == "lead time 71 h is below the minimum of 72 h for missile.prenotify"
    )
    assert check("missile.prenotify", patch(body, "window.start", at(72)), silent)


def test_agreement_may_raise_the_missile_lead_time() -> None:
    strict = with_raw(lead_times={"missile.prenotify": 96})
    body = patch(VALID["missile.prenotify"][0], "window", {"start": at(95), "end": at(100)})
    assert "96 h" in errors("missile.prenotify", body, agreement=strict)["window.start"]
    assert check("missile.prenotify", patch(body, "window.start", at(96)), strict)


@pytest.mark.parametrize("name", ["operation.prenotify", "exercise.prenotify"])
def test_without_an_agreed_lead_time_the_window_may_not_start_before_the_message(name: str) -> None:
    silent = with_raw(lead_times=None, response_deadlines=None)
    body = patch(VALID[name][0], "window", {"start": at(-1), "end": at(5)})
    body.pop("respond_by", None)
    fields = errors(name, body, agreement=silent)
    assert fields == {"window.start": "the window starts 1 h before the message was created"}
    assert check(name, patch(body, "window.start", at(0)), silent)


@pytest.mark.parametrize(
    ("name", "days"), [("missile.prenotify", 5), ("operation.prenotify", 30), ("exercise.prenotify", 90)]
)
def test_window_length_limit(name: str, days: int) -> None:
    start = VALID[name][0]["window"]["start"]
    end = format_time(datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(days=days))
    assert check(name, patch(VALID[name][0], "window.end", end))
    longer = end.replace(".000Z", ".001Z")
    assert f"allows at most {days} days" in errors(name, patch(VALID[name][0], "window.end", longer))["window.end"]


def test_respond_by_must_fall_between_created_and_the_window_start() -> None:
    body = VALID["operation.prenotify"][0]
    assert errors("operation.prenotify", patch(body, "respond_by", at(31))) == {
        "respond_by": "must not be after window.start"
    }
    assert errors("operation.prenotify", patch(body, "respond_by", at(0))) == {
        "respond_by": "must be after the message is created"
    }


@pytest.mark.parametrize(
    ("name", "path"),
    [("incident.report", "time"), ("action.execute", "started"), ("consultation.held", "held_at")],
)
def test_past_events_may_not_lie_in_the_future(name: str, path: str) -> None:
    assert check(name, patch(VALID[name][0], path, at(0, minutes=5)))
    assert path in errors(name, patch(VALID[name][0], path, at(0, minutes=5, seconds=1)))


@pytest.mark.parametrize(
    ("name", "path"),
    [("clarification.request", "deadline"), ("intel.share", "valid_until"), ("consultation.propose", "start")],
)
def test_deadlines_lie_after_created(name: str, path: str) -> None:
    assert errors(name, patch(VALID[name][0], path, at(0))) == {path: "must be after the message is created"}
    assert check(name, patch(VALID[name][0], path, at(0, milliseconds=1)))


def test_time_rules_are_skipped_by_validate_body_but_not_the_others() -> None:
    late = patch(VALID["missile.prenotify"][0], "window", {"start": at(1), "end": at(2)})
    assert n.validate_body("missile.prenotify", late, AGREEMENT) == late
    long = patch(VALID["missile.prenotify"][0], "window.end", at(72 + 121))
    with pytest.raises(Invalid) as info:
        n.validate_body("missile.prenotify", long, AGREEMENT)
    assert "window.end" in info.value.extra["fields"]


PRECEDENCE_REFUSED = [
    ("incident.report", R), ("missile.prenotify", F), ("exercise.prenotify", F), ("exercise.prenotify", IMM),
    ("diplomatic.status", F), ("statement", F), ("consultation.propose", F), ("consultation.cosign", F),
]  # fmt: skip


@pytest.mark.parametrize(("name", "precedence"), PRECEDENCE_REFUSED)
def test_precedence_not_allowed_for_the_type(name: str, precedence: Precedence) -> None:
    assert "may not be sent" in errors(name, precedence=precedence)["precedence"]


@pytest.mark.parametrize("precedence", [F, IMM, P])
def test_incident_report_precedences(precedence: Precedence) -> None:
    assert check("incident.report", precedence=precedence)


REFS_REFUSED = [
    ("clarification.response", []), ("clarification.response", [REF, REF2]), ("action.consent", []),
    ("action.verify", [REF, REF2]), ("consultation.cosign", [REF]), ("consultation.agree", []),
]  # fmt: skip


@pytest.mark.parametrize(("name", "refs"), REFS_REFUSED)
def test_wrong_number_of_refs(name: str, refs: list[str]) -> None:
    assert "reference" in errors(name, refs=refs)["refs"]


def test_case_update_needs_its_case() -> None:
    assert errors("case.update", case=None) == {"case": "case.update must name the case it belongs to"}


def test_envelope_level_and_body_errors_are_reported_together() -> None:
    fields = errors("incident.report", patch(VALID["incident.report"][0], "kind", "x"), precedence=R, refs=[])
    assert set(fields) == {"precedence", "kind"}


def test_code_must_be_in_the_codebook() -> None:
    assert errors("code", {"code": "SURRENDER"}) == {"code": "SURRENDER is not in the agreement's codebook"}


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "params.place"), ({"place": "x", "time": "y"}, "params.time"), ({"place": 3}, "params.place"),
     ({"place": ""}, "params.place")],
)  # fmt: skip
def test_code_params_must_fit_the_entry(params: dict[str, Any], field: str) -> None:
    assert field in errors("code", {"code": "NO-HOSTILE-INTENT", "params": params})


def test_code_param_types() -> None:
    good = {"code": "CASUALTIES-CONFIRMED", "params": {"place": "Sirkan", "killed": 9, "injured": 3}}
    assert check("code", good)
    assert "params.killed" in errors("code", patch(good, "params.killed", 9.5))
    assert check("code", {"code": "EVACUATE-AREA", "params": {"place": "Mand", "radius_km": 7.5}})
    assert check("code", {"code": "AMBASSADOR-RETURNING", "params": {"date": "2024-01-26"}})
    assert "params.date" in errors("code", {"code": "AMBASSADOR-RETURNING", "params": {"date": "2024-02-30"}})
    assert "params.time" in errors("code", {"code": "REQUEST-CALL", "params": {"time": "noon"}})


def test_consultation_schedule_must_exist() -> None:
    body = patch(VALID["consultation.propose"][0], "schedule", "weekly-tea")
    assert errors("consultation.propose", body) == {"schedule": "'weekly-tea' is not a consultation of the agreement"}


def test_minutes_item_owner_must_be_an_office() -> None:
    body = patch(VALID["consultation.minutes"][0], "items.0.owner", "ir:navy")
    assert errors("consultation.minutes", body) == {"items.0.owner": "ir:navy is not an office of the agreement"}


def test_unknown_type() -> None:
    with pytest.raises(Invalid, match="unknown message type"):
        n.validate_message("telegram", {}, AGREEMENT, created=CREATED, precedence=F)


def test_with_defaults_fills_the_agreed_deadlines() -> None:
    request = {"questions": ["Why?"]}
    assert n.with_defaults("clarification.request", request, AGREEMENT, CREATED)["deadline"] == at(48)
    op = {k: v for k, v in VALID["operation.prenotify"][0].items() if k != "respond_by"}
    assert n.with_defaults("operation.prenotify", op, AGREEMENT, CREATED)["respond_by"] == at(12)
    soon = patch(op, "window.start", at(6))
    assert n.with_defaults("operation.prenotify", soon, AGREEMENT, CREATED)["respond_by"] == at(6)


def test_with_defaults_keeps_what_is_given_and_skips_what_is_not_agreed() -> None:
    request = {"questions": ["Why?"], "deadline": at(5)}
    assert n.with_defaults("clarification.request", request, AGREEMENT, CREATED) is request
    op = {k: v for k, v in VALID["operation.prenotify"][0].items() if k != "respond_by"}
    assert n.with_defaults("operation.prenotify", op, with_raw(response_deadlines=None), CREATED) == op
    assert n.with_defaults("operation.prenotify", {"window": "bad"}, AGREEMENT, CREATED) == {"window": "bad"}
    assert n.with_defaults("statement", {"text": "x"}, AGREEMENT, CREATED) == {"text": "x"}
    silent = with_raw(response_deadlines=None)
    assert n.with_defaults("clarification.request", {"questions": ["?"]}, silent, CREATED)["deadline"] == at(48)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "The activity at Saravan is not directed against your state. We have no hostile intent."),
        ("ur", "Saravan میں جاری سرگرمی آپ کی ریاست کے خلاف نہیں ہے۔ ہمارا کوئی معاندانہ ارادہ نہیں ہے۔"),
        ("fa", "فعالیت در Saravan علیه کشور شما نیست. ما هیچ قصد خصمانه\u200cای نداریم."),
    ],
)
def test_render_code_in_every_language(lang: str, text: str) -> None:
    assert n.render_code(VALID["code"][0], AGREEMENT, lang) == text


def test_render_code_refuses_unknown_codes_and_languages() -> None:
    with pytest.raises(Invalid, match="codebook"):
        n.render_code({"code": "SURRENDER"}, AGREEMENT, "en")
    with pytest.raises(Invalid, match="no text in 'de'"):
        n.render_code(VALID["code"][0], AGREEMENT, "de")


def test_shipped_agreement_passes_check_agreement() -> None:
    n.check_agreement(AGREEMENT)


@pytest.mark.parametrize(("types", "message"), [(["telegram"], "unknown message type"), (["status"], "reserved")])
def test_check_agreement_refuses_bad_channel_types(types: list[str], message: str) -> None:
    raw = copy.deepcopy(AGREEMENT.raw)
    raw["channels"]["fs"]["types"] = types
    with pytest.raises(Invalid, match=message):
        n.check_agreement(agreement_mod.from_dict(raw))


def sealed(name: str, channel: str, sender: str, recipient: str, **over: Any) -> Any:
    body, precedence, refs, case = VALID[name]
    fields = {
        "v": 1, "id": str(uuid.uuid4()), "agreement": "0" * 64, "channel": channel, "from": sender,
        "to": recipient, "seq": 1, "author": "duty", "precedence": precedence.value, "type": name, "lang": "en",
        "refs": refs, "case": case, "created": at(0), "body": body,
    }  # fmt: skip
    fields.update(over)
    return seal(fields, Signer.generate("pk.detente/log"))


def test_validate_envelope_runs_route_and_message_rules() -> None:
    n.validate_envelope(sealed("incident.report", "dgmo", "pk:dgmo", "ir:dgmo"), AGREEMENT)
    with pytest.raises(Invalid, match="does not carry incident.report"):
        n.validate_envelope(sealed("incident.report", "fs", "pk:fs", "ir:fs"), AGREEMENT)
    with pytest.raises(Invalid, match="lead time"):
        n.validate_envelope(sealed("missile.prenotify", "fs", "pk:fs", "ir:fs", created=at(1)), AGREEMENT)


@pytest.mark.parametrize(
    ("name", "channel"),
    [("action.verify", "liaison"), ("action.consent", "dgmo"), ("diplomatic.status", "fs"), ("code", "fs"),
     ("code", "dgmo"), ("code", "liaison"), ("operation.prenotify", "dgmo"), ("consultation.cosign", "dgmo")],
)  # fmt: skip
def test_shipped_channels_carry_the_workflow_types(name: str, channel: str) -> None:
    _, precedence, refs, _ = VALID[name]
    n.check_route(name, channel, precedence, refs, AGREEMENT)


@pytest.mark.parametrize(
    ("name", "channel"), [("action.verify", "dgmo"), ("diplomatic.status", "dgmo"), ("operation.prenotify", "fs")]
)
def test_shipped_channels_refuse_misplaced_types(name: str, channel: str) -> None:
    _, precedence, refs, _ = VALID[name]
    with pytest.raises(Invalid, match="does not carry"):
        n.check_route(name, channel, precedence, refs, AGREEMENT)


def test_openers_are_marked() -> None:
    opens = {name: kind.opens for name, kind in n.CATALOG.items() if kind.opens}
    assert opens == {
        "incident.report": "case", "case.open": "case", "clarification.request": "clarification",
        "operation.prenotify": "action", "consultation.propose": "consultation",
    }  # fmt: skip
