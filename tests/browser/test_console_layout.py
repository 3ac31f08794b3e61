"""The console's layout in a real browser, in English and Persian: the links table within its panel,
hashes and keys left to right on right-to-left pages, and the focus after `a` acknowledges a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from support import Cluster, running_cluster

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
WIDTHS = (1280, 1366)
# Where a panel's content reaches beyond the panel itself (0 when it fits or scrolls within it).
OVERFLOW = """(panel) => {
  const box = panel.getBoundingClientRect();
  let worst = panel.scrollWidth - panel.clientWidth;
  for (const el of panel.querySelectorAll("th, td")) {
    const scroller = el.closest(".table-scroll");
    const frame = scroller ? scroller.getBoundingClientRect() : box;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    // A cell cut off by a scrolling frame is fine; one outside the panel (or off the page) is not.
    if (!scroller) worst = Math.max(worst, r.right - box.right, box.left - r.left);
    worst = Math.max(worst, frame.right - box.right, box.left - frame.left);
    worst = Math.max(worst, frame.right - window.innerWidth, -frame.left);
  }
  return worst;
}"""
# Scrolls the links table's last column into view and returns the table frame's and the column's edges.
LAST_COLUMN = """(panel) => {
  const headers = panel.querySelectorAll("thead th"), last = headers[headers.length - 1];
  last.scrollIntoView({block: "nearest", inline: "end"});
  const frame = panel.querySelector(".table-scroll").getBoundingClientRect(), cell = last.getBoundingClientRect();
  return [frame.left, frame.right, cell.left, cell.right];
}"""
# Whether a text's last character is laid out to the right of its first (left to right).
LTR_TEXT = """(el) => {
  const node = el.firstChild, range = document.createRange();
  range.setStart(node, 0); range.setEnd(node, 1);
  const first = range.getBoundingClientRect();
  range.setStart(node, node.length - 1); range.setEnd(node, node.length);
  const last = range.getBoundingClientRect();
  return [getComputedStyle(el).direction, last.top > first.top + 2 || last.left > first.left];
}"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two real nodes of this module's own: the acknowledgements must not reach the other console tests."""
    with running_cluster(tmp_path_factory.mktemp("layout")) as cluster:
        yield cluster


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_the_links_table_stays_within_its_panel(nodes: Cluster, open_console: OpenConsole, lang: str) -> None:
    for width in WIDTHS:
        viewport: ViewportSize = {"width": width, "height": 800}
        page = open_console(nodes["pk"], "pk-dgmo", viewport=viewport, lang=lang)
        panel = page.locator("section.links-panel")
        expect(panel.locator("td.our-status")).to_have_count(1)
        assert panel.evaluate(OVERFLOW) <= 1, (lang, width)
        # Every column can be reached: the last one scrolls into view within the panel. The panel is
        # refreshed live (every few seconds), which replaces its elements: scroll and measure in one
        # synchronous step in the page, so that no refresh can come in between.
        left, right, cell_left, cell_right = panel.evaluate(LAST_COLUMN)
        assert left - 1 <= cell_left and cell_right <= right + 1, (lang, width, left, right, cell_left, cell_right)
        page.context.close()


def test_hashes_and_keys_read_left_to_right_on_a_persian_page(nodes: Cluster, open_console: OpenConsole) -> None:
    page = open_console(nodes["pk"], "pk-admin", lang="fa")
    for address in ("/record", "/admin"):
        page.goto(nodes["pk"].url + address)
        hashes = page.locator("code.hash")
        assert hashes.count() > 0
        for i in range(hashes.count()):
            text = hashes.nth(i).inner_text()
            if len(text) < 2 or text == "—":
                continue
            direction, left_to_right = hashes.nth(i).evaluate(LTR_TEXT)
            assert direction == "ltr" and left_to_right, (address, text)


def test_a_key_press_acknowledges_says_so_and_keeps_the_focus_on_the_next_message(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = nodes["pk"], nodes["ir"]
    message = {"channel": "fs", "to": "pk:fs", "precedence": "PRIORITY", "type": "hotline.text"}
    batch = [{**message, "body": {"text": f"Message {n} for the layout test."}} for n in range(3)]
    with ir.client("ir-fs") as client:
        assert client.post("/api/v1/messages/batch", json={"messages": batch}).status_code == 201
    page = open_console(pk, "pk-fs")
    cards = page.locator("section.incoming article.msg")
    expect(cards).to_have_count(3)
    second = cards.nth(1).get_attribute("id")
    cards.first.focus()
    page.keyboard.press("a")
    expect(page.locator("#acked-notice")).to_be_visible()
    expect(page.locator("section.incoming article.msg")).to_have_count(2)
    expect(page.locator(f"#{second}")).to_be_focused()
    # `j` goes on from there, not from the top of the page.
    page.keyboard.press("j")
    expect(page.locator("section.incoming article.msg").nth(1)).to_be_focused()


def test_the_links_table_stays_scrolled_through_live_refreshes(nodes: Cluster, open_console: OpenConsole) -> None:
    """QA: every live refresh of the panel (link tests come every second here) scrolled the table back."""
    viewport: ViewportSize = {"width": 1366, "height": 800}
    page = open_console(nodes["pk"], "pk-dgmo", viewport=viewport, lang="fa")
    scroller = page.locator("section.links-panel .table-scroll")
    expect(scroller.locator("td.our-status")).to_have_count(1)
    scroller.evaluate("(el) => { el.scrollLeft = -el.scrollWidth; }")  # to the end: in RTL, leftwards
    where = scroller.evaluate("(el) => el.scrollLeft")
    assert where < 0, where  # it does scroll
    before = scroller.evaluate("(el) => el.querySelector('tbody').innerHTML")
    replaced = "(before) => document.querySelector('section.links-panel tbody').innerHTML !== before"
    page.wait_for_function(replaced, arg=before, timeout=45_000)  # a live refresh (at the latest, every 20 s)
    assert scroller.evaluate("(el) => el.scrollLeft") == where
    page.context.close()
