"""Tests for the agreement's vocabulary tables (`detente.core.codebook`)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import codebook as cb
from detente.core.precedence import Precedence
from detente.errors import Invalid

ROOT = Path(__file__).resolve().parents[3]
RAW = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8")).raw
BOOK = cb.codebook(RAW)
SAMPLE = {"text": "Saravan", "int": 9, "number": 7.5, "time": "2024-01-18T01:00:00Z", "date": "2024-01-26"}
SHOWN = {"text": "Saravan", "int": "9", "number": "7.5", "time": "2024-01-18 01:00 UTC", "date": "2024-01-26"}
ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF]")


def raw_with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def entry(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": "LO-DISPATCHED",
        "params": {"place": "text", "time": "time"},
        "text": {"en": "LO to {place} by {time}.", "ur": "{place} {time} ur", "fa": "{place} {time} fa"},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sample(code: str) -> dict[str, Any]:
    return {name: SAMPLE[kind] for name, kind in BOOK[code].params.items()}


def test_shipped_codebook_has_at_least_twelve_entries_in_three_languages() -> None:
    assert len(BOOK) >= 12
    assert cb.languages(RAW) == ("en", "ur", "fa")
    for item in BOOK.values():
        assert set(item.text) == {"en", "ur", "fa"}
        assert not ARABIC_SCRIPT.search(item.text["en"])
        # Urdu and Persian are stored as Unicode in their own script, not transliterated.
        for lang in ("ur", "fa"):
            letters = [c for c in re.sub(r"\{\w+\}", "", item.text[lang]) if c.isalpha()]
            assert sum(bool(ARABIC_SCRIPT.match(c)) for c in letters) / len(letters) == 1


def test_shipped_codebook_has_the_issue_codes() -> None:
    wanted = {
        "NO-HOSTILE-INTENT", "INVESTIGATING", "REQUEST-CALL", "STAND-DOWN", "STRIKE-NOT-DIRECTED-AT-STATE",
        "LO-DISPATCHED", "MESSAGE-RECEIVED", "REQUEST-CLARIFICATION", "CEASE-FIRE-AT-LOCATION", "EVACUATE-AREA",
        "AMBASSADOR-RETURNING", "JOINT-INVESTIGATION-PROPOSED",
    }  # fmt: skip
    assert wanted <= set(BOOK)


@pytest.mark.parametrize("lang", ["en", "ur", "fa"])
@pytest.mark.parametrize("code", sorted(BOOK))
def test_every_shipped_entry_renders_in_every_language(code: str, lang: str) -> None:
    params = sample(code)
    text = cb.render(BOOK[code], params, lang)
    assert "{" not in text and "}" not in text
    for name, kind in BOOK[code].params.items():
        assert SHOWN[kind] in text, name


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Our liaison officer has been dispatched to Zahedan and will arrive by 2024-01-29 09:00 UTC."),
        ("ur", "ہمارا رابطہ افسر Zahedan روانہ کر دیا گیا ہے اور 2024-01-29 09:00 UTC تک پہنچ جائے گا۔"),
        ("fa", "افسر رابط ما به Zahedan اعزام شده است و تا 2024-01-29 09:00 UTC خواهد رسید."),
    ],
)
def test_render_lo_dispatched(lang: str, expected: str) -> None:
    params = {"place": "Zahedan", "time": "2024-01-29T09:00:00.000Z"}
    assert cb.render(BOOK["LO-DISPATCHED"], params, lang) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"place": "Zahedan"}, "params.time"),
        ({"place": "Zahedan", "time": "2024-01-29T09:00:00Z", "rank": "Colonel"}, "params.rank"),
        ({"place": 5, "time": "2024-01-29T09:00:00Z"}, "params.place"),
        ({"place": "x" * 201, "time": "2024-01-29T09:00:00Z"}, "params.place"),
        ({"place": "Zahedan", "time": "2024-01-29 09:00"}, "params.time"),
        ({"place": "Zahedan", "time": "۲۰۲۴-۰۱-۲۹T۰۹:۰۰:۰۰Z"}, "params.time"),  # Persian digits: not on the wire
    ],
)
def test_render_refuses_params_that_do_not_fit(params: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as info:
        cb.render(BOOK["LO-DISPATCHED"], params, "en")
    assert field in info.value.extra["fields"]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [("int", 3, [3.5, True, "3"]), ("number", 2.5, [True, "2.5"]),
     ("date", "2024-02-29", ["2023-02-29", 20240101, "26 Jan", "۲۰۲۴-۰۲-۲۹"]), ("text", "Mand", ["", " ", 1])],
)  # fmt: skip
def test_param_types(kind: str, good: Any, bad: list[Any]) -> None:
    item = cb.CodeEntry("X", {"v": kind}, {"en": "{v}"})
    assert cb.check_params(item, {"v": good}) == {}
    for value in bad:
        assert "params.v" in cb.check_params(item, {"v": value}), value


def test_render_refuses_an_unknown_language() -> None:
    with pytest.raises(Invalid) as info:
        cb.render(BOOK["MESSAGE-RECEIVED"], {}, "de")
    assert info.value.extra["fields"] == {"lang": "not a language of the agreement: 'de'"}


def test_escaped_braces_render_literally() -> None:
    raw = raw_with(codebook=[entry(text={"en": "{{LO}} {place} {time}", "ur": "{place}{time}", "fa": "{place}{time}"})])
    item = cb.codebook(raw)["LO-DISPATCHED"]
    assert (
        cb.render(item, {"place": "Turbat", "time": "2024-01-29T09:00:00Z"}, "en") == "{LO} Turbat 2024-01-29 09:00 UTC"
    )


def test_entry_json_and_precedence() -> None:
    assert BOOK["STAND-DOWN"].precedence is Precedence.FLASH
    assert BOOK["STAND-DOWN"].to_json()["params"] == {"place": "text"}
    assert cb.codebook(raw_with(codebook=[entry()]))["LO-DISPATCHED"].to_json()["precedence"] is None


CODEBOOK_ERRORS = [
    ({"codebook": {"code": "X"}}, "must be an array of tables"),
    ({"codebook": ["X"]}, "#1: each entry must be a table"),
    ({"codebook": [entry(code="lo-dispatched")]}, "code must be upper-case words"),
    ({"codebook": [entry(code="LO--X")]}, "code must be upper-case words"),
    ({"codebook": [entry(code=None)]}, "code must be upper-case words"),
    ({"codebook": [entry(), entry()]}, "LO-DISPATCHED: code appears twice"),
    ({"codebook": [entry(meaning="x")]}, "unknown key 'meaning'; known keys: code, params, precedence, text"),
    ({"codebook": [entry(params=["place"])]}, "params must be a table"),
    ({"codebook": [entry(params={"Place": "text", "time": "time"})]}, "parameter name 'Place'"),
    ({"codebook": [entry(params={"place": "float", "time": "time"})]}, "parameter place has type 'float'"),
    ({"codebook": [entry(precedence="URGENT")]}, "unknown precedence 'URGENT'"),
    ({"codebook": [entry(text=None)]}, "text must be a table"),
    ({"codebook": [entry(text={"en": "{place} {time}", "ur": "{place} {time}"})]}, "lacks language(s) fa"),
    ({"codebook": [entry(text={**entry()["text"], "de": "{place} {time}"})]}, "language(s) de the agreement"),
    ({"codebook": [entry(text={**entry()["text"], "fa": " "})]}, "text.fa must be a non-empty string"),
    ({"codebook": [entry(text={**entry()["text"], "fa": 7})]}, "text.fa must be a non-empty string"),
    ({"codebook": [entry(text={**entry()["text"], "ur": "{place}"})]}, "text.ur uses {place} but the params are"),
    ({"codebook": [entry(text={**entry()["text"], "ur": "{place} {time} {rank}"})]}, "text.ur uses"),
    ({"codebook": [entry(params={}, text={"en": "x", "ur": "y", "fa": "{z}"})]}, "but the params are no placeholders"),
    ({"codebook": [entry(text={**entry()["text"], "en": "{place {time}"})]}, "text.en"),
    ({"codebook": [entry(text={**entry()["text"], "en": "{place:>9} {time}"})]}, "plain parameter name"),
    ({"codebook": [entry(text={**entry()["text"], "en": "{place!r} {time}"})]}, "plain parameter name"),
    ({"codebook": [entry(text={**entry()["text"], "en": "{} {place} {time}"})]}, "plain parameter name"),
    ({"codebook": [entry(text={**entry()["text"], "en": "{place.x} {time}"})]}, "plain parameter name"),
    ({"lead_times": [24]}, "[lead_times]: must be a table"),
    ({"lead_times": {"statement": 1}}, "[lead_times]: unknown message type 'statement'; known message types: "),
    ({"lead_times": {"operation.prenotify": 0}}, "must be a positive number of hours"),
    ({"lead_times": {"operation.prenotify": True}}, "must be a positive number of hours"),
    ({"lead_times": {"operation.prenotify": "24"}}, "must be a positive number of hours"),
    ({"lead_times": {"missile.prenotify": 48}}, "missile.prenotify may not be below 72 h"),
    ({"response_deadlines": {"statement": 1}}, "[response_deadlines]: unknown message type 'statement'; known"),
    ({"response_deadlines": {"clarification.request": -1}}, "must be a positive number of hours"),
    ({"consultations": []}, "[consultations]: must be a table"),
]


def consultation(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"title": "Monthly", "channel": "dgmo", "day_of_month": 15}
    base.update(over)
    return {"c": {k: v for k, v in base.items() if v is not None}}


CODEBOOK_ERRORS += [
    ({"consultations": {"Border": {"title": "x"}}}, "[consultations.Border]: keys are lower-case"),
    ({"consultations": {"c": "monthly"}}, "[consultations.c]: keys are lower-case"),
    (
        {"consultations": consultation(chair="pk")},
        "[consultations.c]: unknown key 'chair'; known keys: agenda, channel, day_of_month, every_days, time, ",
    ),
    ({"consultations": consultation(title=None)}, "title must be a non-empty string"),
    ({"consultations": consultation(channel="navy")}, "channel must name a channel"),
    ({"consultations": consultation(every_days=30)}, "exactly one of every_days and day_of_month"),
    ({"consultations": consultation(day_of_month=None)}, "exactly one of every_days and day_of_month"),
    ({"consultations": consultation(day_of_month=29)}, "day_of_month must be a whole number from 1 to 28"),
    ({"consultations": consultation(day_of_month=True)}, "day_of_month must be a whole number"),
    ({"consultations": consultation(day_of_month=None, every_days=0)}, "every_days must be a whole number"),
    ({"consultations": consultation(day_of_month=None, every_days=367)}, "every_days must be a whole number"),
    ({"consultations": consultation(time="24:00")}, "time must be HH:MM in UTC"),
    ({"consultations": consultation(time="6:00")}, "time must be HH:MM in UTC"),
    ({"consultations": consultation(venue=3)}, "venue must be a string"),
    ({"consultations": consultation(agenda="Incidents")}, "agenda must be a list"),
    ({"consultations": consultation(agenda=[""])}, "agenda must be a list"),
]


@pytest.mark.parametrize(("changes", "message"), CODEBOOK_ERRORS)
def test_validate_extensions_names_the_broken_table_and_entry(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as info:
        cb.validate_extensions(raw_with(**changes))
    assert message in info.value.detail


def test_validate_extensions_accepts_the_shipped_agreement_and_an_empty_one() -> None:
    cb.validate_extensions(RAW)
    cb.validate_extensions({})
    assert cb.codebook({}) == {} and cb.consultations({}) == {} and cb.lead_times({}) == {}


def test_languages_default_to_english() -> None:
    assert cb.languages({}) == ("en",)
    raw = {"agreement": {"id": "x"}, "codebook": [{"code": "OK", "text": {"en": "Fine."}}]}
    assert cb.render(cb.codebook(raw)["OK"], {}, "en") == "Fine."


def test_placeholders() -> None:
    assert cb.placeholders("At {place} by {time}, {place}") == ["place", "time", "place"]
    assert cb.placeholders("{{not}} one") == []


@pytest.mark.parametrize(
    ("name", "hours"), [("operation.prenotify", 24), ("missile.prenotify", 72), ("exercise.prenotify", 336)]
)
def test_lead_time_from_the_shipped_agreement(name: str, hours: int) -> None:
    assert cb.lead_time(RAW, name) == timedelta(hours=hours)


def test_lead_time_defaults() -> None:
    silent = raw_with(lead_times=None)
    assert cb.lead_time(silent, "missile.prenotify") == timedelta(hours=72)
    assert cb.lead_time(silent, "operation.prenotify") is None
    assert cb.lead_time(RAW, "statement") is None
    assert cb.lead_time(raw_with(lead_times={"missile.prenotify": 100.5}), "missile.prenotify") == timedelta(
        hours=100.5
    )


def test_response_deadlines() -> None:
    assert cb.response_deadline(RAW, "clarification.request") == timedelta(hours=48)
    assert cb.response_deadline(RAW, "operation.prenotify") == timedelta(hours=12)
    silent = raw_with(response_deadlines=None)
    assert cb.response_deadline(silent, "clarification.request") == timedelta(hours=48)
    assert cb.response_deadline(silent, "operation.prenotify") is None
    assert cb.response_deadline(RAW, "statement") is None
    quick = raw_with(response_deadlines={"clarification.request": 6})
    assert cb.response_deadline(quick, "clarification.request") == timedelta(hours=6)


def test_shipped_consultations() -> None:
    schedules = cb.consultations(RAW)
    monthly = schedules["border-security"]
    assert (monthly.channel, monthly.day_of_month, monthly.every_days, monthly.time) == ("dgmo", 15, None, "06:00")
    assert len(monthly.agenda) >= 3
    assert schedules["joint-coordination"].every_days == 91
    assert monthly.to_json()["key"] == "border-security"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2024, 1, 29), utc(2024, 2, 15, 6)),
        (utc(2024, 2, 15, 5, 59), utc(2024, 2, 15, 6)),
        (utc(2024, 2, 15, 6), utc(2024, 3, 15, 6)),
        (utc(2024, 12, 20), utc(2025, 1, 15, 6)),
    ],
)
def test_monthly_next_after(moment: datetime, expected: datetime) -> None:
    assert cb.consultations(RAW)["border-security"].next_after(moment) == expected


def test_every_days_next_after_counts_from_a_fixed_epoch() -> None:
    schedule = cb.consultations(raw_with(consultations=consultation(day_of_month=None, every_days=7, time="07:00")))[
        "c"
    ]
    assert schedule.next_after(utc(2023, 6, 1)) == utc(2024, 1, 1, 7)
    assert schedule.next_after(utc(2024, 1, 1, 7)) == utc(2024, 1, 8, 7)
    assert schedule.next_after(utc(2024, 1, 10)) == utc(2024, 1, 15, 7)
