"""Finding envelopes (`store.search` through `messages.list_envelopes`), on SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from detente.core import agreement as agreement_mod
from detente.core import codebook
from detente.core.search import Search, parse, words_of
from detente.errors import Invalid
from detente.store import messages as db
from support import AGREEMENT, envelope_row

CODEBOOK = codebook.codebook(agreement_mod.load(AGREEMENT.read_text(encoding="utf-8")).raw)
PEERS = ("ir", "af")
SERVICE = ["ack", "translation"]


def put(conn: Connection, n: int, kind: str, body: dict[str, Any], **extra: Any) -> str:
    """Store envelope `n` of type `kind` with `body`, its words as the node writes them; return its id."""
    envelope = {"type": kind, "body": body, "refs": [extra["ref"]] if extra.get("ref") else []}
    row = envelope_row(n, type=kind, raw=json.dumps(envelope).encode(), words=words_of(envelope), **extra)
    db.insert_envelope(conn, **row)
    return str(row["id"])


def ids(conn: Connection, search: Search, **options: Any) -> list[str]:
    """The ids a search finds, oldest first, as a supervisor (every office) sees them unless `options` say."""
    options.setdefault("offices", None)
    return [str(r["id"]) for r in db.list_envelopes(conn, search=search, **options).rows]


def find(conn: Connection, **filters: Any) -> list[str]:
    """The ids a search finds, service messages left out unless it names types (as `node.search.find`)."""
    search = parse(parties=PEERS, codebook=CODEBOOK, **filters)
    return ids(conn, search, exclude_types=[] if search.types else SERVICE)


@pytest.fixture
def stored(any_engine: Engine) -> dict[str, str]:
    """Eight messages: texts in English, Urdu and Persian, a codebook message, a translation, an ack."""
    with any_engine.begin() as conn:
        found = {
            "panjgur": put(conn, 1, "hotline.text", {"text": "Mortar FIRE near Panjgur; two posts hit."},
                           created="2024-01-16T13:05:00.000Z"),
            "percent": put(conn, 2, "hotline.text", {"text": "Readiness at 50% on the_line a/b"},
                           precedence="ROUTINE", created="2024-01-16T23:59:59.999Z"),
            "five": put(conn, 3, "hotline.text", {"text": "Readiness at 500 on theXline"},
                        precedence="PRIORITY", created="2024-01-17T00:00:00.000Z"),
            # Typed on an Arabic keyboard (ي, ك): found by the same words typed on a Persian one (ی, ک).
            "persian": put(conn, 4, "hotline.text", {"text": "حمله در نزديك مرز"}, peer="af",
                           from_office="pk:dgmo", to_office="af:dgmo", channel="dgmo-pk-af"),
            "urdu": put(conn, 5, "statement", {"text": "پنجگور کے قریب سرگرمی آپ کی ریاست کے خلاف نہیں"},
                        precedence="IMMEDIATE"),
            "code": put(conn, 6, "code", {"code": "NO-HOSTILE-INTENT", "params": {"place": "Saravan"}}),
        }  # fmt: skip
        # A translation of the Urdu statement into English, and an acknowledgement of the first text.
        found["translation"] = put(conn, 7, "translation", {"lang": "en", "text": "No threat near Saravan"},
                                   ref=found["urdu"], needs_ack=False)  # fmt: skip
        found["ack"] = put(conn, 8, "ack", {"note": "Panjgur noted"}, ref=found["panjgur"], needs_ack=False)
    return found


def test_words_every_term_in_any_case_any_keyboard_literally_in_translations_and_codebook_texts(
    any_engine: Engine, stored: dict[str, str]
) -> None:
    with any_engine.connect() as conn:
        assert find(conn, q="panjgur") == [stored["panjgur"]]  # not the ack noting it: a service message
        assert find(conn, q="  fire   PANJGUR ") == [stored["panjgur"]]
        assert find(conn, q="panjgur saravan") == []
        assert find(conn, q="text") == []  # a JSON key, in every body: not a word of any
        assert find(conn, q="code") == []
        assert find(conn, q="") == list(stored.values())[:6]  # no words: no word filter
        # LIKE's wildcards and its escape character in a term are literal.
        assert find(conn, q="50%") == [stored["percent"]]
        assert find(conn, q="the_line") == [stored["percent"]]
        assert find(conn, q="a/b") == [stored["percent"]]  # the escape character itself
        assert find(conn, q="%") == [stored["percent"]]
        # Urdu and Persian words are found whatever the keyboard they were typed on.
        assert find(conn, q="پنجگور ریاست") == [stored["urdu"]]
        assert find(conn, q="نزدیک") == [stored["persian"]]  # Persian ی and ک find Arabic ي and ك
        assert find(conn, q="حمله‌ در") == [stored["persian"]]  # a zero-width non-joiner typed in
        # The translation into English finds the Urdu statement; the code message's own value too.
        assert find(conn, q="threat") == [stored["urdu"]]
        assert find(conn, q="saravan") == [stored["urdu"], stored["code"]]
        # The code, and its text in English and Persian (not in the envelope): "hostile intent".
        assert find(conn, q="no-hostile-intent") == [stored["code"]]
        assert find(conn, q="hostile intent saravan") == [stored["code"]]
        assert find(conn, q="قصد خصمانه") == [stored["code"]]
        # Asked for by type, a translation is listed itself.
        assert find(conn, q="threat", types=["translation"]) == [stored["translation"]]


def test_the_window_precedences_peer_end_of_an_id_pages_and_visibility(
    any_engine: Engine, stored: dict[str, str]
) -> None:
    with any_engine.connect() as conn:
        day = find(conn, q="readiness", since="2024-01-16T00:00:00Z", until="2024-01-17T00:00:00Z")
        assert day == [stored["percent"]]  # `until` is not included: the next day's first message is not
        assert find(conn, q="readiness", since="2024-01-17T00:00:00Z") == [stored["five"]]
        assert find(conn, precedences=["routine", "PRIORITY"]) == [stored["percent"], stored["five"]]
        assert find(conn, precedences=["IMMEDIATE,ROUTINE"]) == [stored["percent"], stored["urdu"]]
        assert find(conn, party="af") == [stored["persian"]]
        assert find(conn, message_id=stored["code"][-6:]) == [stored["code"]]
        assert find(conn, message_id="…" + stored["code"][-12:].upper()) == [stored["code"]]
        assert find(conn, message_id=stored["code"]) == [stored["code"]]
        assert find(conn, types=["statement", "code"]) == [stored["urdu"], stored["code"]]
        # Pages go back by log index.
        everything = ids(conn, Search())
        first = db.list_envelopes(conn, offices=None, search=Search(), limit=3)
        assert first.more and [r["id"] for r in first.rows] == everything[-3:]
        older = db.list_envelopes(conn, offices=None, search=Search(), before=first.rows[0]["log_index"], limit=3)
        assert [r["id"] for r in older.rows] == everything[-6:-3]
    # A search keeps the listing's visibility: an operator's offices, and an alternate's overdue messages.
    search = parse(q="readiness")
    with any_engine.begin() as conn:
        assert ids(conn, search, offices=["pk:fs"]) == []  # not its office's traffic
        assert ids(conn, search, offices=["ir:dgmo"]) == [stored["percent"], stored["five"]]
        put(conn, 9, "hotline.text", {"text": "readiness overdue"}, direction="in", from_office="ir:dgmo",
            to_office="pk:dgmo", overdue_at="2024-01-16T13:15:00.000Z")  # fmt: skip
        late = envelope_row(9)["id"]
        assert late not in ids(conn, search, offices=["pk:fs"])
        assert ids(conn, search, offices=["pk:fs"], escalated=["pk:dgmo"]) == [late]  # the alternate's, overdue
        assert ids(conn, search, offices=["pk:fs"], escalated=["pk:dgmo"], direction="out") == []


@pytest.mark.parametrize(
    ("filters", "fields"),
    [
        ({"q": "x" * 201}, {"q"}),
        ({"since": "yesterday"}, {"since"}),
        ({"until": "2024-02-30T00:00:00Z"}, {"until"}),
        ({"since": "2024-01-17T00:00:00Z", "until": "2024-01-16T00:00:00Z"}, {"until"}),
        ({"since": "2024-01-17T00:00:00Z", "until": "2024-01-17T00:00:00Z"}, {"until"}),
        ({"precedences": ["FLASH", "URGENT"]}, {"precedence"}),
        ({"types": ["hotline.txt"]}, {"type"}),
        ({"party": "us"}, {"party"}),
        ({"message_id": "3f2a"}, {"id"}),
        ({"message_id": "zz3f2a3f2a"}, {"id"}),
        ({"message_id": "3f2a; drop"}, {"id"}),
        ({"q": "x" * 201, "since": "now", "party": "us", "precedences": ["x"]}, {"q", "since", "party", "precedence"}),
    ],
)
def test_a_wrong_filter_is_refused_naming_it(filters: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(Invalid) as refused:
        parse(parties=PEERS, **filters)
    assert set(refused.value.extra["fields"]) == fields


def test_the_near_miss_is_named() -> None:
    with pytest.raises(Invalid, match="did you mean 'hotline.text'"):
        parse(types=["hotline.txt"])
    with pytest.raises(Invalid, match="expected one or several of FLASH, IMMEDIATE, PRIORITY, ROUTINE"):
        parse(precedences=["URGENT"])
