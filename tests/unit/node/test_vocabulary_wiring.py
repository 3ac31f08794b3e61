"""The vocabulary wired into the node: agreement checks, evidence files, code views, schemas, feed lines."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from detente.cli.demo import describe
from detente.core import agreement as agreement_mod
from detente.core import notifications
from detente.core.workflow_bodies import MAX_EVIDENCE_BYTES
from detente.errors import Invalid, NotFound, TooLarge
from detente.node import codes, evidence
from detente.node.setup import init_node
from detente.web.api_workflow import body_schemas, schema_name

ROOT = Path(__file__).resolve().parents[3]
TEXT = (ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8")
AGREEMENT = agreement_mod.load(TEXT)


def test_loading_an_agreement_checks_its_codebook() -> None:
    raw = tomllib.loads(TEXT)
    del raw["codebook"][1]["text"]["fa"]
    with pytest.raises(Invalid, match=r"\[\[codebook\]\] NO-HOSTILE-INTENT: text lacks language\(s\) fa"):
        agreement_mod.from_dict(raw)
    raw = tomllib.loads(TEXT)
    raw["lead_times"]["missile.prenotify"] = 48
    with pytest.raises(Invalid, match=r"\[lead_times\]: missile.prenotify may not be below 72 h"):
        agreement_mod.from_dict(raw)


def test_init_refuses_a_channel_carrying_an_unknown_type(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(TEXT.replace('"hotline.text", "code", "statement"', '"hotline.text", "code", "telegram"', 1))
    with pytest.raises(Invalid, match="types lists unknown message type 'telegram'"):
        init_node(tmp_path / "pk", "pk", bad, "127.0.0.1", 8443, None)
    assert not (tmp_path / "pk").exists()


FILES = [
    ("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20),
    ("image/jpeg", b"\xff\xd8\xff\xe0" + b"\0" * 20),
    ("image/webp", b"RIFF\0\0\0\0WEBPVP8 "),
    ("application/pdf", b"%PDF-1.7\n%..."),
    ("video/mp4", b"\0\0\0\x18ftypmp42"),
    ("text/plain", "Rapport: دو مخفیگاه".encode()),
]


@pytest.mark.parametrize(("media_type", "content"), FILES)
def test_evidence_files_must_look_like_their_type(media_type: str, content: bytes) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", evidence.check_file(content, media_type))
    others = [t for t, _ in FILES if t != media_type and not (t == "text/plain" and content.isascii())]
    for other in others:
        with pytest.raises(Invalid, match=f"not {other}"):
            evidence.check_file(content, other)


def test_evidence_limits() -> None:
    with pytest.raises(Invalid, match="empty"):
        evidence.check_file(b"", "text/plain")
    with pytest.raises(Invalid, match="not allowed for evidence"):
        evidence.check_file(b"MZ\x90\x00", "application/x-msdownload")
    with pytest.raises(TooLarge):
        evidence.check_file(b"a" * (MAX_EVIDENCE_BYTES + 1), "text/plain")
    assert evidence.clean_name("../../etc/pass\nwd") == "passwd"
    assert evidence.clean_name(None) == "evidence"


def test_evidence_paths_are_only_hashes(tmp_path: Path) -> None:
    ctx: Any = SimpleNamespace(config=SimpleNamespace(data=tmp_path))
    assert evidence.path_of(ctx, "ab" * 32) == tmp_path / "evidence" / ("ab" * 32)
    for bad in ("../node.key", "AB" * 32, "ab" * 31):
        with pytest.raises(NotFound):
            evidence.path_of(ctx, bad)


def test_code_view_renders_every_language_and_the_readers() -> None:
    body = {"code": "NO-HOSTILE-INTENT", "params": {"place": "Panjgur"}}
    view = codes.view(AGREEMENT, "code", body, "fa")
    assert view["rendered"].keys() == {"en", "ur", "fa"} and view["rendered_text"] == view["rendered"]["fa"]
    assert view["rendered"]["en"].startswith("The activity at Panjgur")
    assert codes.view(AGREEMENT, "code", body, "de")["rendered_lang"] == "en"
    assert codes.view(AGREEMENT, "hotline.text", {"text": "x"}, "fa") == {}
    assert codes.view(AGREEMENT, "code", {"code": "GONE", "params": {}}, "en")["rendered"] is None
    entries = codes.entries(AGREEMENT, "ur")
    assert len(entries) >= 12 and all(e["template"] == e["text"]["ur"] for e in entries)
    with pytest.raises(Invalid, match="not one of the agreement's"):
        codes.entries(AGREEMENT, "de")


def _refs(value: Any) -> set[str]:
    return set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(value)))


def test_every_body_has_a_schema_whose_refs_resolve() -> None:
    schemas = body_schemas()
    for kind in notifications.CATALOG:
        schema = schemas[schema_name(kind)]
        assert schema["x-detente-type"] == kind and schema["type"] == "object"
    assert schema_name("action.request_info") == "ActionRequestInfoBody"
    assert _refs(schemas) <= set(schemas)
    assert "IncidentReport" not in schemas and "Location" in schemas


def event(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "id": "01a20000-0000-7000-8000-0000deadbeef", "offices": ["pk:dgmo"], **data}


COMMON = {"type": "case.update", "from": "ir:dgmo", "to": "pk:dgmo", "envelope": "e"}
FEED = [
    (event("case", status="open", previous=None, changed=True, title="strike at Koh-e-Sabz",
           escalation={"pk": 3, "ir": None}, **{**COMMON, "type": "incident.report"}),
     "CASE …deadbeef opened (open): strike at Koh-e-Sabz (escalation ir -, pk 3) by incident.report"),
    (event("case", status="open", previous="open", changed=False, title="t", escalation={},
           **{**COMMON, "type": "ack"}), None),
    (event("action", status="executed", previous="proposed", changed=True, target_group="BLF", unilateral=True,
           unilateral_reason="executed without consent", **{**COMMON, "type": "action.execute", "from": "pk:dgmo"}),
     "ACTION …deadbeef proposed → executed by action.execute from pk:dgmo (BLF) UNILATERAL: executed without consent"),
    (event("consultation", status="minutes_cosigned", previous="minutes_proposed", changed=True, title="Border",
           cosigned_by=["ir", "pk"], **{**COMMON, "type": "consultation.cosign"}),
     "CONSULTATION …deadbeef minutes_proposed → minutes_cosigned by consultation.cosign: Border co-signed by ir, pk"),
    (event("clarification", status="answered", previous="open", changed=True, late=True, **COMMON),
     "clarification …deadbeef open → answered (late)"),
    (event("conflict", workflow="action", target="01a20000-0000-7000-8000-00000000cafe", type="action.consent",
           reason="action.consent is not allowed when the action is withdrawn"),
     "CONFLICT action.consent …deadbeef refused by action …0000cafe: action.consent is not allowed when the action "
     "is withdrawn"),
    (event("evidence", sha256="ab" * 32, state="missing", peer="pk"),
     "evidence abababababab… referenced; fetching it from pk"),
    (event("evidence", sha256="ab" * 32, state="stored", peer="pk", size=2048),
     "evidence abababababab… fetched from pk, SHA-256 checked (2048 bytes)"),
    (event("message", precedence="FLASH", type="code", **{"from": "pk:dgmo", "to": "ir:dgmo"},
           rendered={"en": "We have no hostile intent."}),
     'received FLASH code pk:dgmo → ir:dgmo …deadbeef: "We have no hostile intent."'),
    # Overdue, as this node's own watch sees it: a message it received alerts its office's alternates
    # here; one it sent alerts none of ours (the peer's office has not answered, on the peer's node).
    (event("overdue", offices=["pk:dgmo", "pk:fs"], direction="in", overdue="o", deadline="d"),
     "OVERDUE …deadbeef: pk:dgmo has not answered by the deadline; alternates pk:fs alerted"),
    (event("overdue", offices=["ir:lo-turbat", "ir:dgmo", "ir:fs"], direction="out", overdue="o", deadline="d"),
     "OVERDUE …deadbeef: sent by ir:lo-turbat, not answered by the deadline; the addressee's alternates are "
     "alerted on the peer's node"),
    (event("overdue", offices=["pk:dgmo"], direction="in", overdue="o", deadline="d"),
     "OVERDUE …deadbeef: pk:dgmo has not answered by the deadline; alternates none alerted"),
    (event("overdue", offices=["pk:dgmo", "pk:fs"], overdue="o", reported_by="ir:dgmo"),
     "OVERDUE …deadbeef: ir:dgmo's node reports the deadline passed unanswered"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "line"), FEED)
def test_demo_feed_lines(payload: dict[str, Any], line: str | None) -> None:
    assert describe("pk", payload) == line
