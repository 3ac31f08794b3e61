"""The console shows the stored, complete state of every workflow, as the operator API and the CLI do.

Two real nodes (the session's `pair`). Each office reads a workflow whole once it may see it at all,
whichever offices' envelopes moved it: a case reopened on the ministers' channel reads open to the
liaison officers who resolved it; an operation reported between the DGMOs waits on the liaison
officer who may verify it; an action item reported done between the DGMOs is not overdue to the
ministers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from cli_support import detente
from console_support import login
from support import Cluster, NodeProc, wait_for
from workflow_support import PRENOTIFY, get, iso, post, reaches, send, status_of

INCIDENT = {"kind": "cross_border_fire", "time": iso(-0.5), "description": "Shots across the border at the post.",
            "location": {"lat": 28.9, "lon": 61.6, "place": "Mirjaveh post"}, "assessment": "Smugglers, not troops.",
            "escalation": 2}  # fmt: skip


@contextmanager
def console(node: NodeProc, name: str) -> Iterator[httpx.Client]:
    """A browser signed in to `node`'s console as the demo operator `name`."""
    with httpx.Client(base_url=node.url, verify=node.context, timeout=30) as browser:
        assert login(browser, name).status_code == 303
        yield browser


def page(node: NodeProc, name: str, path: str) -> str:
    with console(node, name) as browser:
        response = browser.get(path)
    assert response.status_code == 200, response.text[:2000]
    return response.text


def listed_status(node: NodeProc, name: str, case: str) -> str | None:
    """The status the /cases screen shows `name` for the case (None: the case is not listed)."""
    found = re.search(rf'<tr class="case-(\w+)"><th scope="row"><a href="/case/{case}"', page(node, name, "/cases"))
    return found.group(1) if found else None


def waiting_entry(text: str, title: str) -> str | None:
    """The 'Waiting for this side' entry of the Now screen that names `title`, as HTML."""
    section = re.search(r'<section class="panel waiting".*?</section>', text, re.S)
    entries = re.findall(r"<li>.*?</li>", section.group(0), re.S) if section else []
    return next((e for e in entries if title in e), None)


def overdue_items(text: str) -> list[str]:
    """The titles of the Now screen's overdue action items."""
    section = re.search(r"<h3>Overdue action items</h3>\s*<ul class=\"list\">(.*?)</ul>", text, re.S)
    return re.findall(r'<li class="late"><span dir="auto">(.*?)</span>', section.group(1)) if section else []


def your_items(text: str) -> list[tuple[str, bool]]:
    """The Now screen's open action items of the viewer's offices: (title, overdue)."""
    section = re.search(r'<ul class="list your-items">(.*?)</ul>', text, re.S)
    rows = (
        re.findall(r'<li( class="late")?><a href="[^"]+"><span dir="auto">(.*?)</span>', section.group(1))
        if section
        else []
    )
    return [(title, bool(late)) for late, title in rows]


def minister(node: NodeProc, kind: str, body: dict[str, object], *refs: str) -> str:
    """Send a message of the Foreign Secretaries' channel as `node`'s minister; return its id."""
    other = "ir" if node.party == "pk" else "pk"
    sent = send(node, f"{node.party}-fs", kind, body, channel="fs", to=f"{other}:fs", refs=list(refs),
                precedence="ROUTINE")  # fmt: skip
    return str(sent["id"])


def test_every_office_sees_the_case_reopened_on_another_channel(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    case = send(pk, "pk-lo-zahedan", "incident.report", INCIDENT, channel="liaison", to="ir:lo-turbat",
                precedence="FLASH")["id"]  # fmt: skip
    reaches(ir, "ir-lo-turbat", "case", case, "open")
    send(ir, "ir-lo-turbat", "case.update", {"escalation": 1, "note": "Patrol sent"}, channel="liaison",
         to="pk:lo-zahedan", case=case)  # fmt: skip
    reaches(pk, "pk-lo-zahedan", "case", case, "open")
    send(pk, "pk-lo-zahedan", "case.update", {"status": "resolved"}, channel="liaison", to="ir:lo-turbat", case=case)
    reaches(ir, "ir-lo-turbat", "case", case, "resolved")
    reopened = "Reopened by the ministry: a second report came in"
    send(pk, "pk-fs", "case.update", {"status": "open", "note": reopened}, channel="fs", to="ir:fs", case=case)
    reaches(ir, "ir-fs", "case", case, "open")
    reaches(ir, "ir-lo-turbat", "case", case, "open")

    for node, names in ((pk, ("pk-lo-zahedan", "pk-fs", "pk-supervisor")), (ir, ("ir-lo-turbat", "ir-fs"))):
        for name in names:
            assert status_of(node, name, "case", case) == "open", name  # what the API (and the CLI) say
            assert listed_status(node, name, case) == "open", name
    for node, name in ((pk, "pk-lo-zahedan"), (ir, "ir-lo-turbat")):
        assert f'<option value="{case}"' in page(node, name, "/channel/liaison"), name  # the compose "Case" menu
    # An office that never touched the case does not see it, on any screen.
    assert status_of(pk, "pk-dgmo", "case", case) is None and listed_status(pk, "pk-dgmo", case) is None
    with console(pk, "pk-dgmo") as browser:
        assert browser.get(f"/case/{case}").status_code == 404

    officer = page(pk, "pk-lo-zahedan", f"/case/{case}")
    assert re.search(r'<span class="state s-open">', officer)
    # The ministers' update is on the timeline (who, what it changed) but its text is not the officer's to read.
    other = re.findall(r'<p class="tl-other">(.*?)</p>', officer, re.S)
    assert len(other) == 1 and "<bdi>pk:fs</bdi>" in other[0] and "<bdi>ir:fs</bdi>" in other[0]
    assert reopened not in officer and officer.count('<article class="msg') == 3
    minister_page = page(pk, "pk-fs", f"/case/{case}")
    assert reopened in minister_page and minister_page.count('<p class="tl-other">') == 3
    # The escalation over time is the whole case's: the officers' levels, on the minister's page too.
    escalation = re.search(r'<section class="panel" aria-labelledby="h-esc">.*?</section>', minister_page, re.S)
    assert escalation and escalation.group(0).count("<tr>") == 3  # a header, the report (pk 2), ir's update (ir 1)


def test_the_liaison_officer_is_asked_to_verify_a_reported_operation(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    group = "Jaish cell near Saravan (console test)"
    window = {"start": iso(25), "end": iso(30)}
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "target_group": group, "window": window})["id"]
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    send(ir, "ir-dgmo", "action.consent", {"note": "No objection"}, refs=[action])
    reaches(pk, "pk-dgmo", "action", action, "consented")
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action])  # the window opens in 25 hours
    log = b"Hideout near Saravan destroyed (console test) " + os.urandom(8).hex().encode()
    item = post(pk, "pk-dgmo", "/api/v1/evidence?name=site-log.txt", None, content=log,
                headers={"Content-Type": "text/plain"})["evidence"]  # fmt: skip
    send(pk, "pk-dgmo", "action.report", {"summary": "The hideout was destroyed.", "evidence": [item]}, refs=[action])
    reaches(ir, "ir-lo-turbat", "action", action, "reported")
    allowed = get(ir, "ir-lo-turbat", f"/api/v1/actions/{action}")["allowed"]
    assert allowed == {"ir:lo-turbat": ["action.verify", "action.dispute"]}

    entry = waiting_entry(page(ir, "ir-lo-turbat", "/"), group)
    assert entry is not None and f'<a href="/action/{action}">' in entry  # the entry opens the action's page
    assert f'href="/channel/liaison?type=action.verify&amp;refs={action}' in entry
    assert f'href="/channel/liaison?type=action.dispute&amp;refs={action}' in entry
    # The DGMO's side waits too, but it is not the DGMO's to verify: no button for it.
    dgmo = waiting_entry(page(ir, "ir-dgmo", "/"), group)
    assert dgmo is not None and "action.verify" not in dgmo and 'class="button' not in dgmo
    # The proposing side waits on nobody: the operation is not listed there.
    assert waiting_entry(page(pk, "pk-lo-zahedan", "/"), group) is None

    # The officer's page: the flag, the report sent between the DGMOs and its file, what the officer may send.
    def officer_page() -> str:
        """The page once the file is on ir (fetched from pk): until then it is listed, not offered."""
        text = page(ir, "ir-lo-turbat", f"/action/{action}")
        return text if "download>site-log.txt</a>" in text else ""

    officer = wait_for(officer_page, what="ir to fetch the report's file")
    assert (
        '<span class="state s-reported">' in officer and "It started outside the window it was notified for." in officer
    )
    assert "unilateral" not in officer  # consented before it started
    assert "The hideout was destroyed." in officer and f'<code class="hash">{item["sha256"]}</code>' in officer
    assert f'href="/channel/liaison?type=action.verify&amp;refs={action}' in officer
    # Every message of it went between the DGMOs: on the timeline, only what each changed.
    other = re.findall(r'<p class="tl-other">(.*?)</p>', officer, re.S)
    assert len(other) == 4 and "<article" not in officer and all("<bdi>ir:dgmo</bdi>" in o for o in other)
    with console(ir, "ir-lo-turbat") as browser:
        assert browser.get(f"/api/v1/evidence/{item['sha256']}").content == log  # the download the page links to
    # An office that never touched the operation sees nothing of it: a 404 page, as the API answers 404.
    with console(pk, "pk-fs") as browser:
        hidden = browser.get(f"/action/{action}")
    assert hidden.status_code == 404 and group not in hidden.text and "Saravan" not in hidden.text

    send(ir, "ir-lo-turbat", "action.verify", {"note": "Confirmed at the site."}, channel="liaison",
         to="pk:lo-zahedan", refs=[action])  # fmt: skip
    wait_for(lambda: waiting_entry(page(ir, "ir-lo-turbat", "/"), group) is None, what="the verify to be done")
    reaches(pk, "pk-lo-zahedan", "action", action, "verified")
    # The proposing DGMO learns it was verified, and what the officer said, though it went between the officers.
    proposer = page(pk, "pk-dgmo", f"/action/{action}")
    assert '<span class="state s-verified">' in proposer and "Confirmed at the site." in proposer
    assert proposer.count('<article class="msg') == 4 and proposer.count('<p class="tl-other">') == 1
    assert proposer.count(f'<a href="/action/{action}" class="workflow-link">') == 4  # each card links to the page
    with console(pk, "pk-dgmo") as browser:
        live = browser.get(f"/action/{action}?fragment=1")  # what the live refresh fetches
    assert live.status_code == 200 and "<html" not in live.text and "s-verified" in live.text


def test_an_operation_executed_without_consent_reads_unilateral_in_each_language(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    group = "Unannounced strike (console test)"
    window = {"start": iso(25), "end": iso(30)}
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "target_group": group, "window": window})["id"]
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action])
    reaches(ir, "ir-dgmo", "action", action, "executed")
    english = page(ir, "ir-dgmo", f"/action/{action}")
    assert "The record says this operation was executed unilaterally: executed without consent." in english
    assert '<span class="warn">unilateral</span>' in english
    # A translator reads it in Persian: the page runs right to left, the ids and times left to right in it.
    persian = page(ir, "ir-translator1", f"/action/{action}")
    assert '<html lang="fa" dir="rtl" data-theme=' in persian and f'<code title="{action}">{action}</code>' in persian
    assert re.search(r'<time datetime="[^"]+" title="[^"]+"><bdi>', persian)
    assert 'class="button' not in re.sub(r"<header.*?</header>", "", persian, flags=re.S)  # a translator sends none


def test_an_item_done_on_another_channel_is_not_overdue(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    proposal = {"title": "Ministers' review (console test)", "agenda": ["Border markets"], "start": iso(1),
                "venue": "Islamabad"}  # fmt: skip
    consultation = minister(pk, "consultation.propose", proposal)
    reaches(ir, "ir-fs", "consultation", consultation, "proposed")
    minister(ir, "consultation.agree", {}, consultation)
    reaches(pk, "pk-fs", "consultation", consultation, "agreed")
    minister(pk, "consultation.held", {"held_at": iso(0)}, consultation)
    reaches(ir, "ir-fs", "consultation", consultation, "held")
    done, still_open = "DGMO to brief (console test)", "Ministry to reply (console test)"
    due = iso(3 / 3600)  # an item may not start overdue: both are due in three seconds
    items = [{"id": "brief", "title": done, "owner": "pk:dgmo", "due": due},
             {"id": "reply", "title": still_open, "owner": "ir:fs", "due": due}]  # fmt: skip
    minutes = minister(ir, "consultation.minutes", {"text": "Reviewed.", "items": items}, consultation)
    reaches(pk, "pk-fs", "consultation", consultation, "minutes_proposed")
    digest = get(pk, "pk-fs", f"/api/v1/consultations/{consultation}")["consultation"]["minutes_sha256"]
    minister(pk, "consultation.cosign", {"sha256": digest}, consultation, minutes)
    minister(ir, "consultation.cosign", {"sha256": digest}, consultation, minutes)
    reaches(pk, "pk-fs", "consultation", consultation, "minutes_cosigned")
    wait_for(lambda: done in overdue_items(page(ir, "ir-fs", "/")), 10, 0.5, "the items' due time")
    assert (still_open, True) in your_items(page(ir, "ir-fs", "/"))  # ir:fs's own: listed once, as its own

    # The ministers gave pk:dgmo an item: the DGMO sees the consultation (API, CLI, console) and its item on Now.
    reaches(pk, "pk-dgmo", "consultation", consultation, "minutes_cosigned")
    assert consultation in [c["id"] for c in get(pk, "pk-dgmo", "/api/v1/consultations")["consultations"]]
    detail = get(pk, "pk-dgmo", f"/api/v1/consultations/{consultation}")
    assert detail["allowed"] == {"pk:dgmo": ["consultation.item_done"]}
    assert [i["id"] for i in detail["overdue_items"]] == ["brief", "reply"]
    shown = detente("consultation", "show", "--node", str(pk.data), "--token", pk.token("pk-dgmo"), consultation)
    assert (
        shown.code == 0
        and '"owner": "pk:dgmo"' in shown.stdout
        and "pk:dgmo may send: consultation.item_done" in (shown.stdout)
    )
    assert (done, True) in your_items(page(pk, "pk-dgmo", "/"))
    owner = page(pk, "pk-dgmo", f"/consultation/{consultation}")
    assert '<span class="state s-minutes_cosigned">' in owner and "before its scheduled start" in owner  # held early
    assert f'<code class="hash">{digest}</code>' in owner and owner.count('<span class="ok">co-signed</span>') == 2
    assert re.search(r'<tr id="item-brief" class="late">.*?\(yours\).*?overdue</span></td>', owner, re.S)
    assert not re.search(r'<tr id="item-reply" class="late">[^\n]*\(yours\)', owner)
    assert f'href="/channel/dgmo?type=consultation.item_done&amp;refs={consultation}' in owner
    # The ministers' messages are not the DGMO's to read: on the timeline, only what each changed.
    assert owner.count('<p class="tl-other">') == 6 and "<article" not in owner and "Reviewed." not in owner
    # An office given nothing and sent nothing sees nothing of it, on any screen.
    assert status_of(pk, "pk-lo-zahedan", "consultation", consultation) is None
    with console(pk, "pk-lo-zahedan") as browser:
        assert browser.get(f"/consultation/{consultation}").status_code == 404

    # The DGMOs report the item done between themselves, after its due time.
    send(pk, "pk-dgmo", "consultation.item_done", {"item": "brief"}, refs=[consultation])

    def brief() -> dict[str, object]:
        state = get(ir, "ir-fs", f"/api/v1/consultations/{consultation}")["consultation"]
        item: dict[str, object] = next(i for i in state["items"] if i["id"] == "brief")
        return item

    wait_for(lambda: brief()["status"] == "done", what="the item to be done on ir")
    assert brief()["late"] is True
    overdue = get(ir, "ir-fs", f"/api/v1/consultations/{consultation}")["overdue_items"]
    assert [i["id"] for i in overdue] == ["reply"]
    for node, name in ((ir, "ir-dgmo"), (pk, "pk-fs")):
        listed = overdue_items(page(node, name, "/"))
        assert done not in listed and still_open in listed, name
    assert (still_open, True) in your_items(page(ir, "ir-fs", "/"))
    assert done not in [title for title, _ in your_items(page(pk, "pk-dgmo", "/"))]
    closed = page(pk, "pk-dgmo", f"/consultation/{consultation}")
    assert re.search(r'<tr id="item-brief">.*?done .*?<span class="warn">late</span>', closed, re.S)
