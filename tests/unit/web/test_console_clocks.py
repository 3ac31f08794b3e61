"""The console with a peer whose clock is 4 minutes ahead: the difference written as the CLI writes
it, in the reader's language and saying whose clock is ahead, and a message from that peer shown at
the moment it was sent by this node's clock, with the sender's own stamp beside it.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import login
from detente.core.precedence import format_time, now, parse_time
from detente.node.demo import setup_demo
from detente.node.linkstate import contact_job
from support import envelope_row, store_rows

ROOT = Path(__file__).resolve().parents[3]
AHEAD_MS = 240_000  # ir's clock minus pk's
FROM_IR = "01a20000-0000-7000-8000-950000000001"  # sent by ir a minute ago, stamped by ir's clock
OURS = "01a20000-0000-7000-8000-950000000002"  # pk's own message, stamped by pk's clock
SENT = now().replace(microsecond=0) - timedelta(minutes=1)  # the moment, in pk's clock


def _row(n: int, message_id: str, created: str, text: str, direction: str = "in") -> dict[str, Any]:
    offices = ("ir:dgmo", "pk:dgmo") if direction == "in" else ("pk:dgmo", "ir:dgmo")
    return envelope_row(
        n, id=message_id, direction=direction, from_office=offices[0], to_office=offices[1], precedence="ROUTINE",
        created=created, raw=json.dumps({"body": {"text": text}, "refs": []}).encode(), log_index=300_000 + n,
        needs_ack=False, deadline=None, state="delivered", recorded_at=format_time(SENT),
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pk, having measured ir's clock 4 minutes ahead, holds a message ir stamped by that clock."""
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    theirs = format_time(SENT + timedelta(milliseconds=AHEAD_MS))
    rows = [_row(1, FROM_IR, theirs, "stamped by a clock ahead"),
            _row(2, OURS, format_time(SENT), "stamped by ours", direction="out")]  # fmt: skip
    measured = contact_job("ir", True, test=True, rtt_ms=4.0, clock_offset_ms=AHEAD_MS)
    store_rows(Path(info["nodes"]["pk"]["data"]), rows, also=measured)
    return info


def _card(page: str, message_id: str) -> str:
    found = re.search(rf'<article [^>]*id="m-{message_id}".*?</header>', page, re.S)
    assert found, page[:2000]
    return found.group(0)


def test_the_clock_difference_reads_as_the_cli_writes_it_and_says_whose_clock(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/").text
    assert '<strong class="clock-off">4 min 0 s ahead of ours</strong>' in page
    assert '<span class="clock-off">IR clock 4 min 0 s ahead</span>' in page  # the strip
    assert "240 s" not in page


def test_the_clock_difference_is_translated(client: TestClient) -> None:
    login(client, "pk-supervisor", lang="fa")  # the language is saved: not the officer the others log in as
    page = client.get("/?lang=fa").text
    assert "4 دقیقه 0 ثانیه جلوتر از ساعت ما" in page
    assert "ساعت IR 4 دقیقه 0 ثانیه جلوتر" in page


def test_a_message_from_a_clock_ahead_shows_when_it_was_sent_by_ours(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/channel/dgmo").text
    card = _card(page, FROM_IR)
    shown = re.search(r'<time datetime="([^"]+)"', card)
    assert shown and parse_time(shown.group(1)) == SENT  # not 4 minutes in the future
    theirs = (SENT + timedelta(milliseconds=AHEAD_MS)).strftime("%H:%MZ")
    note = re.search(r'<small class="clock-note" title="([^"]+)"><bdi>([^<]+)</bdi></small>', card)
    assert note and html.unescape(note.group(2)) == f"{theirs} by the sender's clock"
    assert "this node's clock" in html.unescape(note.group(1))
    # This node's own message is shown as stamped, with no note.
    ours = _card(page, OURS)
    shown = re.search(r'<time datetime="([^"]+)"', ours)
    assert shown and parse_time(shown.group(1)) == SENT and "clock-note" not in ours


def test_within_the_tolerance_the_senders_stamp_is_shown_as_signed() -> None:
    from detente.core.agreement import load
    from detente.web.console.i18n import Locale
    from detente.web.console.present import Presenter

    agreement = load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
    stamp = "2024-01-16T13:05:00.000Z"
    for offset, expected in ((900.0, stamp), (None, stamp), (-1_000.0, "2024-01-16T13:05:01.000Z")):
        presenter = Presenter(agreement, "pk", Locale("en"), {"ir": offset})
        assert presenter.peer_time(stamp, "ir") == expected
    assert Presenter(agreement, "pk", Locale("ur")).clock_difference(-61_000) == "1 منٹ 1 سیکنڈ"
