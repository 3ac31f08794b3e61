"""Codebook messages as a reader sees them: the text of a `code` message in every language.

A `code` envelope carries only the code and its parameters; every node renders it from the
agreement's codebook (`core.notifications.render_code`), so a reader needs no translation step.
"""

from __future__ import annotations

from typing import Any

from detente.core import codebook, notifications
from detente.core.agreement import Agreement
from detente.errors import Invalid


def rendered(agreement: Agreement, body: dict[str, Any]) -> dict[str, str] | None:
    """Return a `code` body's text in each language of the agreement, or None if it does not render."""
    try:
        return {lang: notifications.render_code(body, agreement, lang) for lang in agreement.languages}
    except Invalid:
        return None


def view(agreement: Agreement, kind: str, body: dict[str, Any], lang: str | None) -> dict[str, Any]:
    """Return what a message view adds for a `code` message: `rendered` and the reader's `rendered_text`.

    Empty for other types. `lang` is the reader's language (default: the agreement's first).
    """
    if kind != "code":
        return {}
    texts = rendered(agreement, body)
    if texts is None:
        return {"rendered": None, "rendered_text": None}
    chosen = lang if lang in texts else agreement.languages[0]
    return {"rendered": texts, "rendered_text": texts[chosen], "rendered_lang": chosen}


def entries(agreement: Agreement, lang: str | None = None) -> list[dict[str, Any]]:
    """Return the codebook's entries for the API: parameters, precedence, template in every language.

    With `lang`, each entry also has `template`, its text in that language. Raises `Invalid` for a
    language the agreement does not have.
    """
    if lang is not None and lang not in agreement.languages:
        raise Invalid(
            f"language {lang!r} is not one of the agreement's: {', '.join(agreement.languages)}",
            fields={"lang": "not a language of the agreement"},
        )
    out = []
    for entry in codebook.codebook(agreement.raw).values():
        item = entry.to_json()
        if lang is not None:
            item["template"] = entry.text[lang]
        out.append(item)
    return out
