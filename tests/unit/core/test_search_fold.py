"""How a search compares words (`core.search.fold`): one form for what keyboards type differently.

The stored words (migration 0010, `words_of`) and a search's terms are folded alike; these are the
pairs an officer types one way and a message holds the other.
"""

from __future__ import annotations

import pytest

from detente.core.search import fold, words_of


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("Détente", "DETENTE"),  # accents and case
        ("نزديك", "نزدیک"),  # Arabic ي and ك, Persian ی and ک
        ("چاہتے", "چاهتي"),  # Urdu ہ and ے, typed on an Arabic keyboard (QA: not found before)
        ("چاہتے", "چاهتی"),  # ... and on a Persian one
        ("بھارت", "بهارت"),  # Urdu ھ (do-chashmi he), which Arabic and Persian keyboards lack
        ("خانۀ", "خانه"),  # Persian ۀ, as ه
        ("مُحَمَّد", "محمد"),  # short vowels and the shadda are written or left out
        ("می‌خواهم", "میخواهم"),  # the zero-width non-joiner
        ("۱۶ ژانویه", "16 ژانویه"),  # Persian digits
        ("١٦", "16"),  # Arabic-Indic digits
        ("آمد", "امد"),  # alef with madda
    ],
)
def test_what_one_keyboard_types_finds_what_another_wrote(stored: str, typed: str) -> None:
    assert fold(typed) in fold(stored)
    assert fold(typed) in words_of({"body": {"text": stored}})


@pytest.mark.parametrize(("one", "other"), [("کی", "کا"), ("ب", "پ"), ("ر", "ز"), ("50", "500")])
def test_different_letters_stay_different(one: str, other: str) -> None:
    assert fold(one) != fold(other)


def test_the_words_are_the_bodys_values_one_per_line_never_its_keys() -> None:
    words = words_of({"type": "action.report", "body": {"text": "Patrol", "count": 3, "ok": True, "items": ["A", "b"]}})
    assert words.split("\n") == ["patrol", "3", "a", "b"]
    assert "text" not in words and "count" not in words and "true" not in words
