"""A FLASH storm on Now and in the banner: the console in-process, with FLASH rows put in pk's store.

QA (a night shift, 41 FLASH overdue and 16 more arriving): the first FLASH still in time came 41st,
after every overdue one; the banner listed all of them and filled the screen; it was an assertive
live region that changed every second; declining gave no notice; forty cards had one name; and the
DGMO's overdue card did not say that the alternate could now answer it.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import csrf_of, login
from detente.core.precedence import format_time, now
from detente.node.demo import setup_demo
from support import envelope_row, store_rows

ROOT = Path(__file__).resolve().parents[3]
IN_TIME, OVERDUE = 4, 3  # FLASH from ir to pk:dgmo still in time, and past their deadline


def _id(n: int) -> str:
    return f"01a20000-0000-7000-8000-97000000{n:04d}"


def _flash(n: int, overdue: bool) -> dict[str, Any]:
    # Overdue ones were sent first: their deadlines are the earliest, which put them first before.
    sent = now() - timedelta(minutes=(30 - n) if overdue else 2)
    deadline = sent + timedelta(minutes=10)
    text = f"{'Overdue' if overdue else 'In time'} FLASH number {n}."
    return envelope_row(
        n, id=_id(n), direction="in", from_office="ir:dgmo", to_office="pk:dgmo", created=format_time(sent),
        recorded_at=format_time(sent), deadline=format_time(deadline), state="delivered", seq=970_000 + n,
        log_index=970_000 + n, raw=json.dumps({"body": {"text": text}, "refs": []}).encode(),
        overdue_at=format_time(deadline) if overdue else None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info: dict[str, Any] = setup_demo(tmp_path_factory.mktemp("demo"), ROOT / "agreements" / "pk-ir.toml")
    rows = [_flash(n, overdue=True) for n in range(1, OVERDUE + 1)]
    rows += [_flash(n, overdue=False) for n in range(OVERDUE + 1, OVERDUE + IN_TIME + 1)]
    store_rows(Path(info["nodes"]["pk"]["data"]), rows)
    return info


def test_those_still_in_time_come_first_and_the_overdue_say_who_else_may_answer(client: TestClient) -> None:
    login(client, "pk-dgmo")
    page = client.get("/").text
    order = [int(m) for m in re.findall(r'<article [^>]*id="m-01a20000-0000-7000-8000-97000000(\d{4})"', page)]
    assert order == [4, 5, 6, 7, 1, 2, 3], order  # in time, earliest deadline first; then the overdue ones
    overdue = page[page.index(f'id="m-{_id(1)}"') :].split("</article>")[0]
    assert 'Overdue: its alternates may answer it too (<bdi dir="ltr">pk:fs</bdi>).' in overdue
    in_time = page[page.index(f'id="m-{_id(4)}"') :].split("</article>")[0]
    assert "its alternates may answer" not in in_time
    # A card's heading names it by precedence, type and sender: the cards are told apart by name.
    assert (
        f'<h3 id="h-{_id(4)}"><span class="sr">FLASH </span>Hotline message<span class="sr"> · <bdi>ir:dgmo</bdi>'
        in in_time
    )


def test_the_alternate_is_not_told_that_it_may_answer_too(client: TestClient) -> None:
    login(client, "pk-fs")  # sees the overdue ones, as the alternate
    page = client.get("/").text
    assert f'id="m-{_id(1)}"' in page and f'id="m-{_id(4)}"' not in page
    assert "its alternates may answer it too" not in page


def test_the_banner_lists_five_in_time_first_and_is_no_live_region(client: TestClient) -> None:
    login(client, "pk-dgmo")
    strip = client.get("/strip").text
    banner = strip[strip.index('id="flash-banner"') :]
    assert 'role="alert"' not in strip and "aria-live" not in strip
    listed = [int(m) for m in re.findall(r'href="/#m-01a20000-0000-7000-8000-97000000(\d{4})"', banner)]
    assert listed == [4, 5, 6, 7, 1]
    assert "In time FLASH number 4." in banner  # the start of each text tells them apart
    assert '<p class="banner-more"><a href="/">and 2 more: all of them on Now</a></p>' in banner
    assert 'data-flash-count="7"' in strip
    page = client.get("/").text
    assert '<div id="flash-alert" class="sr" role="alert"></div>' in page  # where a new FLASH is said, once


def test_declining_says_so_and_goes_on_to_the_next_message(client: TestClient) -> None:
    login(client, "pk-dgmo")
    token = csrf_of(client.get("/"))
    form = {"csrf": token, "next": f"/#m-{_id(6)}", "reason": "Not ours to answer: ask the Foreign Office."}
    response = client.post(f"/messages/{_id(5)}/decline", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/?declined={_id(5)}#m-{_id(6)}"
    page = client.get(response.headers["location"]).text
    notice = re.search(r'<p class="notice" role="status" id="declined-notice">(.*?)</p>', page, re.S)
    assert notice and notice.group(1).startswith("Declined: the signed reason goes back to the sender.")
    assert f"…{_id(5)[-12:]}" in notice.group(1)
