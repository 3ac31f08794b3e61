"""Scenarios for a group of states (`agreements/pk-ir-af.toml`): pairs, cases, parties and peers.

A case stays between the two parties whose message opened it, so each pair's messages about one
incident join that pair's case; a party, a situation or an incident naming a party the agreement
lacks, a step between offices no channel links, and a `status` that does not say which peer it
tells are refused before anything runs, each at its line (`drill run` then starts no node).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import detente
from detente.cli.drill_run import count_nodes
from detente.core import agreement as agreement_mod
from detente.core.scenario import ScenarioError, load
from detente.core.scenario_plan import plan

ROOT = Path(__file__).resolve().parents[3]
GROUP = agreement_mod.load((ROOT / "agreements" / "pk-ir-af.toml").read_text(encoding="utf-8"))
PAIR = agreement_mod.load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
TRI = ROOT / "scenarios" / "tri-border.yaml"

HEAD = """\
detente-drill: 1
title: group
agreement: ../agreements/pk-ir-af.toml
start: 2024-05-04T04:00:00Z
speed: 600
seed: 1
timeline:
  - at: +5m
    label: shots
    situation: {pk: "fire at the post", ir: "gunfire heard", af: "men crossing"}
    incident: {kind: non_state_attack, where: pk, place: "Koh-i-Malik Siah"}
"""


def send(frm: str, to: str, label: str, minutes: int, kind: str = "hotline.text") -> str:
    body = '{text: "a message"}'
    if kind == "incident.report":
        body = (
            '{kind: non_state_attack, time: "-1m", location: {lat: 29.86, lon: 60.87, place: "the pillar"}, '
            'description: "fire", assessment: "a group"}'
        )
    return (
        f"  - label: {label}\n    at: +{minutes}m\n    send: {{from: {frm}, to: {to}, type: {kind}, "
        f"precedence: FLASH, about: shots, body: {body}}}\n"
    )


def problems(text: str, agreement: agreement_mod.Agreement = GROUP) -> list[tuple[int, str, str]]:
    with pytest.raises(ScenarioError) as caught:
        plan(load(text, "g.yaml"), agreement)
    return caught.value.problems


def test_the_shipped_tri_border_drill_plans_with_each_pair_on_its_own_channel_and_case() -> None:
    p = plan(load(TRI.read_text(encoding="utf-8"), str(TRI)), GROUP)
    steps = p.by_label()
    channels = {label: s.message.channel for label, s in steps.items() if s.message is not None}
    assert channels["report-ir"] == "dgmo-pk-ir" and channels["report-af"] == "dgmo-pk-af"
    assert channels["closed"] == channels["patrols"] == "dgmo-ir-af"
    cases = {label: s.message.case for label, s in steps.items() if s.message is not None}
    # Each report opens its pair's case; what each pair says later about the incident joins its own.
    assert cases["report-ir"] is None and cases["report-af"] is None
    assert cases["ask-af"] == cases["answer-af"] == "report-af" and cases["found"] == "report-ir"
    assert cases["closed"] is None  # Iran and Afghanistan opened no case of their own
    [outage] = [s for s in p.steps if s.kind == "outage"]
    assert outage.party == "af"


def test_a_message_about_an_incident_joins_its_own_pair_s_case_not_the_first_one() -> None:
    text = HEAD + send("pk:dgmo", "ir:dgmo", "first", 6, "incident.report")
    text += send("ir:dgmo", "af:dgmo", "later", 8) + send("af:dgmo", "pk:dgmo", "third", 9)
    steps = plan(load(text, "g.yaml"), GROUP).by_label()
    assert steps["later"].message is not None and steps["later"].message.case is None
    assert steps["third"].message is not None and steps["third"].message.case is None
    # Between pk and ir, as before, a later message joins the case the first report opened.
    again = plan(load(text + send("ir:dgmo", "pk:dgmo", "reply", 10), "g.yaml"), GROUP).by_label()
    assert again["reply"].message is not None and again["reply"].message.case == "first"


def test_a_party_the_agreement_lacks_is_refused_wherever_the_scenario_names_it() -> None:
    text = HEAD.replace("seed: 1\n", "seed: 1\nparties: {pk: Pakistan, tj: Tajikistan}\n")
    text = text.replace('af: "men crossing"', 'tj: "men crossing"').replace("where: pk", "where: tj")
    found = {(line, path): message for line, path, message in problems(text)}
    its = "(its parties: pk, ir, af)"
    assert found[(7, "parties.tj")] == f"the agreement has no party 'tj' {its}"
    assert found[(11, "timeline[0].situation.tj")] == f"the agreement has no party 'tj' {its}"
    assert found[(12, "timeline[0].incident.where")] == f"the agreement has no party 'tj' {its}"
    # A two-party scenario that shows a situation to af, which has no node under pk-ir.
    pair = HEAD.replace("pk-ir-af.toml", "pk-ir.toml")
    assert problems(pair, PAIR) == [
        (10, "timeline[0].situation.af", "the agreement has no party 'af' (its parties: pk, ir)")
    ]


def test_a_step_between_offices_no_channel_links_is_refused_and_drill_run_sends_nothing(tmp_path: Path) -> None:
    text = HEAD + send("pk:lo-zahedan", "af:dgmo", "stray", 7)
    [(line, path, message)] = problems(text)
    assert (line, path) == (14, "timeline[1].send.to")
    assert message == (
        "no channel of the agreement links pk:lo-zahedan and af:dgmo (pk:lo-zahedan reaches: ir:lo-turbat "
        "(liaison-pk-ir))"
    )
    # A channel named for another pair is refused too, naming it.
    named = HEAD + send("pk:dgmo", "af:dgmo", "named", 7).replace("precedence:", "channel: dgmo-pk-ir, precedence:")
    assert problems(named)[0][2] == "channel 'dgmo-pk-ir' does not link pk:dgmo and af:dgmo"
    # `drill run` stops before any node is prepared or started.
    scenario = tmp_path / "stray.yaml"
    scenario.write_text(text.replace("../agreements/", str(ROOT / "agreements") + "/"), encoding="utf-8")
    work = tmp_path / "nodes"
    ran = detente("drill", "run", str(scenario), "--workdir", str(work), "--report", str(tmp_path / "r"))
    assert ran.code == 1 and "stray.yaml:14: timeline[1].send.to: no channel of the agreement links" in ran.stderr
    assert not work.exists() and not (tmp_path / "r").exists()


def test_a_message_may_refer_only_to_one_its_recipient_s_party_had() -> None:
    first = HEAD + send("pk:dgmo", "ir:dgmo", "first", 6, "incident.report")
    stray = send("pk:dgmo", "af:dgmo", "stray", 8).replace("about: shots,", "refs: [first], case: none,")
    assert problems(first + stray) == [
        (17, "timeline[2].send.refs[0]", "'first' (line 12) is between ir and pk: af never had it")
    ]
    # Nor may it join the case of another pair.
    joined = send("pk:dgmo", "af:dgmo", "joined", 8).replace("about: shots,", "case: first,")
    [(_, _, message)] = problems(first + joined)
    assert "is between ir and pk; af is not a party to it" in message
    # Iran may refer to it when writing to Pakistan: Pakistan had it.
    reply = send("ir:dgmo", "pk:dgmo", "reply", 8).replace("about: shots,", "refs: [first],")
    assert plan(load(first + reply, "g.yaml"), GROUP).by_label()["reply"].message is not None


def test_a_status_in_a_group_says_which_peer_it_tells() -> None:
    status = "  - at: +7m\n    status: {from: ir:dgmo, code: BUSY, note: busy%s}\n"
    [(line, path, message)] = problems(HEAD + status % "")
    assert (line, path, message) == (13, "timeline[1].status", "say which party ir tells: 'peer' (one of pk, af)")
    told = plan(load(HEAD + status % ", peer: af", "g.yaml"), GROUP).steps[-1]
    assert (told.kind, told.office, told.party) == ("status", "ir:dgmo", "af")
    assert problems(HEAD + status % ", peer: ir")[0][2] == "'ir' is not another party of the agreement (pk, af)"
    # Between two parties the status still goes to the other one.
    pair = HEAD.replace("pk-ir-af.toml", "pk-ir.toml").replace(', af: "men crossing"', "")
    alone = plan(load(pair + status % "", "p.yaml"), PAIR).steps[-1]
    assert alone.party == "pk"


def test_a_self_hosted_drill_says_how_many_nodes_it_starts() -> None:
    assert count_nodes(PAIR) == "two nodes"
    assert count_nodes(GROUP) == "three nodes (pk, ir, af)"
