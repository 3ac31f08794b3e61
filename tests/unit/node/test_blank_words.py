"""`outgoing.require_words`: free text a person sends must show something, not only invisible characters."""

from __future__ import annotations

import pytest

from detente.errors import Invalid
from detente.node.outgoing import require_words


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("hotline.text", {"text": "\u200b"}, "text"),
        ("hotline.text", {"text": " \u2060\ufeff\n"}, "text"),
        ("statement", {"text": "\u200e\u200f"}, "text"),
        ("decline", {"reason": "\u200c\u200d"}, "reason"),
        ("decline", {"reason": "\u00a0\u3000"}, "reason"),
    ],
)
def test_invisible_or_blank_words_are_refused_with_the_field(kind: str, body: dict[str, str], field: str) -> None:
    with pytest.raises(Invalid) as info:
        require_words(kind, body)
    assert info.value.extra["fields"] == {field: "must not be blank"}
    assert info.value.detail == f"{kind}: {field}: must not be blank"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("hotline.text", {"text": "\u200bFLASH: stand down"}),
        ("decline", {"reason": "نمی\u200cتوانیم"}),
        ("code", {"code": "MESSAGE-RECEIVED"}),  # no free text of its own to judge
    ],
)
def test_words_with_anything_visible_pass(kind: str, body: dict[str, str]) -> None:
    require_words(kind, body)
