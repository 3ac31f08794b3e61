"""A search's filters checked before anything is read (`core.search.parse`): what QA typed to break it."""

from __future__ import annotations

import pytest

from detente.core.search import parse
from detente.errors import Invalid

CHANNELS = ("dgmo", "fs", "liaison")


def refused(**filters: object) -> dict[str, str]:
    """The fields a refused search names."""
    with pytest.raises(Invalid) as caught:
        parse(parties=("ir",), channels=CHANNELS, **filters)  # type: ignore[arg-type]
    fields = caught.value.extra["fields"]
    assert isinstance(fields, dict)
    return fields


@pytest.mark.parametrize("q", ["\x00", "a\x00b", "panjgur\x1b[2J", "\x7f"])
def test_a_control_character_is_refused_not_searched(q: str) -> None:
    # A NUL listed every message on SQLite and was a 500 on PostgreSQL (QA).
    assert "control character" in refused(q=q)["q"]


@pytest.mark.parametrize("q", ["\u200c\u200c", "\u064e\u0650", "\u200f \u200e", "\u0640"])
def test_words_of_only_marks_or_invisible_characters_are_refused_not_everything(q: str) -> None:
    assert "no letter, digit or sign" in refused(q=q)["q"]


def test_spaces_tabs_and_newlines_are_no_words_and_no_mistake() -> None:
    assert parse(q="  \t\n ").terms == ()
    assert [t.text for t in parse(q="border\tpost\nTaftan").terms] == ["border", "post", "taftan"]


def test_an_id_end_copied_from_a_right_to_left_page_with_its_marks_is_taken() -> None:
    assert parse(message_id="\u200f…3f2a9c4b\u200e").id_end == "3f2a9c4b"
    assert "id" in refused(message_id="\u200f3f2a\u200e")


def test_a_channel_the_agreement_has_not_is_refused_with_the_ones_it_has() -> None:
    assert parse(channel="liaison", channels=CHANNELS) is not None
    said = refused(channel="liason")["channel"]
    assert "'liason' is not a channel" in said and "dgmo, fs, liaison" in said
    assert "channel" in refused(channel="\x00")
    # Every wrong filter is named at once.
    assert set(refused(q="\x00", channel="x", precedences=["urgent"])) == {"q", "channel", "precedence"}
