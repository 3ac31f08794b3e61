"""The console's layout in a real browser, in English, Urdu and Persian: the links table within its panel,
hashes and keys left to right on right-to-left pages, a message's values beside their labels, a note's
quotation marks and the node's English errors the right way round, and the focus after `a` acknowledges
a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from console_support import held_still
from support import Cluster, running_cluster, wait_for
from workflow_support import iso, post, send, status_of_message

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

# Each line of a message's body: its label, and the horizontal gap from the label's box to its value's text.
VALUE_GAPS = """(card) => [...card.querySelectorAll(".body .line")].map((line) => {
  const label = line.querySelector("dt"), at = label.getBoundingClientRect(), range = document.createRange();
  range.selectNodeContents(line.querySelector("dd"));
  const value = range.getBoundingClientRect();
  const rtl = getComputedStyle(label).direction === "rtl";
  return [label.textContent, rtl ? at.left - value.right : value.left - at.right];
})"""
# A quotation: its direction, its opening mark, and the room its text leaves at the side it is read from
# (where the opening mark is) and at the other (the closing mark). Ranges hold no generated content.
QUOTE = """(q) => {
  const style = getComputedStyle(q), box = q.getBoundingClientRect(), range = document.createRange();
  range.selectNodeContents(q);
  const text = range.getBoundingClientRect(), rtl = style.direction === "rtl";
  const marks = style.quotes.match(/"[^"]*"/g);  // none when the marks are the language's own ("auto")
  return [style.direction, marks ? JSON.parse(marks[0]) : style.quotes,
          rtl ? box.right - text.right : text.left - box.left, rtl ? text.left - box.left : box.right - text.right];
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
    expect(page.locator("#toasts .toast", has_text="Acknowledged: the signed acknowledgement")).to_have_count(1)
    expect(page.locator("section.incoming article.msg")).to_have_count(2)
    expect(page.locator(f"#{second}")).to_be_focused()
    # `j` goes on from there, not from the top of the page.
    page.keyboard.press("j")
    last = page.locator("section.incoming article.msg").nth(1)
    expect(last).to_be_focused()
    # Declining by keyboard says so too, and the focus goes on to the message left (QA: it fell to the page).
    page.keyboard.press("d")
    page.keyboard.type("Not for the Foreign Secretary: send it to the DGMO.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#declined-notice")).to_be_visible()
    expect(page.locator("#toasts .toast", has_text="Declined: the signed reason")).to_have_count(1)
    expect(page.locator("section.incoming article.msg")).to_have_count(1)
    expect(page.locator(f"#{second}")).to_be_focused()


def test_the_links_table_stays_scrolled_through_live_refreshes(nodes: Cluster, open_console: OpenConsole) -> None:
    """QA: every live refresh of the panel (link tests come every second here) scrolled the table back."""
    viewport: ViewportSize = {"width": 1366, "height": 800}
    page = open_console(nodes["pk"], "pk-dgmo", viewport=viewport, lang="fa")
    scroller = page.locator("section.links-panel .table-scroll")
    expect(scroller.locator("td.our-status")).to_have_count(1)
    # Scrolled with no refresh on its way: one that was in flight kept the position from before (0).
    with held_still(page):
        scroller.evaluate("(el) => { el.scrollLeft = -el.scrollWidth; }")  # to the end: in RTL, leftwards
        where = scroller.evaluate("(el) => el.scrollLeft")
    assert where < 0, where  # it does scroll
    before = scroller.evaluate("(el) => el.querySelector('tbody').innerHTML")
    replaced = "(before) => document.querySelector('section.links-panel tbody').innerHTML !== before"
    page.wait_for_function(replaced, arg=before, timeout=45_000)  # a live refresh (at the latest, every 20 s)
    assert scroller.evaluate("(el) => el.scrollLeft") == where
    page.context.close()


def test_values_notes_and_the_nodes_errors_read_their_own_way_on_right_to_left_pages(
    nodes: Cluster, open_console: OpenConsole
) -> None:
    """QA in Urdu and English: an English value far from its label, a note's quotation marks reversed
    (”Received, checking“), a node error's full stop at its front (".Start must be after ...")."""
    pk, ir = nodes["pk"], nodes["ir"]
    questions = ["Which unit fired on post 7?", "چوکی 7 پر کس یونٹ نے فائرنگ کی؟"]
    english = send(ir, "ir-dgmo", "clarification.request", {"questions": questions, "deadline": iso(6)})["id"]
    urdu = send(ir, "ir-dgmo", "hotline.text", {"text": "مشترکہ گشت کا شیڈول بھیجیں"})["id"]
    wait_for(lambda: status_of_message(pk, english) == status_of_message(pk, urdu) == 200, what="pk: both messages")
    post(pk, "pk-dgmo", f"/api/v1/messages/{english}/ack", {"note": "Received, checking"})
    post(pk, "pk-dgmo", f"/api/v1/messages/{urdu}/ack", {"note": "موصول ہوا، جانچ جاری ہے"})

    # Persian: each value (English, Urdu, a time) sits beside its label, a column gap away, not across the row.
    page = open_console(pk, "pk-dgmo", lang="fa")
    page.goto(pk.url + "/channel/dgmo")
    card = page.locator(f"#m-{english}")
    expect(card.locator(".answer q")).to_have_count(1)
    gaps = card.evaluate(VALUE_GAPS)
    assert len(gaps) == 2 and all(0 <= gap <= 16 for _, gap in gaps), gaps

    # Urdu: an English note is quoted as English is, its opening mark where it begins (on the left).
    page.goto(pk.url + "/channel/dgmo?lang=ur")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    direction, opening, before, after = page.locator(f"#m-{english} .answer q").evaluate(QUOTE)
    assert (direction, opening) == ("ltr", "\u201c") and before > 2 and after > 2, (direction, opening, before, after)
    # The node's error on a field: English, left to right, its full stop at its end.
    page.goto(pk.url + "/channel/dgmo?type=clarification.request")
    page.fill("#f-deadline", "tomorrow")
    page.click("#compose-form button.send")
    said = page.locator("#f-deadline-error bdi")
    expect(said).to_have_attribute("lang", "en")
    expect(said).to_have_text(re.compile(r"^Deadline must be .*\.$"))
    assert said.evaluate(LTR_TEXT) == ["ltr", True]

    # English: an Urdu note is quoted from the right, with the mark that opens a right-to-left quotation.
    page.goto(pk.url + "/channel/dgmo?lang=en")
    direction, opening, before, after = page.locator(f"#m-{urdu} .answer q").evaluate(QUOTE)
    assert (direction, opening) == ("rtl", "\u201d") and before > 2 and after > 2, (direction, opening, before, after)
    page.context.close()
