"""What the console shows an auditor or a supervisor of the record: a message answered after its
deadline says so, and a checkpoint's root is written as the checkpoint note and the CLI write it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_message_answered_after_it_went_overdue_says_so() -> None:
    """An acknowledgement after the deadline must not read as one in time (auditor's QA)."""
    from detente.core.agreement import load
    from detente.web.console.i18n import Locale
    from detente.web.console.present import Presenter

    agreement = load((ROOT / "agreements" / "pk-ir.toml").read_text(encoding="utf-8"))
    row = {
        "log_index": 7, "delivered_at": "2026-11-28T08:00:00.000Z", "needs_ack": True, "direction": "out", "peer": "ir",
        "to_office": "ir:dgmo", "response_by": None, "response_type": "ack", "verified_at": None,
        "overdue_at": "2026-11-28T08:02:56.000Z", "response_id": "01a2", "response_office": "ir:dgmo",
    }  # fmt: skip
    for lang, late in (("en", "late"), ("fa", "با تأخیر")):
        badges = {b.key: b for b in Presenter(agreement, "pk", Locale(lang)).badges(row, {"log_index": 8})}  # type: ignore[arg-type]
        assert badges["overdue"].done and badges["overdue"].detail.startswith("08:02")
        assert badges["acknowledged"].detail == f'<bdi dir="ltr">ir:dgmo</bdi> · {late}'
    # Whose log each index is in (both read "#7", "#8" otherwise).
    english = {b.key: b for b in Presenter(agreement, "pk", Locale("en")).badges(row, {"log_index": 8})}  # type: ignore[arg-type]
    assert (english["accepted"].detail, english["accepted"].title) == ("#7", "position in this node's log")
    assert (english["delivered"].detail, english["delivered"].title) == ("#8", "position in IR's log")
    received = Presenter(agreement, "pk", Locale("en")).badges({**row, "direction": "in"}, {"log_index": 9})  # type: ignore[arg-type]
    assert {b.key: b.title for b in received}["delivered"] == "position in this node's log"
    on_time = {b.key: b for b in Presenter(agreement, "pk", Locale("en")).badges({**row, "overdue_at": None}, None)}  # type: ignore[arg-type]
    assert "overdue" not in on_time and on_time["acknowledged"].detail == '<bdi dir="ltr">ir:dgmo</bdi>'
    # An alternate answered once the message was overdue: both sides name it (auditor's QA).
    # Each office is a left-to-right isolate and the phrase one of its own, so the parenthesis keeps its
    # place in a Persian sentence (it mixed directions before).
    ltr = '<bdi dir="ltr">{}</bdi>'.format
    for lang, said in (
        ("en", f"{ltr('ir:fs')} (<bdi>alternate of {ltr('ir:dgmo')}</bdi>) · late"),
        ("fa", f"{ltr('ir:fs')} (<bdi>جانشین {ltr('ir:dgmo')}</bdi>) · با تأخیر"),
    ):
        escalated = Presenter(agreement, "pk", Locale(lang)).badges({**row, "response_office": "ir:fs"}, None)  # type: ignore[arg-type]
        assert {b.key: b for b in escalated}["acknowledged"].detail == said
    ours = {**row, "direction": "in", "to_office": "pk:dgmo", "response_by": "fs-duty", "response_office": "pk:fs"}
    answered_here = Presenter(agreement, "pk", Locale("en")).answerer(ours)  # type: ignore[arg-type]
    assert answered_here == f"<bdi>fs-duty</bdi> ({ltr('pk:fs')}, <bdi>alternate of {ltr('pk:dgmo')}</bdi>)"


def test_the_record_page_writes_a_root_as_the_checkpoint_and_the_cli_do() -> None:
    """Base64, as in the C2SP checkpoint note, `detente log show` and `detente audit` (auditor's QA)."""
    import base64
    import hashlib

    from detente.core.checkpoint import Checkpoint, sign_checkpoint
    from detente.core.keys import Signer
    from detente.web.console.record import checkpoint_view

    root = hashlib.sha256(b"a root").digest()
    note = sign_checkpoint(Checkpoint("pk.detente/log", 34, root), Signer.generate("pk.detente/log"))
    view = checkpoint_view(note.format().decode())
    assert view is not None and view["root"] == base64.b64encode(root).decode()
    assert view["root"] in note.format().decode().splitlines()  # the note's own third line
