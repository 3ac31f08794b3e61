"""The ranges of the codebook's `int` and `number` parameters (`detente.core.codebook.check_params`).

Counts (`killed`) and distances (`radius_km`) are never negative, and an absurd value ("1e+308 km",
an integer beyond 2^53) is refused naming `params.<name>`, on the sending and the receiving node.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detente.core import agreement as agreement_mod
from detente.core import codebook as cb
from detente.core import notifications as n
from detente.core.precedence import Precedence
from detente.errors import Invalid

ROOT = Path(__file__).resolve().parents[3]
AGREEMENT = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
BOOK = cb.codebook(AGREEMENT.raw)
INT = cb.CodeEntry("X", {"v": "int"}, {"en": "{v}"})
NUMBER = cb.CodeEntry("X", {"v": "number"}, {"en": "{v}"})


def test_the_shipped_numeric_parameters_are_counts_and_distances() -> None:
    # No shipped parameter needs a negative value (a coordinate would): if one is added, the
    # ranges must be chosen per parameter, and this test says so.
    numeric = {(e.code, p, kind) for e in BOOK.values() for p, kind in e.params.items() if kind in ("int", "number")}
    assert numeric == {
        ("CASUALTIES-CONFIRMED", "killed", "int"),
        ("CASUALTIES-CONFIRMED", "injured", "int"),
        ("EVACUATE-AREA", "radius_km", "number"),
    }


@pytest.mark.parametrize("value", [0, 1, 9, cb.MAX_INT_PARAM])
def test_an_int_from_zero_to_the_cap_is_accepted(value: int) -> None:
    assert cb.check_params(INT, {"v": value}) == {}


@pytest.mark.parametrize("value", [-1, -3, cb.MAX_INT_PARAM + 1, 2**53 + 1, 10**30, -(10**30)])
def test_an_int_out_of_range_is_refused(value: int) -> None:
    assert cb.check_params(INT, {"v": value}) == {"params.v": "must be a whole number from 0 to 1000000000"}


@pytest.mark.parametrize("value", [0, 0.0, 1e-9, 2.5, 5, cb.MAX_NUMBER_PARAM, float(cb.MAX_NUMBER_PARAM)])
def test_a_number_from_zero_to_the_cap_is_accepted(value: float) -> None:
    assert cb.check_params(NUMBER, {"v": value}) == {}


@pytest.mark.parametrize(
    "value",
    [-5, -1e-9, -0.0, cb.MAX_NUMBER_PARAM + 0.5, 1e308, math.inf, -math.inf, math.nan, 10**400, 2**53 + 1],
)
def test_a_number_out_of_range_or_not_finite_is_refused(value: float) -> None:
    assert cb.check_params(NUMBER, {"v": value}) == {"params.v": "must be a finite number from 0 to 10000000"}


def test_the_type_is_judged_before_the_range() -> None:
    assert cb.check_params(INT, {"v": -3.5}) == {"params.v": "must be a whole number"}
    assert cb.check_params(INT, {"v": True}) == {"params.v": "must be a whole number"}
    assert cb.check_params(NUMBER, {"v": "-5"}) == {"params.v": "must be a number"}


def test_without_ranges_only_the_types_are_checked() -> None:
    assert cb.check_params(INT, {"v": -3}, ranges=False) == {}
    assert cb.check_params(NUMBER, {"v": math.inf}, ranges=False) == {}
    assert cb.check_params(INT, {"v": 3.5}, ranges=False) == {"params.v": "must be a whole number"}


def test_a_stored_message_out_of_range_still_renders() -> None:
    # Accepted before the ranges existed: the reader still gets the text, not the raw params.
    params = {"place": "X", "killed": -3, "injured": 2}
    assert cb.render(BOOK["CASUALTIES-CONFIRMED"], params, "en") == "We confirm -3 killed and 2 injured at X."
    with pytest.raises(Invalid) as info:
        cb.render(BOOK["CASUALTIES-CONFIRMED"], {**params, "killed": "-3"}, "en")
    assert info.value.extra["fields"] == {"params.killed": "must be a whole number"}


@pytest.mark.parametrize(
    ("code", "params", "field"),
    [
        ("CASUALTIES-CONFIRMED", {"place": "X", "killed": -3, "injured": 2}, "params.killed"),
        ("CASUALTIES-CONFIRMED", {"place": "X", "killed": 1, "injured": 10**30}, "params.injured"),
        ("EVACUATE-AREA", {"place": "X", "radius_km": -5}, "params.radius_km"),
        ("EVACUATE-AREA", {"place": "X", "radius_km": 1e308}, "params.radius_km"),
        ("EVACUATE-AREA", {"place": "X", "radius_km": math.nan}, "params.radius_km"),
    ],
)
def test_the_sender_refuses_an_out_of_range_param_naming_it(code: str, params: dict[str, Any], field: str) -> None:
    body = {"code": code, "params": params}
    # The sender's check (`check_message` runs `validate_body`, with the sender's own rules) ...
    with pytest.raises(Invalid) as sent:
        n.validate_body("code", body, AGREEMENT)
    assert list(sent.value.extra["fields"]) == [field]
    assert sent.value.detail.startswith(f"{field}: must be a")
    # ... but a receiver stores what a peer of an earlier release sealed: refusing it would stall the
    # channel behind it. The receiver's rules (`validate_message`) check the types only.
    assert n.validate_message("code", body, AGREEMENT, created=datetime.now(UTC), precedence=Precedence.ROUTINE)


def test_an_in_range_code_message_passes_every_rule() -> None:
    body = {"code": "EVACUATE-AREA", "params": {"place": "Mand", "radius_km": 7.5}}
    assert n.validate_message("code", body, AGREEMENT, created=datetime.now(UTC), precedence=Precedence.ROUTINE)


def test_a_text_param_of_invisible_characters_alone_is_refused_by_the_sender() -> None:
    body = {"code": "NO-HOSTILE-INTENT", "params": {"place": "\u200b\u2060"}}
    with pytest.raises(Invalid) as sent:
        n.validate_body("code", body, AGREEMENT)
    assert sent.value.extra["fields"] == {
        "params.place": "must say something: it holds only spaces or invisible characters"
    }
    assert n.validate_message("code", body, AGREEMENT, created=datetime.now(UTC), precedence=Precedence.ROUTINE)
