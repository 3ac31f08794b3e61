"""The console passes axe-core's WCAG 2.1 A and AA rules in Chromium, in English and right to left in Urdu,
with a FLASH banner showing: every screen, the login page refused, a 404, a form the node refused, an open
codebook entry and translation form. Tab reaches every control in page order, each with a focus ring that
stands out (3:1) from what surrounds it. The drill report and comparison pass the same rules. The night
theme passes them too, followed from the screen's setting (System) or chosen (Dark), in English and Urdu,
and with axe's `region`, `landmark-unique` and `heading-order` best practices; the choice outlives a reload
and a new login.

axe-core is the copy `axe-playwright-python` ships (pinned in pyproject.toml): nothing is fetched when the
tests run. It is evaluated in the page through the DevTools protocol, which the console's
Content-Security-Policy does not govern, so the pages are checked exactly as they are served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from playwright.sync_api import Browser, Page, expect

from console_support import held_still
from detente.web.drill_report import render_comparison, render_report
from support import Cluster, running_cluster
from unit.core.test_drill_report import computed, facts  # a small run's report, as the unit tests build it
from workflow_support import PRENOTIFY, iso, reaches, send

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
RULES = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations", "incomplete"],  # what passed is counted, not detailed: faster
}
# The console's pages keep axe's best practices too (among them: all content in landmarks, landmarks told
# apart, no heading level skipped). The drill report, a document of its own, is held to the WCAG rules.
CONSOLE_RULES = {**RULES, "runOnly": {"type": "tag", "values": [*RULES["runOnly"]["values"], "best-practice"]}}
# axe marks as "incomplete" what it could not decide. For colour contrast these are glyphs without letters
# (◆, ✓, the arrow between offices), text over a quotation mark's pseudo-element, and a notice over the
# page: all ink on white or white on navy, checked by hand. An undecided result of any other rule fails.
UNDECIDED_BY_DESIGN = {"color-contrast"}

# Each control Tab should reach (named by its path of tags and positions), in page order; and for the
# focused element, the contrast with what surrounds it of its ring: the better of its outline and its
# inner ring (a box-shadow).
TAB_HELPERS = """() => {
  const key = (e) => {
    const path = [];
    for (let n = e; n && n !== document.body; n = n.parentElement) {
      let i = 0, s = n;
      while ((s = s.previousElementSibling)) i++;
      path.unshift(n.tagName + i);
    }
    return path.join('/');
  };
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((m, n) => n - m); return (x + 0.05) / (y + 0.05); };
  const around = (e) => {
    for (let n = e.parentElement; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || c[3] > 0.5) return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
    }
    return 'rgb(255, 255, 255)';
  };
  // Not what a closed <details> holds (content-visibility: hidden), nor what is hidden otherwise.
  const shown = (e) => !e.disabled && e.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true});
  const CONTROLS = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]';
  window.__tab = {
    controls: () => [...document.querySelectorAll(CONTROLS)].filter((e) => e.tabIndex >= 0 && shown(e)).map(key),
    focused: () => {
      const e = document.activeElement;
      if (!e || e === document.body) return ['BODY', '', 0];
      const style = getComputedStyle(e), rings = [];
      if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) rings.push(style.outlineColor);
      const shadow = style.boxShadow.match(/rgba?\\([^)]*\\)/);
      if (shadow) rings.push(shadow[0]);
      return [key(e), e.outerHTML.slice(0, 120), Math.max(0, ...rings.map((c) => ratio(c, around(e))))];
    },
  };
}"""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two real nodes of this module's own: its FLASH must not reach the other console tests' banners."""
    with running_cluster(tmp_path_factory.mktemp("axe")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def workflow(nodes: Cluster) -> dict[str, str]:
    """A FLASH incident report from pk to ir's DGMO (a case), a clarification, an operation, a consultation."""
    pk, ir = nodes["pk"], nodes["ir"]
    place = {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"}
    incident = {"kind": "strike", "time": iso(-0.5), "location": place, "description": "Missiles hit a house.",
                "assessment": "A deliberate strike.", "escalation": 3}  # fmt: skip
    case = send(pk, "pk-dgmo", "incident.report", incident, precedence="FLASH")["id"]
    clarification = send(pk, "pk-dgmo", "clarification.request", {"questions": ["Who ordered it?"]}, case=case)["id"]
    window = {"start": iso(25), "end": iso(27)}
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": window}, case=case)["id"]
    proposal = {"title": "Review", "agenda": ["Liaison officers"], "start": iso(2), "venue": "Taftan"}
    consultation = send(pk, "pk-dgmo", "consultation.propose", proposal, precedence="ROUTINE")["id"]
    reaches(ir, "ir-dgmo", "consultation", consultation, "proposed")  # the last sent: all have arrived
    return {"case": case, "clarification": clarification, "action": action, "consultation": consultation}


def axe_problems(page: Page, where: str, rules: dict[str, Any] = CONSOLE_RULES) -> list[str]:
    """Run axe over the page; return a line per violation (and per undecided rule): id, impact, where, help."""
    page.evaluate(AXE)
    with held_still(page):
        results: dict[str, Any] = page.evaluate("(rules) => axe.run(document, rules)", rules)
    found = results["violations"] + [r for r in results["incomplete"] if r["id"] not in UNDECIDED_BY_DESIGN]
    lines = []
    for rule in found:
        for node in rule["nodes"]:
            summary = " ".join((node.get("failureSummary") or "undecided").split())
            target = " ".join(node["target"])
            lines.append(f"{where}: {rule['id']} ({rule['impact']}) at {target}: {rule['help']}. {summary}")
    return lines


def check(page: Page, url: str | None, where: str, problems: list[str]) -> None:
    """Open `url` (None: the page as it is), wait for the script to have run, and add axe's findings."""
    if url is not None:
        page.goto(url)
    expect(page.locator("#conn")).to_have_class("conn live")
    problems += axe_problems(page, where)


def screens(ids: dict[str, str]) -> dict[str, str]:
    """The screens checked besides the channel's and Admin (below), by name, with their addresses."""
    return {
        "Now": "/",
        "case": f"/case/{ids['case']}",
        "action": f"/action/{ids['action']}",
        "consultation": f"/consultation/{ids['consultation']}",
        "Record": "/record",
        "Find, with results": "/find?precedence=FLASH&precedence=IMMEDIATE",
        "Find, a field refused": "/find?q=x&from=2024-01-17&to=2024-01-16",
        "the 404 page": "/no-such-page",
    }


# In English every screen but Cases (a plain table) and a clarification's (the workflow template of an
# action's and a consultation's); in Urdu (right to left, another font) those with the most kinds of content.
# So the module stays near 25 s on two cores: all of them in Urdu and in Persian took some 30 s more and
# found nothing more (tried by hand, as were Cases, a clarification, a link down and a lost connection).
IN_URDU = ("Now", "case")


@pytest.mark.parametrize("lang", ["en", "ur"])
def test_every_screen_passes_axe_with_a_flash_waiting(
    nodes: Cluster, workflow: dict[str, str], open_console: OpenConsole, lang: str
) -> None:
    ir = nodes["ir"]
    problems: list[str] = []
    login = open_console(ir, None, lang=lang)
    login.fill("#name", "ir-dgmo")
    login.fill("#password", "not the password")
    login.click(".login-form button[type=submit]")
    expect(login.locator("#login-error")).to_be_visible()
    problems += axe_problems(login, f"{lang} login, refused")

    page = open_console(ir, "ir-dgmo", lang=lang)
    expect(page.locator("#flash-banner")).to_be_visible()
    for name, path in screens(workflow).items():
        if lang == "en" or name in IN_URDU:
            check(page, ir.url + path, f"{lang} {name}", problems)
    # The channel and its compose form, refused by the node (its errors on the fields), a codebook entry open.
    page.goto(ir.url + "/channel/dgmo?type=clarification.request")
    page.click("#compose-form button.send")
    expect(page.locator(".field-error").first).to_be_visible()
    page.locator("details.code summary").first.click()
    check(page, None, f"{lang} channel, the form refused, a code open", problems)
    if lang == "en":
        admin = open_console(ir, "ir-admin", lang=lang)
        check(admin, ir.url + "/admin", f"{lang} Admin", problems)
        translator = open_console(ir, "ir-translator1", lang=lang)
        translator.goto(ir.url + "/channel/dgmo")
        translator.locator("details.translate summary").first.click()
        check(translator, None, f"{lang} channel, the translation form open", problems)
    assert not problems, "axe-core found:\n" + "\n".join(problems)


def test_the_drill_report_and_comparison_pass_axe(browser: Browser) -> None:
    data = facts(node_dirs={"pk": "/d/nodes/pk", "ir": "/d/nodes/ir"}, agreement_file="/d/a.toml")
    data["steps"][1]["assumed"] = "no source says when it was acknowledged"
    report = computed(data)
    other = computed(facts())
    other["scenario"] = {**other["scenario"], "title": "another", "variant": "w"}
    page = browser.new_page()
    problems: list[str] = []
    for name, html in (("drill report", render_report(report)), ("drill comparison", render_comparison(report, other))):
        page.set_content(html)
        problems += axe_problems(page, name, RULES)
    page.close()
    assert not problems, "axe-core found:\n" + "\n".join(problems)


@pytest.mark.parametrize(("lang", "path", "screen"), [("ur", "/", "light"), ("en", "/channel/dgmo", "light"),
                                                   ("en", "/", "dark")])  # fmt: skip
def test_tab_reaches_every_control_in_order_with_a_ring_that_stands_out(
    nodes: Cluster, workflow: dict[str, str], open_console: OpenConsole, lang: str, path: str, screen: str
) -> None:
    page = open_console(nodes["ir"], "ir-dgmo", lang=lang)
    page.emulate_media(color_scheme="dark" if screen == "dark" else "light")  # the night theme: System follows it
    page.goto(nodes["ir"].url + path)
    expect(page.locator("#conn")).to_have_class("conn live")
    page.evaluate(TAB_HELPERS)
    controls: list[str] = page.evaluate("window.__tab.controls()")
    reached: list[str] = []
    faint: list[str] = []
    for _ in controls:
        page.keyboard.press("Tab")
        key, html, contrast = page.evaluate("window.__tab.focused()")
        reached.append(key)
        if key != "BODY" and contrast < 3:
            faint.append(f"{contrast:.2f}:1 {html}")
    assert reached == controls, [c for c in controls if c not in reached] or reached
    assert not faint, "focus rings under 3:1 against their surroundings:\n" + "\n".join(faint)


# The night theme passes the same rules over Now with a FLASH waiting, a channel (its form refused and a code
# open: every precedence's colour, the errors' red) and a case; in Urdu, Now. Followed from the screen's
# setting (System, the default), then chosen (Dark, whatever the screen says), which a reload and a new login
# keep. Some 8 s on two cores, with its Tab test above.
PAGE_GROUND = "getComputedStyle(document.documentElement).backgroundColor"
NIGHT_GROUND, DAY_GROUND = "rgb(14, 18, 23)", "rgb(241, 243, 246)"  # --wash, console.css


def test_the_night_theme_passes_axe_followed_or_chosen_and_the_choice_is_kept(
    nodes: Cluster, workflow: dict[str, str], open_console: OpenConsole
) -> None:
    ir = nodes["ir"]
    problems: list[str] = []
    page = open_console(ir, "ir-dgmo", lang="en")
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "system")
    expect(page.locator("#flash-banner")).to_be_visible()
    check(page, None, "the screen's night, Now", problems)
    assert page.evaluate(PAGE_GROUND) == NIGHT_GROUND
    check(page, ir.url + f"/case/{workflow['case']}", "the screen's night, case", problems)
    page.emulate_media(color_scheme="light")  # System follows the screen, both ways, without a reload
    assert page.evaluate(PAGE_GROUND) == DAY_GROUND

    page.goto(ir.url + "/channel/dgmo?type=clarification.request")
    page.locator("ul.themes a", has_text="Dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.url == ir.url + "/channel/dgmo?type=clarification.request"  # back where it was chosen
    assert page.evaluate(PAGE_GROUND) == NIGHT_GROUND  # the screen still says light
    page.click("#compose-form button.send")
    expect(page.locator(".field-error").first).to_be_visible()
    page.locator("details.code summary").first.click()
    check(page, None, "chosen night, channel, the form refused, a code open", problems)
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")

    page.click("form[action='/logout'] button")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # the login page too
    page.fill("#name", "ir-dgmo")
    page.fill("#password", next(o["password"] for o in ir.info["operators"] if o["name"] == "ir-dgmo"))
    page.select_option("#lang", "ur")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(ir.url + "/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    check(page, None, "chosen night, ur Now", problems)
    assert page.evaluate(PAGE_GROUND) == NIGHT_GROUND
    page.goto(ir.url + "/?lang=en")  # the operator's language as the other tests expect it
    assert not problems, "axe-core found:\n" + "\n".join(problems)
