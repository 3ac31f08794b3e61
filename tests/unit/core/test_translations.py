"""Tests for certified translations' types and rules (`detente.core.translations`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import notifications as n
from detente.core import translations as tr
from detente.core.precedence import Precedence
from detente.errors import Conflict, Forbidden, Invalid

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
CREATED = datetime(2024, 1, 16, 13, 5, tzinfo=UTC)
REF = "018d1a2b-0000-7000-8000-000000000001"
FA = "پهپادی بر فراز بخش کچ دیده شد"


def fields(
    name: str, body: Any, refs: list[str] | None = None, precedence: Precedence = Precedence.FLASH
) -> dict[str, str]:
    with pytest.raises(Invalid) as info:
        n.validate_message(
            name, body, AGREEMENT, created=CREATED, precedence=precedence, refs=[REF] if refs is None else refs
        )
    found: dict[str, str] = info.value.extra["fields"]
    return found


def test_both_types_are_service_messages_never_acknowledged_with_one_ref() -> None:
    for name in tr.TYPES:
        kind = n.get(name)
        assert (kind.service, kind.needs_ack, kind.refs) == (True, False, (1, 1))
        assert kind.precedences == frozenset(Precedence)  # a FLASH message's translation is FLASH too


def test_a_translation_travels_on_a_channel_that_does_not_list_it() -> None:
    # The agreement's `types` list the messages offices send; a translation goes with any of them.
    assert "translation" not in (AGREEMENT.channel("dgmo").types or ())
    n.check_route("translation", "dgmo", Precedence.FLASH, [REF], AGREEMENT)
    n.check_route("translation.review", "liaison", Precedence.ROUTINE, [REF], AGREEMENT)


def test_a_valid_translation_and_review_pass() -> None:
    body = {"lang": "fa", "text": FA}
    assert (
        n.validate_message("translation", body, AGREEMENT, created=CREATED, precedence=Precedence.FLASH, refs=[REF])
        == body
    )
    assert n.validate_body("translation.review", {"verdict": "certified"}, AGREEMENT) == {"verdict": "certified"}
    disputed = {"verdict": "disputed", "note": "«بخش» is a district, not a county"}
    assert n.validate_body("translation.review", disputed, AGREEMENT) == disputed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lang": "de", "text": FA}, "lang"),
        ({"lang": "f", "text": FA}, "lang"),
        ({"lang": "fa", "text": ""}, "text"),
        ({"lang": "fa", "text": " \u200b\u2060 "}, "text"),
        ({"lang": "fa", "text": "x" * 10_001}, "text"),
        ({"lang": "fa"}, "text"),
        ({"text": FA}, "lang"),
        ({"lang": "fa", "text": FA, "certified": True}, "certified"),
        ({"lang": 7, "text": FA}, "lang"),
    ],
)
def test_a_bad_translation_names_its_field(body: dict[str, Any], field: str) -> None:
    assert field in fields("translation", body)


def test_a_translation_refers_to_exactly_one_message() -> None:
    assert fields("translation", {"lang": "fa", "text": FA}, refs=[])["refs"] == (
        "translation refs the message it translates: 1 reference, got 0"
    )
    assert "refs" in fields("translation.review", {"verdict": "certified"}, refs=[REF, REF])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"verdict": "disputed"}, "note"),
        ({"verdict": "disputed", "note": " \u200b "}, "note"),
        ({"verdict": "approved"}, "verdict"),
        ({}, "verdict"),
        ({"verdict": "certified", "note": "x" * 2_001}, "note"),
    ],
)
def test_a_bad_review_names_its_field(body: dict[str, Any], field: str) -> None:
    assert field in fields("translation.review", body)
    with pytest.raises(Invalid) as info:
        n.validate_body("translation.review", body, AGREEMENT)
    assert field in info.value.extra["fields"]


def original(**over: Any) -> tr.Original:
    values: dict[str, Any] = {
        "id": REF,
        "type": "hotline.text",
        "service": False,
        "lang": "en",
        "direction": "in",
        "peer": "pk",
    }
    return tr.Original(**{**values, **over})


def test_a_message_is_translated_into_another_language_of_the_agreement() -> None:
    tr.check_translatable(original(), "fa", AGREEMENT.languages)
    tr.check_translatable(original(direction="out", lang="fa"), "en", AGREEMENT.languages)
    with pytest.raises(Invalid) as same:
        tr.check_translatable(original(), "en", AGREEMENT.languages)
    assert same.value.extra["fields"] == {
        "lang": "the message is already in en: translate it into another of en, ur, fa"
    }
    with pytest.raises(Invalid) as unknown:
        tr.check_translatable(original(), "de", AGREEMENT.languages)
    assert "lang" in unknown.value.extra["fields"]


@pytest.mark.parametrize(("over", "says"), [
    ({"type": "ack", "service": True}, "ack is a service message"),
    ({"type": "translation", "service": True}, "translation is a service message"),
    ({"direction": "local"}, "did not travel between two parties"),
])  # fmt: skip
def test_service_messages_and_local_records_are_not_translated(over: dict[str, Any], says: str) -> None:
    with pytest.raises(Invalid, match=says):
        tr.check_translatable(original(**over), "fa", AGREEMENT.languages)


TRANSLATION = tr.Reviewed(id=REF, type="translation", author="op-1", party="ir")


def test_another_translator_of_the_same_side_reviews() -> None:
    tr.check_reviewer(TRANSLATION, "op-2", "ir")
    tr.check_reviewer(TRANSLATION, "op-3", "ir", earlier=["op-2"])


def test_the_author_may_not_review_their_own_translation() -> None:
    with pytest.raises(Forbidden, match=r"two-person rule"):
        tr.check_reviewer(TRANSLATION, "op-1", "ir")


def test_a_side_reviews_only_its_own_translations() -> None:
    with pytest.raises(Forbidden, match="a side reviews only its own translations"):
        tr.check_reviewer(TRANSLATION, "op-9", "pk")


def test_a_reviewer_reviews_once() -> None:
    with pytest.raises(Conflict, match="already reviewed"):
        tr.check_reviewer(TRANSLATION, "op-2", "ir", earlier=["op-2"])


def test_only_a_translation_is_reviewed() -> None:
    with pytest.raises(Invalid, match="is a hotline.text, not a translation"):
        tr.check_reviewer(tr.Reviewed(id=REF, type="hotline.text", author="op-1", party="ir"), "op-2", "ir")


def test_a_certification_stands_beside_a_later_dispute() -> None:
    assert tr.certified([]) is False
    assert tr.certified([{"verdict": "disputed", "note": "wrong"}]) is False
    assert tr.certified([{"verdict": "certified"}, {"verdict": "disputed", "note": "wrong"}]) is True


@pytest.mark.parametrize(
    ("kind", "created", "allowance", "says"),
    [
        (tr.TRANSLATION, "2024-01-16T13:04:58.999Z", tr.SAME_CLOCK, "1.0 s before the message it translates"),
        (tr.REVIEW, "2024-01-16T12:59:59.999Z", tr.OTHER_CLOCK, "5 min 0 s before the translation it reviews"),
    ],
)
def test_what_is_stamped_before_what_it_is_about_is_refused(
    kind: str, created: str, allowance: float, says: str
) -> None:
    with pytest.raises(Invalid, match=says) as info:
        tr.check_not_before(kind, created, "2024-01-16T13:05:00.000Z", allowance)
    assert set(info.value.extra["fields"]) == {"created"}


def test_what_is_stamped_after_or_within_the_allowance_is_taken() -> None:
    about = "2024-01-16T13:05:00.000Z"
    for created, allowance in (("2024-01-16T13:05:00.000Z", 0.0), ("2024-01-16T13:04:59.500Z", tr.SAME_CLOCK),
                               ("2024-01-16T13:00:00Z", tr.OTHER_CLOCK), ("2024-01-17T00:00:00Z", 0.0)):  # fmt: skip
        tr.check_not_before(tr.TRANSLATION, created, about, allowance)
    with pytest.raises(Invalid, match="RFC 3339"):
        tr.check_not_before(tr.TRANSLATION, "yesterday", about, tr.SAME_CLOCK)
