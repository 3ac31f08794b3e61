"""The sender's rules beyond the schema: blank text, distinct evidence, and errors that name their field.

A sender refuses text that shows nothing (`bodies.is_blank`) and an evidence file listed twice,
but a receiver still stores such an envelope if an earlier release sealed it. Routing errors
(`check_route`, `get`) and the count of refs name the envelope member they are about.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import notifications as n
from detente.core.bodies import is_blank
from detente.core.envelope import seal
from detente.core.keys import Signer
from detente.core.precedence import Precedence, format_time, now
from detente.errors import Invalid

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
CREATED = datetime(2024, 1, 16, 13, 5, tzinfo=UTC)
REF = "018d1a2b-0000-7000-8000-000000000001"
REF2 = "018d1a2b-0000-7000-8000-000000000002"
A, B = "ab" * 32, "cd" * 32
LOCATION = {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz, Panjgur"}
INCIDENT = {
    "kind": "strike", "time": format_time(CREATED), "location": LOCATION,
    "description": "Missiles hit a house.", "assessment": "Deliberate.",
}  # fmt: skip


def item(sha256: str, name: str = "site.jpg") -> dict[str, Any]:
    return {"sha256": sha256, "name": name, "media_type": "image/jpeg", "size": 10}


def body_fields(name: str, body: dict[str, Any]) -> dict[str, str]:
    """Return the `fields` of the `Invalid` that `validate_body` (the sender's check) raises."""
    with pytest.raises(Invalid) as info:
        n.validate_body(name, body, AGREEMENT)
    fields: dict[str, str] = info.value.extra["fields"]
    return fields


def received(name: str, body: dict[str, Any], precedence: Precedence, refs: list[str]) -> None:
    """Run the receiver's checks (`validate_envelope`) on an envelope sealed with `body`."""
    sealed = seal(
        {
            "v": 1, "id": str(uuid.uuid4()), "agreement": "0" * 64, "channel": "dgmo", "from": "pk:dgmo",
            "to": "ir:dgmo", "seq": 1, "author": "duty", "precedence": precedence.value, "type": name,
            "lang": "en", "refs": refs, "case": None, "created": format_time(CREATED), "body": body,
        },
        Signer.generate("pk.detente/log"),
    )  # fmt: skip
    n.validate_envelope(sealed, AGREEMENT)


BLANK = [
    "", " ", "\n\t", "\u00a0\u3000", "\u200b", "\u200b\u200c\u200d", "\u200e\u200f", "\u2060", "\ufeff",
    "\u00ad", "\u202e", " \u200b \ufeff\n", "\x00\x1b", "\u3164", "\u115f\u1160", "\ufe0f", "\u034f",
]  # fmt: skip
WORDS = ["a", " a ", "\u200bhi", "پنجگور", "می\u200cشود", "0", "."]


@pytest.mark.parametrize("text", BLANK, ids=[repr(t) for t in BLANK])
def test_text_that_shows_nothing_is_blank(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", WORDS, ids=[repr(t) for t in WORDS])
def test_text_with_anything_visible_is_not_blank(text: str) -> None:
    # A zero-width non-joiner inside a Persian word is part of the word, not the whole text.
    assert not is_blank(text)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("description", {**INCIDENT, "description": "\u200b"}),
        ("assessment", {**INCIDENT, "assessment": "\u2060\ufeff"}),
        ("location.place", {**INCIDENT, "location": {**LOCATION, "place": "\u200c"}}),
    ],
)
def test_the_sender_refuses_invisible_text_in_a_field_that_must_say_something(path: str, body: dict[str, Any]) -> None:
    assert body_fields("incident.report", body) == {path: "must not be blank"}


def test_the_sender_refuses_an_invisible_line_in_a_list() -> None:
    assert body_fields("action.request_info", {"questions": ["Which villages?", "\u200b"]}) == {
        "questions.1": "must not be blank"
    }


def test_a_receiver_stores_invisible_text_an_earlier_release_sealed() -> None:
    # An earlier release judged blank with str.strip(): refusing its envelope would stall the channel.
    received("incident.report", {**INCIDENT, "description": "\u200b"}, Precedence.FLASH, [])
    received("hotline.text", {"text": "\u200b"}, Precedence.FLASH, [])


def test_a_receiver_still_refuses_whitespace_only_text() -> None:
    with pytest.raises(Invalid) as info:
        received("incident.report", {**INCIDENT, "description": " \n"}, Precedence.FLASH, [])
    assert info.value.extra["fields"] == {"description": "must not be blank"}


@pytest.mark.parametrize(
    ("evidence", "fields"),
    [
        ([item(A), item(A)], {"evidence.1": f"lists the same file (sha256 {A}) as evidence.0"}),
        (
            [item(A), item(B), item(A, "other name.jpg")],
            {"evidence.2": f"lists the same file (sha256 {A}) as evidence.0"},
        ),
        (
            [item(A), item(B), item(B), item(A)],
            {
                "evidence.2": f"lists the same file (sha256 {B}) as evidence.1",
                "evidence.3": f"lists the same file (sha256 {A}) as evidence.0",
            },
        ),
    ],
    ids=["twice", "same file under another name", "two files twice"],
)
@pytest.mark.parametrize(
    ("name", "body"),
    [("action.report", {"summary": "Done."}), ("action.verify", {}), ("action.dispute", {"reason": "No."})],
)
def test_the_sender_refuses_an_evidence_file_listed_twice(
    name: str, body: dict[str, Any], evidence: list[dict[str, Any]], fields: dict[str, str]
) -> None:
    with pytest.raises(Invalid) as info:
        n.validate_body(name, {**body, "evidence": evidence}, AGREEMENT)
    assert info.value.extra["fields"] == fields
    assert all(f"{key}: {message}" in info.value.detail for key, message in fields.items())


def test_distinct_evidence_files_are_accepted_and_a_receiver_stores_a_repeated_one() -> None:
    report = {"summary": "Done.", "evidence": [item(A), item(B)]}
    assert n.validate_body("action.report", report, AGREEMENT) == report
    received("action.report", {"summary": "Done.", "evidence": [item(A), item(A)]}, Precedence.IMMEDIATE, [REF])


def refused(call: Any, *args: Any) -> Invalid:
    with pytest.raises(Invalid) as info:
        call(*args)
    return info.value


def test_a_cosign_with_one_ref_says_what_the_two_refs_are() -> None:
    error = refused(n.check_route, "consultation.cosign", "dgmo", Precedence.ROUTINE, [REF], AGREEMENT)
    expected = (
        "consultation.cosign refs the consultation (its consultation.propose envelope), then the "
        "consultation.minutes envelope it co-signs: 2 references, got 1"
    )
    assert error.detail == expected and error.extra["fields"] == {"refs": expected}
    with pytest.raises(Invalid) as info:
        n.validate_message(
            "consultation.cosign", {"sha256": A}, AGREEMENT, created=CREATED, precedence=Precedence.ROUTINE, refs=[REF]
        )
    assert info.value.extra["fields"] == {"refs": expected}


@pytest.mark.parametrize(
    ("name", "count", "message"),
    [
        ("action.report", 0, "action.report refs the action (its operation.prenotify envelope): 1 reference, got 0"),
        ("consultation.agree", 2, "consultation.agree refs the consultation (its consultation.propose envelope): "
         "1 reference, got 2"),
        ("clarification.response", 0, "clarification.response refs the clarification.request it answers: "
         "1 reference, got 0"),
        ("ack", 2, "ack refs the message it answers: 1 reference, got 2"),
        ("status", 1, "status takes no references, got 1"),
        ("hotline.text", 33, "hotline.text takes 0 to 32 references, got 33"),
    ],
)  # fmt: skip
def test_a_wrong_number_of_refs_says_what_they_must_be(name: str, count: int, message: str) -> None:
    assert n.refs_problem(name, count) == message


def test_a_right_number_of_refs_is_no_problem() -> None:
    assert n.refs_problem("consultation.cosign", 2) is None
    assert n.refs_problem("hotline.text", 0) is None and n.refs_problem("hotline.text", 32) is None


@pytest.mark.parametrize(
    ("name", "channel", "precedence", "refs", "member", "detail"),
    [
        ("action.verify", "dgmo", Precedence.PRIORITY, [REF], "type",
         "channel 'dgmo' does not carry action.verify under the agreement"),
        ("incident.report", "dgmo", Precedence.ROUTINE, [], "precedence",
         "incident.report may not be sent ROUTINE; allowed: FLASH, IMMEDIATE, PRIORITY"),
        ("status", "dgmo", Precedence.ROUTINE, [], "channel", "status travels only on channel(s) node, not 'dgmo'"),
        ("action.consent", "dgmo", Precedence.IMMEDIATE, [REF, REF2], "refs",
         "action.consent refs the action (its operation.prenotify envelope): 1 reference, got 2"),
    ],
)  # fmt: skip
def test_a_route_error_names_the_envelope_member(
    name: str, channel: str, precedence: Precedence, refs: list[str], member: str, detail: str
) -> None:
    error = refused(n.check_route, name, channel, precedence, refs, AGREEMENT)
    assert error.detail == detail
    assert error.extra["fields"] == {member: detail}


def test_an_unknown_type_names_the_type_member() -> None:
    error = refused(n.get, "nonexistent.type")
    assert error.detail == "unknown message type 'nonexistent.type'"
    assert error.extra["fields"] == {"type": "not a message type"}


def test_a_body_that_is_not_an_object_names_the_body() -> None:
    assert refused(n.validate_body, "hotline.text", ["hi"], AGREEMENT).extra["fields"] == {
        "body": "must be a JSON object"
    }


def test_an_incident_dated_a_year_or_more_back_is_refused_by_the_sender_only() -> None:
    # QA6 #9: an incident report of year 1900 was accepted and sent.
    body = {
        "kind": "strike", "location": {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"},
        "description": "Missiles hit a house.", "assessment": "Deliberate.", "escalation": 3,
    }  # fmt: skip
    old = {**body, "time": "1900-01-16T13:05:00Z"}
    created, flash = now(), Precedence.FLASH
    with pytest.raises(Invalid) as refused:
        n.validate_message("incident.report", old, AGREEMENT, created=created, precedence=flash, sending=True)
    assert list(refused.value.extra["fields"]) == ["time"]
    assert "days before the message was created; at most 366 are taken" in refused.value.detail
    recent = {**body, "time": format_time(created - timedelta(days=30))}
    assert n.validate_message("incident.report", recent, AGREEMENT, created=created, precedence=flash, sending=True)
    # A receiver stores what an earlier release sealed: its rules do not include this one.
    assert n.validate_message("incident.report", old, AGREEMENT, created=created, precedence=flash)


def test_the_sender_refuses_an_action_item_already_due_and_a_receiver_stores_one() -> None:
    due = {"id": "A1", "title": "Post a liaison officer", "owner": "ir:fs", "due": format_time(CREATED)}
    later = {**due, "id": "A2", "due": format_time(CREATED + timedelta(days=7))}
    minutes = {"text": "Agreed.", "items": [later, due]}
    with pytest.raises(Invalid) as info:
        n.validate_message("consultation.minutes", minutes, AGREEMENT, created=CREATED, precedence=Precedence.ROUTINE,
                           refs=[REF], sending=True)  # fmt: skip
    said = "must be after the minutes are sent: an action item cannot start overdue"
    assert info.value.extra["fields"] == {"items.1.due": said}
    n.validate_message("consultation.minutes", {**minutes, "items": [later]}, AGREEMENT, created=CREATED,
                       precedence=Precedence.ROUTINE, refs=[REF], sending=True)  # fmt: skip
    received("consultation.minutes", minutes, Precedence.ROUTINE, [REF])  # sealed by an earlier release: kept


def test_a_sha256_in_capitals_is_refused_in_words() -> None:
    fields = body_fields("consultation.cosign", {"sha256": "AB" * 32})
    assert fields == {"sha256": "must be a SHA-256: 64 hexadecimal digits (0-9, a-f) in lower case"}
    with pytest.raises(Invalid) as info:
        n.validate_body("case.update", {"note": "nothing to change"}, AGREEMENT)
    assert info.value.detail == "case.update: body: give a status, an escalation level or both"  # not "body.body"
