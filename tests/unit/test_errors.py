"""`errors.located`: an item's error in a batch says which item it is, in the form validation uses; and
`web.errors.error_response` clips what a detail echoes."""

from __future__ import annotations

import json

from detente.errors import Forbidden, Invalid, SequenceGap, located
from detente.web.errors import ECHO_LIMIT, error_response


def test_located_prefixes_detail_and_fields_and_names_the_item() -> None:
    exc = Invalid("body.text: must not be empty", fields={"body.text": "must not be empty"})
    same = located(exc, "messages.3")
    assert same is exc and isinstance(same, Invalid)
    assert same.to_json() == {
        "error": "Invalid",
        "detail": "messages.3: body.text: must not be empty",
        "fields": {"messages.3.body.text": "must not be empty"},
        "at": "messages.3",
    }
    assert str(same) == "messages.3: body.text: must not be empty"


def test_located_keeps_status_and_extras_and_adds_no_fields() -> None:
    forbidden = located(Forbidden("not your office"), "messages.0")
    assert forbidden.status_code == 403
    assert forbidden.to_json() == {"error": "Forbidden", "detail": "messages.0: not your office", "at": "messages.0"}
    gap = located(SequenceGap("ahead", channel="dgmo", expected=4, got=6), "envelopes.1")
    assert gap.to_json()["expected"] == 4 and gap.to_json()["at"] == "envelopes.1"
    assert gap.diagnostics() == "SequenceGap: envelopes.1: ahead"


def test_an_error_response_clips_what_it_echoes_in_its_detail_and_fields() -> None:
    value = "x" * 5000
    response = error_response(Invalid(f"unknown code {value}", fields={"code": f"{value} is unknown", "n": 3}))
    assert response.status_code == 422
    clipped = f"{'x' * ECHO_LIMIT}… (5000 characters)"
    assert json.loads(response.body) == {
        "error": "Invalid",
        "detail": f"unknown code {clipped}",
        "fields": {"code": f"{clipped} is unknown", "n": 3},
    }
    # A run of exactly the bound, and everything else, is left as it is.
    whole = error_response(Forbidden("y" * ECHO_LIMIT))
    assert json.loads(whole.body) == {"error": "Forbidden", "detail": "y" * ECHO_LIMIT}
