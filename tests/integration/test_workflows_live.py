"""The agreement's vocabulary between two real nodes: actions, consultations, codes, evidence, rebuild."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import assert_usage_error
from cli_support import detente as run_cli
from detente.cli import app
from detente.core.precedence import dtg, format_time, parse_time
from detente.errors import Error
from detente.node.config import load_config
from support import Cluster, NodeProc, quiet, service_free_counts, wait_for
from workflow_support import PRENOTIFY, get, iso, post, reaches, same_on_both, send, status_of, status_of_message

PKT = timezone(timedelta(hours=5))
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)


def test_action_lifecycle_with_evidence_is_the_same_on_both_nodes(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    window = {"start": iso(25), "end": iso(30)}
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": window})["id"]
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    seen = get(ir, "ir-dgmo", f"/api/v1/actions/{action}")
    assert seen["allowed"]["ir:dgmo"] == ["action.request_info", "action.consent", "action.object"]
    assert seen["action"]["respond_by"] is not None  # filled from [response_deadlines] (12 h)

    send(ir, "ir-dgmo", "action.consent", {"note": "No objection", "conditions": ["Stay within 15 km"]},
         refs=[action])  # fmt: skip
    reaches(pk, "pk-dgmo", "action", action, "consented")
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action])

    uploaded = post(pk, "pk-dgmo", "/api/v1/evidence?name=strike-site.png", None, content=PNG,
                    headers={"Content-Type": "image/png"})  # fmt: skip
    item = uploaded["evidence"]
    assert item == {"sha256": hashlib.sha256(PNG).hexdigest(), "name": "strike-site.png", "media_type": "image/png",
                    "size": len(PNG)}  # fmt: skip
    send(pk, "pk-dgmo", "action.report", {"summary": "Two hideouts destroyed.", "evidence": [item]}, refs=[action])
    reaches(ir, "ir-dgmo", "action", action, "reported")

    def fetched() -> bool:
        with ir.client("ir-lo-turbat") as client:
            response = client.get(f"/api/v1/evidence/{item['sha256']}")
        return response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == str(item["sha256"])

    wait_for(fetched, what="ir to fetch the evidence from pk and check its hash")
    assert (ir.data / "evidence" / item["sha256"]).read_bytes() == PNG
    detail = get(ir, "ir-lo-turbat", f"/api/v1/actions/{action}")
    assert detail["evidence"][0]["state"] == "stored"
    assert detail["allowed"]["ir:lo-turbat"] == ["action.verify", "action.dispute"]
    # The officer verifies a report sent between the DGMOs: it reads it with the action, as it reads its files.
    assert detail["report"]["body"]["summary"] == "Two hideouts destroyed." and detail["verdict"] is None
    assert detail["report"]["sender"] == "pk:dgmo" and detail["report"]["type"] == "action.report"

    send(ir, "ir-lo-turbat", "action.verify", {"note": "Confirmed on site."}, channel="liaison", to="pk:lo-zahedan",
         refs=[action])  # fmt: skip
    reaches(pk, "pk-lo-zahedan", "action", action, "verified")
    state = same_on_both(pair, "action", action)
    assert [s["status"] for s in state["history"]] == ["proposed", "consented", "executed", "reported", "verified"]
    verdict = get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["verdict"]  # sent between the liaison officers
    assert verdict["type"] == "action.verify" and verdict["body"]["note"] == "Confirmed on site."
    assert state["unilateral"] is False and state["evidence"][0]["sha256"] == item["sha256"]
    first = get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["timeline"][0]
    assert first["at"]["dtg"] == dtg(parse_time(first["created"]))
    assert first["at"]["local"]["pk"] == parse_time(first["created"]).astimezone(PKT).isoformat(timespec="seconds")
    assert first["at"]["local"]["ir"].endswith("+03:30")
    listed = get(ir, "ir-supervisor", "/api/v1/actions", status="verified")["actions"]
    assert action in [a["id"] for a in listed]
    # `action show` says what the report and the verdict say, not only their ids.
    shown = detente("action", "show", action, "--node", str(pk.data), "--token", pk.token("pk-dgmo"))
    assert shown.returncode == 0, shown.stderr
    assert "report: action.report from pk:dgmo at " in shown.stdout and ": Two hideouts destroyed." in shown.stdout
    assert "verdict: action.verify from ir:lo-turbat at " in shown.stdout and ": Confirmed on site." in shown.stdout


def test_consultation_with_minutes_cosigned_by_both_sides(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    proposal = {"title": "Border-security consultation", "agenda": ["Incidents since January", "Liaison reports"],
                "start": iso(2), "venue": "Taftan", "schedule": "border-security"}  # fmt: skip
    consultation = send(pk, "pk-dgmo", "consultation.propose", proposal, precedence="ROUTINE")["id"]
    reaches(ir, "ir-dgmo", "consultation", consultation, "proposed")
    send(ir, "ir-dgmo", "consultation.agree", {}, refs=[consultation], precedence="ROUTINE")
    reaches(pk, "pk-dgmo", "consultation", consultation, "agreed")
    # Held before it was proposed: a mistyped date, refused; before its start (iso(2)): early, flagged.
    typo = send(pk, "pk-dgmo", "consultation.held", {"held_at": iso(-1)}, refs=[consultation], expect=422)
    assert typo["error"] == "InvalidTransition" and "is before the consultation was proposed" in typo["detail"]
    send(pk, "pk-dgmo", "consultation.held", {"held_at": iso(0), "participants": ["DGMO Pakistan", "DO Iran"]},
         refs=[consultation])  # fmt: skip
    items = [
        {"id": "patrols", "title": "Share patrol schedules", "owner": "pk:dgmo", "due": iso(240)},
        {"id": "lo-report", "title": "Report from Turbat", "owner": "ir:lo-turbat", "due": iso(240)},
        # Due a moment after the minutes (an item already due is refused): overdue by the end of the test.
        {"id": "markets", "title": "Border markets proposal", "owner": "ir:dgmo", "due": iso(2 / 3600)},
    ]
    reaches(ir, "ir-dgmo", "consultation", consultation, "held")
    minutes = send(ir, "ir-dgmo", "consultation.minutes", {"text": "Both sides reviewed ...", "items": items},
                   refs=[consultation])["id"]  # fmt: skip
    reaches(pk, "pk-dgmo", "consultation", consultation, "minutes_proposed")
    digest = get(pk, "pk-dgmo", f"/api/v1/consultations/{consultation}")["consultation"]["minutes_sha256"]
    send(pk, "pk-dgmo", "consultation.cosign", {"sha256": digest}, refs=[consultation, minutes])
    send(ir, "ir-dgmo", "consultation.cosign", {"sha256": digest}, refs=[consultation, minutes])
    reaches(pk, "pk-dgmo", "consultation", consultation, "minutes_cosigned")
    reaches(ir, "ir-dgmo", "consultation", consultation, "minutes_cosigned")
    send(pk, "pk-dgmo", "consultation.item_done", {"item": "patrols"}, refs=[consultation])

    def item_done() -> bool:
        state = get(ir, "ir-dgmo", f"/api/v1/consultations/{consultation}")["consultation"]
        return bool(next(i for i in state["items"] if i["id"] == "patrols")["status"] == "done")

    wait_for(item_done, what="the item to be done on ir")
    state = same_on_both(pair, "consultation", consultation)
    assert state["cosigned_by"].keys() == {"pk", "ir"} and state["minutes"] == minutes
    assert state["held_before_start"] is True and state["held_at"] < state["start"]
    path = f"/api/v1/consultations/{consultation}"
    wait_for(lambda: all(get(pair[p], f"{p}-dgmo", path)["overdue"] for p in ("pk", "ir")), what="markets overdue")
    for party in ("pk", "ir"):
        detail = get(pair[party], f"{party}-dgmo", path)
        assert [i["id"] for i in detail["overdue_items"]] == ["markets"] and detail["overdue"] is True


def test_execution_without_consent_is_flagged_unilateral_on_both_sides(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(24.5), "end": iso(26)}},
                  precedence="IMMEDIATE")["id"]  # fmt: skip
    # Started a second before the notice, with no consent: the record gives both reasons, the consent's first.
    notified = parse_time(get(pk, "pk-dgmo", f"/api/v1/actions/{action}")["action"]["created"])
    started = format_time(notified - timedelta(seconds=1))
    send(pk, "pk-dgmo", "action.execute", {"started": started, "note": "Imminent threat"}, refs=[action])
    reaches(ir, "ir-dgmo", "action", action, "executed")
    state = same_on_both(pair, "action", action)
    assert state["unilateral"] is True
    assert state["unilateral_reason"] == "executed without consent; executed before it was notified"
    for party in ("pk", "ir"):
        flagged = get(pair[party], f"{party}-supervisor", "/api/v1/actions", unilateral="true")["actions"]
        assert action in [a["id"] for a in flagged]


def test_invalid_transitions_are_refused_and_write_nothing(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25), "end": iso(26)}})
    action_id = action["id"]
    reaches(ir, "ir-dgmo", "action", action_id, "proposed")
    quiet(pair)
    before = {p: service_free_counts(pair[p]) for p in ("pk", "ir")}
    refused = [
        (pk, "pk-dgmo", "action.consent", {}, "dgmo", "must come from ir, the other side"),
        (ir, "ir-lo-turbat", "action.verify", {}, "liaison", "not allowed when the action is proposed"),
        (pk, "pk-dgmo", "action.report", {"summary": "Done."}, "dgmo", "not allowed when the action is proposed"),
        (pk, "pk-dgmo", "action.provide_info", {"text": "..."}, "dgmo", "only when info_requested"),
    ]
    for node, operator, kind, body, channel, message in refused:
        to = ("ir:" if node is pk else "pk:") + ("lo-zahedan" if channel == "liaison" else "dgmo")
        error = send(node, operator, kind, body, to=to, channel=channel, refs=[action_id], expect=422)
        assert error["error"] == "InvalidTransition" and message in error["detail"], error
    withdrawal = send(pk, "pk-dgmo", "action.withdraw", {"reason": "Called off"}, refs=[action_id])
    reaches(ir, "ir-dgmo", "action", action_id, "withdrawn")
    error = send(ir, "ir-dgmo", "action.consent", {}, refs=[action_id], expect=422)
    assert "not allowed when the action is withdrawn" in error["detail"]
    unknown = send(pk, "pk-dgmo", "hotline.text", {"text": "x"}, case=action_id, expect=422)
    assert unknown["error"] == "InvalidTransition" and "not known" in unknown["detail"]
    quiet(pair)
    after = {p: service_free_counts(pair[p]) for p in ("pk", "ir")}
    assert after["pk"]["envelopes"] == before["pk"]["envelopes"] + 1  # the withdrawal only
    assert after["ir"]["envelopes"] == before["ir"]["envelopes"] + 1
    # Sequence numbers were not used up by the refused sends: the next one follows the withdrawal.
    assert send(pk, "pk-dgmo", "hotline.text", {"text": "next"})["seq"] == withdrawal["seq"] + 1


LEAD_TIMES = [("operation.prenotify", "dgmo", 24), ("missile.prenotify", "dgmo", 72), ("missile.prenotify", "fs", 41),
              ("exercise.prenotify", "dgmo", 336)]  # fmt: skip


@pytest.mark.parametrize(("kind", "channel", "hours"), LEAD_TIMES)
def test_every_lead_time_violation_names_the_rule(pair: Cluster, kind: str, channel: str, hours: int) -> None:
    pk = pair["pk"]
    required = {"operation.prenotify": 24, "missile.prenotify": 72, "exercise.prenotify": 336}[kind]
    lead = hours - 1 if hours == required else hours
    window = {"start": iso(lead + 1 / 120), "end": iso(lead + 2)}  # 30 s more than `lead` hours ahead
    bodies = {
        "operation.prenotify": {**PRENOTIFY, "window": window},
        "missile.prenotify": {"missile": "Ababeel", "launch_site": {"lat": 25.1, "lon": 62.3, "place": "Sonmiani"},
                              "impact_area": {"center": {"lat": 23.0, "lon": 62.0}, "radius_km": 50.0},
                              "window": window},
        "exercise.prenotify": {"name": "Shield", "domain": "land", "area": PRENOTIFY["area"], "window": window,
                               "forces": "Two brigades"},
    }  # fmt: skip
    quiet(pair)
    before = service_free_counts(pk)
    to = f"ir:{channel}"
    error = send(pk, f"pk-{channel}", kind, bodies[kind], channel=channel, to=to, precedence="ROUTINE", expect=422)
    expected = f"lead time {lead} h is below the agreement's {required} h for {kind}"
    assert error["error"] == "Invalid" and error["fields"] == {"window.start": expected}
    assert error["detail"] == f"window.start: {expected}"
    assert service_free_counts(pk) == before
    window = {"start": iso(required + 0.1), "end": iso(required + 1)}
    send(pk, f"pk-{channel}", kind, {**bodies[kind], "window": window}, channel=channel, to=to, precedence="ROUTINE")


def test_code_message_reads_in_every_language_on_the_receiver(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    command = [sys.executable, "-m", "detente", "user", "add", "--data", str(ir.data), "--name", "ir-dgmo-fa",
               "--office", "ir:dgmo", "--role", "operator", "--lang", "fa"]  # fmt: skip
    for _ in range(5):
        # `user add` on a running SQLite node can meet the node's writer between its read and its write
        # (SQLITE_BUSY on a deferred transaction): try again, as an administrator would.
        added = subprocess.run(command, capture_output=True, text=True)
        if added.returncode == 0 or "locked" not in added.stderr:
            break
    assert added.returncode == 0, added.stdout + added.stderr
    persian_token = added.stdout.split("token ", 1)[1].strip()
    request = {"channel": "dgmo", "to": "ir:dgmo", "code": "LO-DISPATCHED",
               "params": {"place": "Saravan", "time": "2024-01-18T06:00:00Z"}, "lang": "ur"}  # fmt: skip
    sent = post(pk, "pk-dgmo", "/api/v1/codes", request)
    assert sent["rendered"].keys() == {"en", "ur", "fa"} and sent["rendered_text"] == sent["rendered"]["ur"]
    wait_for(lambda: status_of_message(ir, sent["id"]) == 200, what="the code message to reach ir")
    english = get(ir, "ir-dgmo", f"/api/v1/messages/{sent['id']}")
    assert english["rendered"] == sent["rendered"] and english["lang"] == "ur"
    assert english["rendered_text"] == english["rendered"]["en"] and "Saravan" in english["rendered_text"]
    assert "2024-01-18 06:00 UTC" in english["rendered"]["fa"]
    with ir.client(token=persian_token) as client:
        persian = client.get(f"/api/v1/messages/{sent['id']}").json()
    assert persian["rendered_text"] == sent["rendered"]["fa"]
    book = get(ir, "ir-dgmo", "/api/v1/codebook", lang="fa")
    assert len(book["entries"]) >= 12 and all(e["template"] == e["text"]["fa"] for e in book["entries"])
    bad = post(pk, "pk-dgmo", "/api/v1/codes", {**request, "params": {"place": "Saravan"}}, expect=422)
    assert bad["fields"] == {"params.time": "LO-DISPATCHED needs parameter time (time)"}


def test_incident_opens_a_case_whose_timeline_shows_every_local_time(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    incident = {"kind": "strike", "time": iso(-0.5), "location": {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"},
                "description": "Missiles and drones hit a house and a mosque.", "assessment": "A deliberate strike.",
                "escalation": 3}  # fmt: skip
    case = send(pk, "pk-dgmo", "incident.report", incident, precedence="FLASH")["id"]
    reaches(ir, "ir-dgmo", "case", case, "open")
    send(ir, "ir-dgmo", "case.update", {"status": "contained", "escalation": 2, "note": "Stand-down ordered"},
         case=case)  # fmt: skip
    clarify = send(pk, "pk-dgmo", "clarification.request", {"questions": ["Who ordered it?", "Will it recur?"]},
                   case=case)["id"]  # fmt: skip
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25), "end": iso(27)}},
                  case=case)["id"]  # fmt: skip
    reaches(pk, "pk-dgmo", "case", case, "contained")
    state = same_on_both(pair, "case", case)
    assert state["escalation"] == {"pk": 3, "ir": 2} and state["title"] == "strike at Koh-e-Sabz"
    detail = get(ir, "ir-dgmo", f"/api/v1/cases/{case}")
    assert [e["type"] for e in detail["timeline"]] == ["incident.report", "case.update", "clarification.request",
                                                     "operation.prenotify"]  # fmt: skip
    opened = detail["timeline"][0]
    assert opened["precedence"] == "FLASH" and opened["at"]["local"]["ir"].endswith("+03:30")
    assert [a["id"] for a in detail["actions"]] == [action]
    assert [c["id"] for c in detail["clarifications"]] == [clarify]
    clarification = get(ir, "ir-dgmo", f"/api/v1/clarifications/{clarify}")["clarification"]
    assert clarification["status"] == "open" and clarification["questions"] == 2
    assert parse_time(clarification["deadline"]) - parse_time(clarification["created"]) == timedelta(hours=48)
    send(ir, "ir-dgmo", "clarification.response", {"answers": ["Nobody on our side.", "No."]}, refs=[clarify],
         case=case)  # fmt: skip
    reaches(pk, "pk-dgmo", "clarification", clarify, "answered")
    assert case in [c["id"] for c in get(pk, "pk-dgmo", "/api/v1/cases", status="contained")["cases"]]


def test_evidence_uploads_are_checked(pair: Cluster) -> None:
    pk = pair["pk"]
    pdf = b"%PDF-1.7\n" + os.urandom(1000)
    with pk.client("pk-dgmo") as client:
        multipart = client.post("/api/v1/evidence", files={"file": ("minutes.pdf", pdf, "application/pdf")})
        fake = client.post("/api/v1/evidence", content=b"MZ not a png", headers={"Content-Type": "image/png"})
        wrong = client.post("/api/v1/evidence", content=b"hello", headers={"Content-Type": "application/zip"})
        unlisted = {"summary": "x", "evidence": [{"sha256": "cd" * 32, "name": "x.png", "media_type": "image/png",
                                                  "size": 10}]}  # fmt: skip
        big = client.post("/api/v1/evidence", content=b"a" * (20 * 1024 * 1024 + 1),
                          headers={"Content-Type": "text/plain"})  # fmt: skip
        with pair["ir"].client("ir-dgmo") as other:
            forbidden = other.get(f"/api/v1/evidence/{hashlib.sha256(pdf).hexdigest()}")
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["evidence"] == {"sha256": hashlib.sha256(pdf).hexdigest(), "name": "minutes.pdf",
                                            "media_type": "application/pdf", "size": len(pdf)}  # fmt: skip
    assert fake.status_code == 422 and fake.json()["fields"] == {"file": "not image/png"}
    assert wrong.status_code == 422 and "media_type" in wrong.json()["fields"]
    assert big.status_code == 413
    assert forbidden.status_code == 404  # not referenced by anything ir can see
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25), "end": iso(26)}})
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action["id"]])
    error = send(pk, "pk-dgmo", "action.report", unlisted, refs=[action["id"]], expect=422)
    assert error["fields"] == {
        "evidence.0.sha256": "no such file on this node: upload it first (POST /api/v1/evidence)"
    }


def test_openapi_document_has_every_body_schema(pair: Cluster) -> None:
    with pair["pk"].client() as client:
        document = client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]
    for kind, ref in document["x-detente-message-types"].items():
        assert schemas[ref.rsplit("/", 1)[-1]]["x-detente-type"] == kind
    report = schemas["ActionReportBody"]
    assert report["properties"]["evidence"]["items"] == {"$ref": "#/components/schemas/Evidence"}
    assert schemas["Evidence"]["properties"]["sha256"]["pattern"] == "^[0-9a-f]{64}$"
    assert "/api/v1/cases/{case_id}" in document["paths"] and "/api/v1/codes" in document["paths"]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def detente(*args: str) -> Ran:
    """Run a `detente` command in this process (as `detente.cli.main` would: our errors exit 1)."""
    result = CliRunner().invoke(app, list(args))
    error = result.exception
    if isinstance(error, Error):
        return Ran(1, result.stdout, error.diagnostics())
    if error is not None and not isinstance(error, SystemExit):
        raise error
    return Ran(result.exit_code, result.stdout, "")


def test_cli_commands_and_rebuild_matches_the_tables(pair: Cluster, tmp_path: Path) -> None:
    pk, ir = pair["pk"], pair["ir"]
    auth = ["--node", str(pk.data), "--token", pk.token("pk-dgmo")]
    sent = detente("code", "send", *auth, "--code", "INVESTIGATING", "--param", "place=Koh-e-Sabz", "--param",
                   f"time={iso(6)}", "--channel", "dgmo", "--to", "ir:dgmo")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "fa: ما در حال بررسی" in sent.stdout
    book = detente("codebook", *auth, "--lang", "ur")
    assert book.returncode == 0 and "NO-HOSTILE-INTENT" in book.stdout and "ur: " in book.stdout
    actions = detente("action", "list", *auth, "--json")
    assert actions.returncode == 0, actions.stderr
    first = __import__("json").loads(actions.stdout)[0]["id"]
    shown = detente("action", "show", first, *auth)
    assert shown.returncode == 0 and "operation.prenotify" in shown.stdout
    for command in (("case", "list"), ("consultation", "list"), ("clarification", "list")):
        assert detente(*command, *auth).returncode == 0
    quiet(pair)
    for node in (pk, ir):
        result = detente("rebuild", "--data", str(node.data))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the projection tables match the log" in result.stdout
    running = detente("rebuild", "--data", str(pk.data), "--write")
    assert running.returncode == 1 and "stop it before" in running.stderr
    # A stopped copy of pk's node: spoil a projection, see the difference, repair it.
    copy = _stopped_copy(pk, tmp_path / "pk-copy")
    with sqlite3.connect(copy / "node.db") as db:
        db.execute("UPDATE actions SET status = 'disputed' WHERE id = ?", (first,))
        db.execute("DELETE FROM workflow_offices")
    spoiled = detente("rebuild", "--data", str(copy))
    assert spoiled.returncode == 1 and f"action {first}: status is 'disputed'" in spoiled.stdout
    fixed = detente("rebuild", "--data", str(copy), "--write")
    assert fixed.returncode == 0 and "replaced the projection tables" in fixed.stdout
    assert "the projection tables match the log" in detente("rebuild", "--data", str(copy)).stdout


def test_cli_sends_into_a_case_and_lists_with_the_apis_filters(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    pk_auth = ["--node", str(pk.data), "--token", pk.token("pk-dgmo")]
    ir_auth = ["--node", str(ir.data), "--token", ir.token("ir-dgmo")]
    incident = {"kind": "drone", "time": iso(-0.2), "location": {"lat": 27.1, "lon": 63.2, "place": "Kech"},
                "description": "A drone fell on a field near Kech.", "assessment": "Straying."}  # fmt: skip
    case = send(pk, "pk-dgmo", "incident.report", incident, precedence="FLASH")["id"]
    reaches(ir, "ir-dgmo", "case", case, "open")
    route = ["--channel", "dgmo", "--precedence", "priority"]
    update = ["--type", "case.update", "--body", '{"status": "contained", "note": "Debris collected"}']
    # `--ref` refers to the incident; it does not put the message in its case.
    refused = detente("send", *ir_auth, *route, "--to", "pk:dgmo", *update, "--ref", case)
    assert refused.returncode == 1 and "case.update must name the case it belongs to" in refused.stderr
    malformed = detente("send", *ir_auth, *route, "--to", "pk:dgmo", *update, "--case", "not-a-case")
    assert malformed.returncode == 1 and "case must be null or a case id" in malformed.stderr, malformed.stderr
    sent = detente("send", *ir_auth, *route, "--to", "pk:dgmo", *update, "--case", case)
    assert sent.returncode == 0, sent.stderr
    asked = detente("send", *pk_auth, *route, "--to", "ir:dgmo", "--type", "clarification.request", "--body",
                    '{"questions": ["Whose drone was it?"]}', "--case", case)  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    update_id, clarify = sent.stdout.split()[0], asked.stdout.split()[0]
    reaches(pk, "pk-dgmo", "case", case, "contained")
    reaches(ir, "ir-dgmo", "clarification", clarify, "open")
    timeline = get(ir, "ir-dgmo", f"/api/v1/cases/{case}")["timeline"]
    assert [(e["id"], e["type"]) for e in timeline] == [(case, "incident.report"), (update_id, "case.update"),
                                                       (clarify, "clarification.request")]  # fmt: skip
    assert get(pk, "pk-dgmo", f"/api/v1/messages/{clarify}")["case"] == case

    shown = detente("clarification", "show", clarify, *ir_auth)
    assert shown.returncode == 0, shown.stderr
    assert f'case: "{case}"' in shown.stdout and 'status: "open"' in shown.stdout and "questions: 1" in shown.stdout
    assert "clarification.request" in shown.stdout and "ir:dgmo may send: clarification.response" in shown.stdout
    by_case = detente("clarification", "list", *pk_auth, "--case", case, "--status", "open", "--json")
    assert [c["id"] for c in json.loads(by_case.stdout)] == [clarify]
    assert json.loads(detente("clarification", "list", *pk_auth, "--case", update_id, "--json").stdout) == []

    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(24.5), "end": iso(26)}},
                  precedence="IMMEDIATE", case=case)["id"]  # fmt: skip
    send(pk, "pk-dgmo", "action.execute", {"started": iso(0)}, refs=[action])
    unilateral = detente("action", "list", *pk_auth, "--case", case, "--unilateral", "--json")
    assert [a["id"] for a in json.loads(unilateral.stdout)] == [action]
    assert json.loads(detente("action", "list", *pk_auth, "--case", case, "--not-unilateral", "--json").stdout) == []
    assert len(json.loads(detente("action", "list", *pk_auth, "--limit", "1", "--json").stdout)) == 1
    table = detente("action", "list", *pk_auth, "--case", case, "--status", "executed")
    assert table.returncode == 0 and action in table.stdout
    # A status the API has not is a usage error here (exit 2), as the real entry point shows it.
    assert_usage_error(run_cli("action", "list", *pk_auth, "--status", "done"), "'done' is not one of")
    assert detente("consultation", "list", *pk_auth, "--case", case, "--json").stdout.strip() == "[]"

    # The inbox shows the report as its description, and the update as its note: no JSON.
    inbox = " ".join(detente("inbox", *ir_auth, "--box", "in").stdout.split())
    assert "A drone fell on a field near Kech." in inbox and '"kind"' not in inbox
    assert "Whose drone was it?" in inbox


def _stopped_copy(node: NodeProc, target: Path) -> Path:
    """Copy a running node's database (SQLite backup) and configuration, on a port nobody listens on."""
    from detente.node.demo import free_port

    config = load_config(node.data)
    target.mkdir()
    for name in ("agreement.toml", "node.key"):
        (target / name).write_bytes((node.data / name).read_bytes())
    (target / "node.toml").write_text(
        f'party = "{config.party}"\nhost = "127.0.0.1"\nport = {free_port()}\ndb = "sqlite:///{target / "node.db"}"\n'
    )
    with sqlite3.connect(node.data / "node.db") as source, sqlite3.connect(target / "node.db") as dest:
        source.backup(dest)
    return target


def test_crossed_consent_and_withdrawal_converge_with_a_recorded_conflict(fresh_pair: Cluster) -> None:
    """pk withdraws while ir is down; ir consents while pk is down; both end withdrawn, consent refused."""
    pair = fresh_pair.start()
    pk, ir = pair["pk"], pair["ir"]
    action = send(pk, "pk-dgmo", "operation.prenotify", {**PRENOTIFY, "window": {"start": iso(25), "end": iso(26)}},
                  precedence="IMMEDIATE")["id"]  # fmt: skip
    reaches(ir, "ir-dgmo", "action", action, "proposed")
    quiet(pair)
    ir.stop()
    send(pk, "pk-dgmo", "action.withdraw", {"reason": "Target moved"}, refs=[action])
    pk.stop()
    ir.start()
    consent = send(ir, "ir-dgmo", "action.consent", {}, refs=[action])["id"]  # ir still sees it proposed
    assert status_of(ir, "ir-dgmo", "action", action) == "consented"
    pk.start()
    reaches(ir, "ir-dgmo", "action", action, "withdrawn")
    reaches(pk, "pk-dgmo", "action", action, "withdrawn")
    state = same_on_both(pair, "action", action)
    assert [s["status"] for s in state["history"]] == ["proposed", "withdrawn"]
    for node in (pk, ir):
        detail = get(node, f"{node.party}-dgmo", f"/api/v1/actions/{action}")
        assert [c["envelope"] for c in detail["conflicts"]] == [consent]
        assert "not allowed when the action is withdrawn" in detail["conflicts"][0]["reason"]
        assert get(node, f"{node.party}-dgmo", f"/api/v1/messages/{consent}")["type"] == "action.consent"  # stored
    pair.stop()
    for node in (pk, ir):
        assert "the projection tables match the log" in detente("rebuild", "--data", str(node.data)).stdout
