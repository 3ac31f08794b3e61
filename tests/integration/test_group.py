"""A group of states: three real nodes (pk, ir, af) under one agreement, each pair with its channels.

DESIGN.md promises a hotline "for any pair or group of states"; every other test runs two. A QA pass
set up three and found where a third party saw or changed what was between two others:

- a peer read every entry bundle of a node's log, the plaintext of the other pairs' messages too;
- a case between pk and ir took a `case.update` that pk sent af, so pk's and ir's cases diverged;
- a message to af could refer to a pk–ir message af never had;
- ir sending on the pk–af channel was told it "is not bound to office pk:dgmo";
- ir's console showed af's escalation column and local time on a pk–ir case.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_support import detente
from console_support import csrf_of, login
from detente.core import agreement as agreement_mod
from detente.core import tiles, wire
from detente.node.config import load_config
from support import Cluster, NodeProc, quiet, running_cluster, wait_for
from workflow_support import get, iso, post, send

INCIDENT = {"kind": "cross_border_fire", "time": iso(-0.5), "description": "Shots across the border at the post.",
            "location": {"lat": 28.9, "lon": 61.6, "place": "Mirjaveh post"}, "assessment": "Smugglers, not troops.",
            "escalation": 2}  # fmt: skip


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("trio"), group=True) as cluster:
        yield cluster


def text(node: NodeProc, operator: str, channel: str, to: str, words: str, **extra: Any) -> dict[str, Any]:
    return send(node, operator, "hotline.text", {"text": words}, channel=channel, to=to, **extra)


def signed_get(cluster: Cluster, reader: NodeProc, target: NodeProc, path: str) -> httpx.Response:
    """GET a federation path of `target`, signed with `reader`'s node key as `reader`'s node would."""
    doc = agreement_mod.load(Path(cluster.info["agreement"]).read_text(encoding="utf-8"))
    signer = load_config(reader.data).signer()
    ratification = wire.ratify(doc, signer)
    headers = wire.sign_request(
        signer, reader.party, ratification, doc, "GET", path, b"", int(time.time()), target.party
    )
    return httpx.get(target.url + path, headers=headers, verify=target.context, timeout=30)


def test_each_pair_talks_on_its_own_channel_and_each_log_is_witnessed_by_both_others(trio: Cluster) -> None:
    pk, ir, af = trio["pk"], trio["ir"], trio["af"]
    to_ir = text(pk, "pk-dgmo", "dgmo", "ir:dgmo", "Between Pakistan and Iran only.")["id"]
    to_af = text(pk, "pk-dgmo", "dgmo-pk-af", "af:dgmo", "To Afghanistan.")["id"]
    ir_af = text(ir, "ir-dgmo", "dgmo-ir-af", "af:dgmo", "From Iran to Afghanistan.")["id"]
    wait_for(lambda: af.message("af-dgmo", to_af, missing_ok=True).get("state") == "delivered", what="pk→af")
    wait_for(lambda: af.message("af-dgmo", ir_af, missing_ok=True).get("state") == "delivered", what="ir→af")
    wait_for(lambda: ir.message("ir-dgmo", to_ir, missing_ok=True).get("state") == "delivered", what="pk→ir")
    # The bystander has nothing of the pk–ir message: not in its API, not in its log.
    assert af.message("af-supervisor", to_ir, missing_ok=True) == {}
    quiet(trio)

    def cosigned_by_both(node: NodeProc) -> bool:
        state = get(node, f"{node.party}-admin", "/api/v1/log")
        others = [p for p in ("pk", "ir", "af") if p != node.party]
        return set(state["peers"]) == set(others) and all(
            (state["peers"][p]["our_size_cosigned"] or 0) >= 3 for p in others
        )

    for node in (pk, ir, af):
        wait_for(lambda n=node: cosigned_by_both(n), timeout=30, what=f"{node.party}'s log cosigned by both others")


def test_a_peer_reads_the_entries_of_its_own_exchanges_only(trio: Cluster) -> None:
    pk, ir, af = trio["pk"], trio["ir"], trio["af"]
    text(pk, "pk-dgmo", "dgmo", "ir:dgmo", "Mortar fire from across the border at Panjgur.")
    last = text(pk, "pk-dgmo", "dgmo-pk-af", "af:dgmo", "Nothing on the Afghan border today.")["id"]
    logged = int(pk.message("pk-dgmo", last)["log_index"])

    def published() -> int:
        checkpoint = signed_get(trio, af, pk, "/federation/v1/log/checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
        return int(checkpoint.text.splitlines()[1])

    size = wait_for(lambda: (n := published()) > logged and n, what="a checkpoint of both messages")
    size = min(size, (logged // tiles.TILE_WIDTH + 1) * tiles.TILE_WIDTH)  # the bundle that holds them
    newest, width = (size - 1) // tiles.TILE_WIDTH, (size - 1) % tiles.TILE_WIDTH + 1  # the bundle of the newest
    bundle = "/federation/v1/log/" + tiles.entries_path(newest, width)
    for reader in (af, ir):  # each is refused the bundle that holds the other's exchanges with pk
        refused = signed_get(trio, reader, pk, bundle)
        assert refused.status_code == 403, refused.text
        detail = refused.json()["detail"]
        assert re.search(rf"^entries \d+(, \d+)*( and \d+ more)? of this bundle were not exchanged with {reader.party}",
                         detail), detail  # fmt: skip
        assert "Mortar fire" not in refused.text and "Afghan border" not in refused.text
    # The hashes are served to every peer (they witness by them), and an auditor of pk reads everything.
    hashes = signed_get(trio, af, pk, "/federation/v1/log/" + tiles.tile_path(0, newest, width))
    assert hashes.status_code == 200 and len(hashes.content) == 32 * width
    with pk.client("pk-supervisor") as auditor:
        whole = auditor.get(bundle)
    assert whole.status_code == 200 and b"Afghan border" in whole.content and b"ir:node" in whole.content


def test_a_case_stays_between_the_two_parties_that_opened_it(trio: Cluster) -> None:
    pk, ir, af = trio["pk"], trio["ir"], trio["af"]
    case = send(pk, "pk-dgmo", "incident.report", INCIDENT, channel="dgmo", to="ir:dgmo", precedence="IMMEDIATE")["id"]
    wait_for(lambda: ir.message("ir-dgmo", case, missing_ok=True) != {}, what="the report at ir")
    before = {node.party: get(node, f"{node.party}-supervisor", f"/api/v1/cases/{case}")["case"] for node in (pk, ir)}
    for node, channel in ((pk, "dgmo-pk-af"), (ir, "dgmo-ir-af")):
        refused = send(node, f"{node.party}-dgmo", "case.update", {"status": "contained"}, channel=channel,
                       to="af:dgmo", case=case, expect=422)  # fmt: skip
        assert refused["error"] == "InvalidTransition", refused
        assert f"case {case} is between ir and pk; af is not a party to it" in refused["detail"], refused
    quiet(trio)
    for node in (pk, ir):
        assert get(node, f"{node.party}-supervisor", f"/api/v1/cases/{case}")["case"] == before[node.party]
    assert get(af, "af-supervisor", "/api/v1/cases")["cases"] == []


def test_a_message_refers_only_to_what_its_recipient_had(trio: Cluster) -> None:
    pk = trio["pk"]
    between = text(pk, "pk-dgmo", "dgmo", "ir:dgmo", "Only for Iran.")["id"]
    refused = text(pk, "pk-dgmo", "dgmo-pk-af", "af:dgmo", "FYI", refs=[between], expect=422)
    said = f"{between} was not exchanged with af, which never had it"
    assert refused["fields"] == {"refs.0": said} and refused["detail"] == f"refs.0: {said}"


def test_a_channel_between_two_other_parties_is_refused_in_those_words(trio: Cluster) -> None:
    ir = trio["ir"]
    message = {"channel": "dgmo-pk-af", "to": "af:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
               "body": {"text": "Not our channel."}}  # fmt: skip
    refused = post(ir, "ir-dgmo", "/api/v1/messages", message, expect=422)
    assert refused["fields"] == {"channel": "channel 'dgmo-pk-af' links pk:dgmo and af:dgmo, no office of ir; "
                                            "your offices' channels: dgmo, dgmo-ir-af"}, refused  # fmt: skip
    unknown = post(ir, "ir-dgmo", "/api/v1/messages", {**message, "channel": "navy"}, expect=422)
    assert unknown["detail"] == "unknown channel 'navy'; your offices' channels: dgmo, dgmo-ir-af"


def test_a_status_without_a_peer_goes_to_every_peer(trio: Cluster) -> None:
    pk = trio["pk"]
    sent = detente("status", "--node", str(pk.data), "--token", pk.token("pk-dgmo"), "--code", "BUSY")
    assert sent.code == 0, sent.stderr
    assert re.fullmatch(r"status BUSY sent to af as \S+\nstatus BUSY sent to ir as \S+\n", sent.stdout), sent.stdout
    for party in ("af", "ir"):
        wait_for(lambda p=party: _told_busy(trio[p]), what=f"{party} to hear pk is busy")


def test_a_status_to_a_peer_that_is_not_one_sends_to_none(trio: Cluster) -> None:
    pk = trio["pk"]
    cli = detente("status", "--node", str(pk.data), "--token", pk.token("pk-dgmo"), "--code", "TECH",
                  "--peer", "IR", "--peer", "zz")  # fmt: skip
    assert cli.code == 2 and cli.stdout == "", cli.stdout
    assert "not a peer of this node: zz (its peers: af, ir); nothing was sent" in cli.stderr, cli.stderr
    api = post(pk, "pk-dgmo", "/api/v1/status", {"peer": "pk", "code": "TECH"}, expect=422)
    assert api["detail"] == "unknown peer 'pk': the peers are ir, af"
    links = get(pk, "pk-dgmo", "/api/v1/links")["links"]
    told = [s for link in links for s in link["our_statuses"] if s.get("code") == "TECH"]
    assert told == [], told


def test_the_consoles_status_form_offers_every_peer(trio: Cluster) -> None:
    ir = trio["ir"]
    with httpx.Client(base_url=ir.url, verify=ir.context, timeout=30) as browser:
        assert login(browser, "ir-dgmo").status_code == 303
        now_page = browser.get("/")
        assert '<option value="*">Every peer</option>' in now_page.text
        form = {"csrf": csrf_of(now_page), "peer": "*", "office": "ir:dgmo", "code": "AWAITING_AUTHORITY", "note": ""}
        sent = browser.post("/status", data=form, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        notice = browser.get(sent.headers["location"]).text
    assert "Status sent to AF, PK." in notice
    for party in ("af", "pk"):
        wait_for(lambda p=party: _told(trio[p], "ir", "ir:dgmo", "AWAITING_AUTHORITY"), what=f"{party} to hear it")


def _told(node: NodeProc, peer: str, office: str, code: str) -> bool:
    links = get(node, f"{node.party}-dgmo", "/api/v1/links")["links"]
    link = next(link for link in links if link["peer"] == peer)
    return any(s.get("code") == code and s.get("office") == office for s in link.get("peer_statuses") or [])


def _told_busy(node: NodeProc) -> bool:
    return _told(node, "pk", "pk:dgmo", "BUSY")


def test_the_console_shows_a_case_with_its_two_parties_only(trio: Cluster) -> None:
    pk, ir = trio["pk"], trio["ir"]
    case = send(pk, "pk-dgmo", "incident.report", INCIDENT, channel="dgmo", to="ir:dgmo", precedence="IMMEDIATE")["id"]
    wait_for(lambda: ir.message("ir-dgmo", case, missing_ok=True) != {}, what="the report at ir")
    with httpx.Client(base_url=ir.url, verify=ir.context, timeout=30) as browser:
        assert login(browser, "ir-dgmo").status_code == 303
        page = browser.get(f"/case/{case}").text
        listed = browser.get("/cases").text
    assert "Escalation <bdi>PK</bdi>" in page and "Escalation <bdi>IR</bdi>" in page
    assert "Escalation <bdi>AF</bdi>" not in page and "AF UTC+04:30" not in page
    assert "PK UTC+05:00" in page and "IR UTC+03:30" in page
    # The list of cases has a column per party; the pk–ir case leaves af's empty rather than "not stated".
    row = re.search(rf'<tr class="case-open"><th scope="row"><a href="/case/{case}".*?</tr>', listed, re.S)
    assert row and "Escalation <bdi>AF</bdi>" in listed
    assert row.group(0).count("<td></td>") == 1, row.group(0)
