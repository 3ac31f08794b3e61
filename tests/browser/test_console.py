"""The console in a real browser, against two real nodes: the FLASH round trip, languages, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from detente.core.precedence import parse_time
from support import Cluster, wait_for
from workflow_support import PRENOTIFY, get, iso, reaches, same_on_both, send, status_of

pytestmark = pytest.mark.browser
OpenConsole = Callable[..., Page]
TABLET: ViewportSize = {"width": 768, "height": 1024}
Shot = Callable[[Page, str], Path]


# Whether two elements' boxes do not overlap (measured in one step: nothing can move in between).
APART = """([one, two]) => {
  const [a, b] = [one, two].map((s) => document.querySelector(s).getBoundingClientRect());
  const apart = a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
  return a.width > 0 && b.width > 0 && apart;
}"""


def mark_page(page: Page) -> None:
    """Leave a mark in the page's JavaScript state: a reload or navigation would wipe it."""
    page.evaluate("window.__noReload = 'still here'")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__noReload === 'still here'"))


def compose_incident(page: Page, url: str, *, lat: str, place: str) -> None:
    """Open the dgmo channel with the incident report form and fill it in (FLASH)."""
    page.goto(url + "/channel/dgmo")
    page.select_option("#pick-type", "incident.report")  # the form reloads with the type's fields
    expect(page.locator("#f-kind")).to_be_visible()
    page.select_option("#f-precedence", "FLASH")
    page.select_option("#f-kind", "cross_border_fire")
    minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#f-time", minute_ago)
    page.fill("#f-location-lat", lat)
    page.fill("#f-location-lon", "62.65")
    page.fill("#f-location-place", place)
    page.fill("#f-description", "Mortar fire from across the border near Panjgur; two posts hit.")
    page.fill("#f-assessment", "Not attributed yet. We request clarification before any response.")
    page.fill("#f-escalation", "3")


def test_flash_incident_report_arrives_live_and_its_acknowledgement_comes_back_live(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    iranian = open_console(ir, "ir-dgmo")
    expect(iranian.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    mark_page(iranian)

    pakistani = open_console(pk, "pk-dgmo")
    compose_incident(pakistani, pk.url, lat="26.96", place="Panjgur")
    screenshot(pakistani, "en-channel-compose-incident")
    pakistani.click("#compose-form button.send")
    sent = pakistani.locator("article.msg.dir-out").last
    expect(sent).to_contain_text("Incident report")
    expect(pakistani.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    mark_page(pakistani)

    # The Iranian officer sees it arrive without reloading: the FLASH banner, the title, the card.
    expect(iranian.locator("#flash-banner")).to_be_visible()
    expect(iranian).to_have_title(re.compile(r"^⚠ FLASH"))
    card = iranian.locator("section.incoming article.msg.prec-flash")
    expect(card).to_contain_text("Panjgur")
    expect(card.locator(".countdown")).to_contain_text(re.compile(r"\d+:\d\d left"))
    assert not_reloaded(iranian)
    screenshot(iranian, "en-now-flash-arrived")

    # ... and acknowledges it with the keyboard: focus the message, press "a".
    card.focus()
    iranian.keyboard.press("a")
    expect(iranian.locator("section.incoming article.msg")).to_have_count(0)
    expect(iranian.locator("#flash-banner")).to_have_count(0)

    # The Pakistani screen shows the acknowledgement live.
    expect(sent.locator(".badge.b-acknowledged.done")).to_be_visible()
    expect(sent).to_contain_text("Acknowledged by ir:dgmo")
    assert not_reloaded(pakistani)
    screenshot(pakistani, "en-channel-acknowledged")

    # A codebook message, previewed in every language, declined with a reason typed after pressing "d".
    pakistani.goto(pk.url + "/channel/dgmo")
    code = pakistani.locator("#code-REQUEST-CALL")
    code.locator("summary").click()
    code.locator("input[data-param=time]").fill("2024-01-18T01:00")
    expect(code.locator(".preview[lang=ur]")).to_contain_text("2024-01-18 01:00 UTC")
    expect(code.locator(".preview[lang=fa]")).to_contain_text("درخواست گفت‌وگوی تلفنی")
    screenshot(pakistani, "en-channel-codebook")
    code.locator("button[type=submit]").click()
    expect(iranian.locator("section.incoming article.msg")).to_contain_text("telephone call between the principals")
    iranian.locator("section.incoming article.msg").first.focus()
    iranian.keyboard.press("d")
    expect(iranian.locator("section.incoming textarea[name=reason]").first).to_be_focused()
    # Spaces pass the browser's `required`: the node gives the form back, open, the error on the field
    # (QA: a full error page), and nothing is sent.
    iranian.keyboard.type("   ")
    iranian.locator("section.incoming .decline-form button").first.click()
    reason = iranian.locator("section.incoming textarea[name=reason][aria-invalid=true]")
    expect(reason).to_be_visible()
    expect(iranian.locator("section.incoming .decline-form .field-error")).to_contain_text("Say why you decline")
    expect(iranian.locator("section.incoming article.msg").first).to_contain_text(
        "telephone call between the principals"
    )
    reason.focus()
    iranian.keyboard.type("The principal is travelling; the deputy will call instead.")
    iranian.locator("section.incoming .decline-form button").first.click()
    declined = pakistani.locator("article.msg.dir-out").last
    expect(declined).to_contain_text("Declined by ir:dgmo")
    expect(declined).to_contain_text("the deputy will call instead")
    mark_page(pakistani)

    # The case the incident report opened has a timeline in both parties' local times and the date-time group.
    pakistani.locator("article.msg.dir-out", has_text="Panjgur").locator("a", has_text="Case").first.click()
    # Titled by the kind's label ("cross-border fire"), as on Urdu and Persian pages, not the workflow's id.
    expect(pakistani.locator("h1")).to_contain_text("cross-border fire at Panjgur")
    expect(pakistani.locator(".timeline")).to_contain_text("PK UTC+05:00")
    expect(pakistani.locator(".timeline")).to_contain_text("IR UTC+03:30")
    expect(pakistani.locator(".timeline .dtg").first).to_have_text(re.compile(r"^\d{6}Z[A-Z]{3}\d{2}$"))
    screenshot(pakistani, "en-case")


def test_a_bad_field_shows_the_nodes_error_on_that_field(console_nodes: Cluster, open_console: OpenConsole,
                                                          screenshot: Shot) -> None:  # fmt: skip
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    compose_incident(page, pk.url, lat="95", place="Panjgur")
    page.click("#compose-form button.send")
    field = page.locator("#f-location-lat")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-location-lat-error")).to_contain_text("Latitude must be a number from -90 to 90, not “95”")
    expect(field).to_be_focused()
    # What the officer typed is still there; the other fields are not marked.
    expect(page.locator("#f-location-place")).to_have_value("Panjgur")
    expect(page.locator("#f-location-place")).not_to_have_attribute("aria-invalid", "true")
    screenshot(page, "en-channel-field-error")
    # Evidence for a report is uploaded to the node and listed in the form by its SHA-256.
    page.goto(pk.url + "/channel/dgmo?type=action.report")
    page.set_input_files("#f-evidence-file", files=[{"name": "crater.txt", "mimeType": "text/plain",
                                                     "buffer": b"Crater 3 m wide, 200 m from post 7."}])  # fmt: skip
    expect(page.locator("#f-evidence")).to_have_value(re.compile(r'"sha256": "[0-9a-f]{64}"'))
    # How an upload went is said under the file input (QA: a floating notice covered the Send button),
    # a refusal in the node's English words, left to right.
    status = page.locator("#f-evidence-file-status")
    expect(status).to_have_text("Uploaded: crater.txt")
    page.set_input_files("#f-evidence-file", files=[{"name": "crater.zip", "mimeType": "application/zip",
                                                     "buffer": b"PK\x03\x04"}])  # fmt: skip
    expect(status.locator(".failed bdi[lang=en][dir=ltr]")).to_contain_text("'application/zip' is not allowed")
    assert page.evaluate(APART, ["#f-evidence-file-status", "#compose-form button.send"]), "the notice covers Send"
    expect(page.locator("#toasts .toast", has_text="crater")).to_have_count(0)
    # A message arriving meanwhile is announced by a notice that floats clear of Send (QA: it covered
    # it), and a click dismisses it.
    send(console_nodes["ir"], "ir-dgmo", "hotline.text", {"text": "Notice test."}, precedence="ROUTINE")
    notice = page.locator("#toasts .toast", has_text="ir:dgmo")
    expect(notice).to_have_count(1)
    assert page.evaluate(APART, ["#toasts .toast", "#compose"]), "the notice covers the compose panel"
    notice.click()
    expect(notice).to_have_count(0)


def test_an_operator_cannot_open_another_offices_channel(console_nodes: Cluster, open_console: OpenConsole,
                                                          screenshot: Shot) -> None:  # fmt: skip
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    response = page.goto(pk.url + "/channel/fs")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".nav")).not_to_contain_text("fs")
    screenshot(page, "en-403")


def test_posts_without_the_csrf_token_are_refused(console_nodes: Cluster, open_console: OpenConsole) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-dgmo")
    page.goto(pk.url + "/channel/dgmo")
    body: dict[str, str | float | bool] = {"type": "hotline.text", "precedence": "ROUTINE", "b.text": "forged"}
    # The browser's own cookies, the node's own origin, but no token: refused, nothing sent.
    refused = page.request.post(pk.url + "/channel/dgmo/send", form=body, headers={"Origin": pk.url})
    assert refused.status == 403
    wrong = page.request.post(pk.url + "/channel/dgmo/send", form={**body, "csrf": "x" * 43})
    assert wrong.status == 403
    api = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text", "body": {"text": "x"}}
    assert page.request.post(pk.url + "/api/v1/messages", data=api).status == 401
    # With the session's token the same API call goes through (the console's own script could use it).
    token = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    assert page.request.post(pk.url + "/api/v1/messages", data=api, headers={"X-CSRF-Token": token}).status == 201
    page.reload()
    expect(page.locator("article.msg", has_text="forged")).to_have_count(0)


def test_switching_to_urdu_makes_the_page_right_to_left(console_nodes: Cluster, open_console: OpenConsole) -> None:
    pk = console_nodes["pk"]
    page = open_console(pk, "pk-fs")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    page.click(".langs a[lang=ur]")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    expect(page.locator(".nav a[aria-current=page]")).to_have_text("ابھی")
    # The choice is the operator's: it holds on the next page without ?lang=.
    page.goto(pk.url + "/channel/fs")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    # In a right-to-left page the compose panel sits on the left, the thread on the right.
    # Both measured in one step: a live refresh may replace the thread between two separate reads.
    compose_x, thread_x = page.evaluate(
        "() => ['#compose', 'section.thread'].map((s) => document.querySelector(s).getBoundingClientRect().left)"
    )
    assert compose_x < thread_x, (compose_x, thread_x)
    page.goto(pk.url + "/?lang=en")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")


SCREENS = [("now", "/"), ("channel", "/channel/dgmo"), ("cases", "/cases"), ("record", "/record"), ("admin", "/admin")]


@pytest.mark.parametrize("lang", ["en", "ur", "fa"])
def test_screenshots_of_the_main_screens(console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot,
                                         lang: str) -> None:  # fmt: skip
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    page = open_console(pk, None, lang=lang)
    screenshot(page, f"{lang}-login")
    page.fill("#name", "pk-admin")
    page.fill("#password", "pk-admin-demo")
    page.click(".login-form button[type=submit]")
    page.wait_for_url(pk.url + "/")
    for name, path in SCREENS:
        page.goto(pk.url + path)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        screenshot(page, f"{lang}-{name}")
    # A message of its own on ir's channel: under pytest-xdist the module's other tests may run elsewhere.
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
               "body": {"text": f"Screens in {lang}"}}  # fmt: skip
    sent = pk.created("pk-dgmo", "/api/v1/messages", request)["id"]
    wait_for(lambda: ir.message("ir-dgmo", sent, missing_ok=True), what="the message to reach ir")
    tablet = open_console(ir, "ir-dgmo", viewport=TABLET, lang=lang)
    tablet.goto(ir.url + "/channel/dgmo")
    screenshot(tablet, f"{lang}-tablet-channel-ir")
    if lang == "fa":
        expect(tablet.locator(".when .hijri").first).to_contain_text("14")  # the Solar Hijri year


def utc_form(iso_time: str, seconds: float = 0) -> str:
    """Return an RFC 3339 time moved by `seconds`, as the form writes times: `2024-01-16 13:05:09`."""
    return (parse_time(iso_time) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def test_an_execution_starts_after_the_consent_and_one_started_before_it_waits_for_confirmation(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    """QA: "Operation executed", prefilled to the minute, came before a consent of the same minute: unilateral."""
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    window = {"start": iso(24.5), "end": iso(26)}
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": window}, precedence="IMMEDIATE")["id"]
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    send(ir, "ir-dgmo", "action.consent", {}, refs=[action])
    reaches(pk, "pk-dgmo", "action", action, "consented")
    consented = get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["action"]["history"][-1]["created"]
    page = open_console(pk, "pk-dgmo", lang="en")
    page.goto(pk.url + "/channel/dgmo")
    page.locator(f"#m-{action} .followups a", has_text="Operation executed").click()
    expect(page.locator("#execute-note")).to_contain_text(f"Consent to this operation was given at {consented[:10]}")
    prefilled = page.locator("#f-started").input_value()
    assert prefilled >= utc_form(consented), (prefilled, consented)  # to the second, never before the consent
    screenshot(page, "en-channel-execute-consented")
    # Started a minute before the consent: nothing is sent until the officer confirms what the record will say.
    page.fill("#f-started", utc_form(consented, -60))
    page.click("#compose-form button.send")
    expect(page.locator("#confirm-unilateral")).to_contain_text("executed before consent was given")
    expect(page.locator("#f-started")).to_have_value(utc_form(consented, -60))
    screenshot(page, "en-channel-execute-confirm-unilateral")
    assert status_of(pk, "pk-dgmo", "action", action) == "consented"
    page.fill("#f-started", prefilled)
    page.click("#compose-form button.send")
    expect(page.locator("p.notice[role=status]")).to_contain_text("Sent.")
    expect(page.locator("p.notice[role=status]")).not_to_contain_text("unilaterally")
    reaches(ir, "ir-dgmo", "action", action, "executed")
    state = same_on_both(console_nodes, "action", action)
    assert (state["unilateral"], state["unilateral_reason"]) == (False, None)


def test_minutes_with_action_items_are_written_in_rows_and_co_signed_from_what_is_shown(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    """QA: items had to be typed as JSON; co-signing from Now lacked the minutes' ref and their SHA-256."""
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    proposal = {"title": "Turbat liaison review", "agenda": ["Liaison officers"], "start": iso(2), "venue": "Taftan"}
    cons = send(pk, "pk-dgmo", "consultation.propose", proposal, precedence="ROUTINE")["id"]
    reaches(ir, "ir-dgmo", "consultation", cons, "proposed")
    send(ir, "ir-dgmo", "consultation.agree", {}, refs=[cons], precedence="ROUTINE")
    reaches(pk, "pk-dgmo", "consultation", cons, "agreed")
    send(pk, "pk-dgmo", "consultation.held", {"held_at": iso(0)}, refs=[cons], precedence="ROUTINE")
    reaches(pk, "pk-dgmo", "consultation", cons, "held")

    page = open_console(pk, "pk-dgmo", lang="en")
    page.goto(pk.url + f"/channel/dgmo?type=consultation.minutes&refs={cons}")
    page.select_option("#f-precedence", "ROUTINE")
    page.fill("#f-text", "Both sides reviewed the liaison arrangements.")
    page.fill("#f-items-0-title", "Post a liaison officer at Turbat")
    page.select_option("#f-items-0-owner", "ir:lo-turbat")
    page.fill("#f-items-0-due", "2024-01-01 00:00")  # already due: refused on its cell
    page.click("#f-items button.add-row")
    expect(page.locator("#f-items-1-title")).to_be_visible()
    expect(page.locator("#f-items-0-title")).to_have_value("Post a liaison officer at Turbat")
    page.fill("#f-items-1-title", "Share patrol schedules")
    page.select_option("#f-items-1-owner", "pk:dgmo")
    page.fill("#f-items-1-due", utc_form(iso(240)))
    page.click("#compose-form button.send")
    expect(page.locator("#f-items-0-due-error")).to_contain_text("Items, A1 · Due must be after the minutes are sent")
    expect(page.locator("#f-items-1-title")).to_have_value("Share patrol schedules")
    due = utc_form(iso(24 * 14))
    page.fill("#f-items-0-due", due)
    screenshot(page, "en-channel-minutes-items")
    page.click("#compose-form button.send")
    sent = page.locator("article.msg.dir-out", has_text="Both sides reviewed the liaison")
    expect(sent).to_contain_text(f"A1 · Post a liaison officer at Turbat · ir:lo-turbat · due {due[:16]}Z")
    expect(sent).to_contain_text("A2 · Share patrol schedules · pk:dgmo · due")
    reaches(ir, "ir-dgmo", "consultation", cons, "minutes_proposed")
    state = get(ir, "ir-dgmo", f"/api/v1/consultations/{cons}")["consultation"]

    # Iran co-signs from Now: the form shows the minutes, refs them, and carries the digest of what it shows.
    iranian = open_console(ir, "ir-dgmo", lang="en")  # an earlier test may have left ir-dgmo reading Persian
    waiting = iranian.locator("section.waiting li", has_text="Turbat liaison review")
    waiting.locator("a", has_text="Co-sign the minutes").click()
    shown = iranian.locator("#minutes-to-sign")
    expect(shown).to_contain_text("Both sides reviewed the liaison arrangements.")
    expect(shown).to_contain_text("A1 · Post a liaison officer at Turbat · ir:lo-turbat · due")
    expect(iranian.locator("#minutes-sha256")).to_have_text(state["minutes_sha256"])
    expect(iranian.locator("#f-sha256")).to_have_value(state["minutes_sha256"])
    expect(iranian.locator("#f-refs")).to_have_value(f"{cons} {state['minutes']}")
    screenshot(iranian, "en-channel-cosign")
    iranian.click("#compose-form button.send")
    expect(iranian.locator("p.notice[role=status]")).to_contain_text("Sent.")
    # Pakistan co-signs too, with the digest pasted in capitals: the record writes it in lower case.
    page.goto(pk.url + f"/channel/dgmo?type=consultation.cosign&refs={cons}")
    page.fill("#f-sha256", state["minutes_sha256"].upper())
    page.click("#compose-form button.send")
    expect(page.locator("p.notice[role=status]")).to_contain_text("Sent.")
    reaches(ir, "ir-dgmo", "consultation", cons, "minutes_cosigned")
    assert same_on_both(console_nodes, "consultation", cons)["cosigned_by"].keys() == {"pk", "ir"}
    # Pakistan closes its item, chosen among the open items by id and text (A1 is Iran's to close).
    page.goto(pk.url + f"/channel/dgmo?type=consultation.item_done&refs={cons}")
    expect(page.locator("#f-item option")).to_have_text(["—", "A2 · Share patrol schedules · pk:dgmo"])
    page.select_option("#f-item", "A2")
    page.click("#compose-form button.send")
    expect(page.locator("p.notice[role=status]")).to_contain_text("Sent.")
    items = get(pk, "pk-dgmo", f"/api/v1/consultations/{cons}")["consultation"]["items"]
    assert [(i["id"], i["status"]) for i in items] == [("A1", "open"), ("A2", "done")]


def test_the_liaison_officer_a_report_came_to_may_ask_for_a_clarification(
    console_nodes: Cluster, open_console: OpenConsole
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    report = {"kind": "border_crossing", "time": iso(-0.1), "description": "Armed men crossed near Mand.",
              "location": {"lat": 26.1, "lon": 62.1, "place": "Mand"}, "assessment": "Unknown group."}  # fmt: skip
    sent = send(pk, "pk-lo-zahedan", "incident.report", report, channel="liaison", to="ir:lo-turbat",
                precedence="IMMEDIATE")["id"]  # fmt: skip
    wait_for(lambda: ir.message("ir-lo-turbat", sent, missing_ok=True), what="the report to reach ir")
    page = open_console(ir, "ir-lo-turbat", lang="en")
    page.goto(ir.url + "/channel/liaison")
    buttons = page.locator(f"#m-{sent} .followups a")
    expect(buttons).to_have_text(["Case update", "Request for clarification"])
    buttons.last.click()
    expect(page.locator("#pick-type")).to_have_value("clarification.request")
    expect(page.locator("#f-refs")).to_have_value(sent)
    expect(page.locator("#f-case")).to_have_value(sent)


def test_an_actions_page_follows_the_operation_live_and_reads_right_to_left_in_persian(
    console_nodes: Cluster, open_console: OpenConsole, screenshot: Shot
) -> None:
    pk, ir = console_nodes["pk"], console_nodes["ir"]
    window = {"start": iso(24.5), "end": iso(26)}
    body = {**PRENOTIFY, "target_group": "Live page (browser test)", "window": window}
    action = send(pk, "pk-dgmo", "operation.prenotify", body)["id"]
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    page = open_console(pk, "pk-dgmo", lang="en")
    page.goto(pk.url + f"/action/{action}")
    expect(page.locator("#conn")).to_have_class(re.compile(r"\blive\b"))
    mark_page(page)
    send(ir, "ir-dgmo", "action.consent", {"note": "No objection"}, refs=[action])
    # The consent arrives on the open page, without a reload, with what the proposer may send now.
    expect(page.locator("#live .case-head .state")).to_have_text("consented")
    expect(page.locator("#live .next .followups a", has_text="Operation executed")).to_be_visible()
    assert not_reloaded(page)
    screenshot(page, "en-action")
    persian = open_console(ir, "ir-translator1")  # a translator reads Persian
    persian.goto(ir.url + f"/action/{action}")
    expect(persian.locator("html")).to_have_attribute("dir", "rtl")
    ltr = persian.locator(f'code[title="{action}"]').evaluate("e => getComputedStyle(e).direction")
    assert ltr == "ltr"
    screenshot(persian, "fa-action")
