"""Certified translations between two real nodes: translate, deliver, review, refuse, audit.

pk's DGMO sends a FLASH in English; ir's translators translate it into Persian and certify the
translation under the two-person rule; pk sees how its message was read. Every refusal is checked
to write nothing, and the log holding all of it still passes an offline audit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli_support import detente
from detente.cli.app import app
from detente.cli.terminal import compact_time
from detente.node.setup import add_user
from support import Cluster, NodeProc, service_free_counts, wait_for

FA = "پهپادی بر فراز بخش کچ دیده شد"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """pk and ir, with translators: three on ir:dgmo, one on ir:fs (an alternate of ir:dgmo), one on pk:dgmo."""
    cluster = Cluster(tmp_path_factory.mktemp("translations")).start()
    try:
        tokens: dict[str, str] = {}
        accounts = [("ir", "ir-tr1", "ir:dgmo"), ("ir", "ir-tr2", "ir:dgmo"), ("ir", "ir-tr3", "ir:dgmo"),
                    ("ir", "ir-tr-fs", "ir:fs"), ("pk", "pk-tr1", "pk:dgmo")]  # fmt: skip
        for party, name, office in accounts:
            tokens[name] = add_user(cluster[party].data, name, [office], ["translator"], None, lang="fa").token
        cluster.info["tokens"] = tokens
        yield cluster
    finally:
        cluster.stop()


def written(node: NodeProc) -> int:
    """The envelopes a node holds, link tests left out (they run on a timer); each has its log entry."""
    return service_free_counts(node)["envelopes"]


def _as(pair: Cluster, node: NodeProc, name: str) -> httpx.Client:
    tokens: dict[str, str] = pair.info["tokens"]
    return node.client(token=tokens[name]) if name in tokens else node.client(name)


def _post(pair: Cluster, node: NodeProc, name: str, path: str, request: dict[str, Any]) -> httpx.Response:
    with _as(pair, node, name) as client:
        return client.post(path, json=request)


def _flash(pk: NodeProc, ir: NodeProc, text: str) -> str:
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
               "body": {"text": text}, "lang": "en"}  # fmt: skip
    sent = pk.created("pk-dgmo", "/api/v1/messages", request)
    wait_for(lambda: ir.message("ir-dgmo", sent["id"], missing_ok=True), what="pk's FLASH to reach ir")
    return str(sent["id"])


def test_a_translation_travels_and_is_certified_by_a_second_translator(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    flash = _flash(pk, ir, "Drone sighted over Kech district")
    made = _post(pair, ir, "ir-tr1", f"/api/v1/messages/{flash}/translations", {"lang": "fa", "text": FA})
    assert made.status_code == 201, made.text
    translation = made.json()["id"]
    # An envelope like any other: on the message's channel, with its precedence, from ir's office to pk's.
    envelope = ir.message("ir-supervisor", translation)["envelope"]
    assert (envelope["type"], envelope["channel"], envelope["precedence"]) == ("translation", "dgmo", "FLASH")
    assert (envelope["from"], envelope["to"], envelope["refs"], envelope["lang"]) == (
        "ir:dgmo",
        "pk:dgmo",
        [flash],
        "fa",
    )
    assert envelope["body"] == {"lang": "fa", "text": FA}
    [ours] = ir.message("ir-dgmo", flash)["translations"]
    assert (ours["id"], ours["lang"], ours["text"], ours["by"], ours["office"]) == (
        translation,
        "fa",
        FA,
        "ir-tr1",
        "ir:dgmo",
    )
    assert ours["certified"] is False and ours["reviews"] == []
    # pk sees at once how its message was read, by the translator's id (a name is ir's own business).
    seen = wait_for(lambda: pk.message("pk-dgmo", flash)["translations"], what="the translation to reach pk")
    assert [(t["id"], t["lang"], t["text"], t["office"], t["certified"]) for t in seen] == [
        (translation, "fa", FA, "ir:dgmo", False)
    ]
    assert seen[0]["by"] == envelope["author"] != "ir-tr1"
    assert translation in [r["id"] for r in pk.message("pk-dgmo", flash)["referred_by"]]
    with pk.client("pk-dgmo") as client:
        listed = client.get("/api/v1/messages", params={"box": "out"}).json()["messages"]
    assert [m["translations"] for m in listed if m["id"] == flash] == [1]  # the list view counts them

    # Two-person rule: the author may not certify their own translation.
    own = _post(pair, ir, "ir-tr1", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert own.status_code == 403 and "two-person rule" in own.json()["detail"], own.text
    # A dispute must say why; nothing is written.
    before = written(ir)
    blank = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{translation}/review", {"verdict": "disputed", "note": " "})
    assert blank.status_code == 422 and set(blank.json()["fields"]) == {"note"}, blank.text
    assert written(ir) == before

    certified = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert certified.status_code == 201, certified.text
    [ours] = ir.message("ir-dgmo", flash)["translations"]
    assert ours["certified"] is True
    assert [(r["verdict"], r["by"]) for r in ours["reviews"]] == [("certified", "ir-tr2")]
    again = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert again.status_code == 409, again.text

    # A later dispute by a third translator stands beside the certification: both are shown.
    note = "«بخش» should be «شهرستان»"
    disputed = _post(
        pair, ir, "ir-tr3", f"/api/v1/messages/{translation}/review", {"verdict": "disputed", "note": note}
    )
    assert disputed.status_code == 201, disputed.text

    def both_at_pk() -> list[dict[str, Any]]:
        found = pk.message("pk-dgmo", flash)["translations"]
        return found if len(found[0]["reviews"]) == 2 else []

    [theirs] = wait_for(both_at_pk, what="both reviews to reach pk")
    assert theirs["certified"] is True
    assert [(r["verdict"], r["note"]) for r in theirs["reviews"]] == [("certified", ""), ("disputed", note)]
    pair.info["flash"], pair.info["translation"] = flash, translation


def test_who_may_not_translate_or_review_is_told_why(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    flash = _flash(pk, ir, "Artillery fire heard near Mand")
    before = {"ir": written(ir), "pk": written(pk)}
    request = {"lang": "fa", "text": FA}
    # An operator answers messages; it does not translate them.
    refused = _post(pair, ir, "ir-dgmo", f"/api/v1/messages/{flash}/translations", request)
    assert refused.status_code == 403 and "only a translator or supervisor" in refused.json()["detail"], refused.text
    # A translator of the other side reads its own message, and may not review ir's translation.
    made = _post(pair, ir, "ir-tr1", f"/api/v1/messages/{flash}/translations", request)
    assert made.status_code == 201, made.text
    translation = made.json()["id"]
    wait_for(lambda: pk.message("pk-dgmo", flash)["translations"], what="the translation to reach pk")
    other_side = _post(pair, pk, "pk-tr1", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert other_side.status_code == 403 and "its own translations" in other_side.json()["detail"], other_side.text
    operator = _post(pair, ir, "ir-dgmo", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert operator.status_code == 403, operator.text
    # A translator of an alternate office (ir:fs for ir:dgmo) may review; the envelope goes from ir:dgmo.
    alternate = _post(pair, ir, "ir-tr-fs", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert alternate.status_code == 201, alternate.text
    assert ir.message("ir-supervisor", alternate.json()["id"])["envelope"]["from"] == "ir:dgmo"
    # A translation is not translated again, and a message is not a translation to review.
    nested = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{translation}/translations", {"lang": "ur", "text": "x"})
    assert nested.status_code == 422 and "service message" in nested.json()["detail"], nested.text
    # A link test is no one's to translate: said as such even to a supervisor, who sees it (QA).
    listing = ir.client("ir-supervisor").get("/api/v1/messages", params={"all_types": True}).json()["messages"]
    link_test = next(m["id"] for m in listing if m["type"] == "link.test")
    service = _post(
        pair, ir, "ir-supervisor", f"/api/v1/messages/{link_test}/translations", {"lang": "ur", "text": "x"}
    )
    assert service.status_code == 422 and "link.test is a service message" in service.json()["detail"], service.text
    not_one = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{flash}/review", {"verdict": "certified"})
    assert not_one.status_code == 422 and "not a translation" in not_one.json()["detail"], not_one.text
    # Exactly what succeeded was written: one translation and one review, on both sides.
    assert written(ir) == before["ir"] + 2
    wait_for(lambda: written(pk) == before["pk"] + 2, what="pk to hold both")


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"lang": "en", "text": FA}, "lang"),  # the original's own language
        ({"lang": "de", "text": FA}, "lang"),  # not a language of the agreement
        ({"lang": "fa", "text": " \u200b "}, "text"),  # says nothing
        ({"lang": "fa", "text": ""}, "text"),
        ({"lang": "fa", "text": "x" * 10_001}, "text"),
        ({"lang": "fa"}, "text"),
        ({"lang": "fa", "text": FA, "by": "me"}, "by"),
    ],
)
def test_a_bad_translation_is_refused_naming_the_field_and_nothing_is_written(
    pair: Cluster, request_body: dict[str, Any], field: str
) -> None:
    pk, ir = pair["pk"], pair["ir"]
    flash = pair.info.get("flash") or _flash(pk, ir, "Drone sighted over Kech district")
    before = written(ir)
    refused = _post(pair, ir, "ir-tr1", f"/api/v1/messages/{flash}/translations", request_body)
    assert refused.status_code == 422, refused.text
    assert field in refused.json()["fields"], refused.text
    assert written(ir) == before


def test_an_unknown_message_is_not_found(pair: Cluster) -> None:
    missing = "018d1a2b-0000-7000-8000-000000000001"
    answer = _post(pair, pair["ir"], "ir-tr1", f"/api/v1/messages/{missing}/translations", {"lang": "fa", "text": FA})
    assert answer.status_code == 404, answer.text


def test_the_command_line_translates_and_reviews(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    flash = _flash(pk, ir, "Patrol returning to base")
    tokens = pair.info["tokens"]
    node = ["--node", str(ir.data)]
    translated = detente("translate", flash, "--lang", "fa", *node, "--token", tokens["ir-tr1"], stdin=FA.encode())
    assert translated.code == 0, translated.stderr
    translation = translated.stdout.split(" as ", 1)[1].split(" ", 1)[0]
    assert translated.stdout.startswith(f"translated {flash} into fa as {translation}")
    usage = detente("review", translation, *node, "--token", tokens["ir-tr2"])
    assert usage.code == 2 and "--certify or --dispute" in usage.stderr
    no_note = detente("review", translation, "--dispute", *node, "--token", tokens["ir-tr2"])
    assert no_note.code == 2 and "--note" in no_note.stderr
    own = detente("review", translation, "--certify", *node, "--token", tokens["ir-tr1"])
    assert own.code == 1 and "error: Forbidden:" in own.stderr and "two-person rule" in own.stderr
    reviewed = detente("review", translation, "--certify", *node, "--token", tokens["ir-tr2"])
    assert reviewed.code == 0 and reviewed.stdout.startswith(f"certified translation {translation} with "), reviewed
    shown = detente("message", flash, *node, "--token", tokens["ir-tr3"])
    assert shown.code == 0, shown.stderr
    assert '"certified": true' in shown.stdout and FA in shown.stdout and '"verdict": "certified"' in shown.stdout

    # For people: each translation with its language, translator, time and text, then its reviews.
    note = "«بخش» should be «شهرستان»\nand «کچ» is Kech"
    disputed = detente("review", translation, "--dispute", "--note", note, *node, "--token", tokens["ir-tr3"])
    assert disputed.code == 0, disputed.stderr
    listed = detente("message", flash, "--translations", *node, "--token", tokens["ir-tr3"])
    assert listed.code == 0, listed.stderr
    [made] = ir.message("ir-dgmo", flash)["translations"]
    certified, dispute = made["reviews"]
    assert listed.stdout.splitlines() == [
        f"1 translation of {flash}",
        f"translation {translation} into fa by ir-tr1 (ir:dgmo) at {compact_time(made['created'])}: certified",
        f"  {FA}",
        f"  certified by ir-tr2 at {compact_time(certified['created'])}",
        # The note's line break shown, not obeyed: a note cannot forge a line of this listing.
        f"  disputed by ir-tr3 at {compact_time(dispute['created'])}: «بخش» should be «شهرستان»\\nand «کچ» is Kech",
    ]
    # A message without any says so.
    untranslated = _flash(pk, ir, "Nothing to translate")
    none = detente("message", untranslated, "--translations", *node, "--token", tokens["ir-tr3"])
    assert none.code == 0 and none.stdout.splitlines() == [f"0 translations of {untranslated}"], none
    missing = detente("message", "018d1a2b-0000-7000-8000-000000000001", "--translations", *node,
                      "--token", tokens["ir-tr3"])  # fmt: skip
    assert missing.code == 1 and "error: NotFound" in missing.stderr and missing.stdout == "", missing


def test_the_log_with_translations_passes_the_audit(pair: Cluster, tmp_path: Path) -> None:
    """Last in the module: it stops pk to export its log (translations and reviews received) and audits it."""
    ir, pk = pair["ir"], pair["pk"]
    # Its own translation and review: under pytest-xdist the tests of a module may run in two workers.
    flash = _flash(pk, ir, "Second drone sighted over Kech district")
    made = _post(pair, ir, "ir-tr1", f"/api/v1/messages/{flash}/translations", {"lang": "fa", "text": FA})
    assert made.status_code == 201, made.text
    translation = made.json()["id"]
    review = _post(pair, ir, "ir-tr2", f"/api/v1/messages/{translation}/review", {"verdict": "certified"})
    assert review.status_code == 201, review.text
    reviews = [r["id"] for r in ir.message("ir-dgmo", flash)["translations"][0]["reviews"]]
    assert reviews == [review.json()["id"]]

    def verified() -> bool:
        return all(ir.message("ir-dgmo", one)["verified"] for one in (translation, *reviews))

    wait_for(verified, timeout=60, what="ir's translation and reviews to be proven in pk's log")
    pk.stop()
    out = tmp_path / "pk-export"
    exported = CliRunner().invoke(app, ["log", "export", "--data", str(pk.data), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    audited = CliRunner().invoke(app, ["audit", str(out), "--agreement", pair.info["agreement"]])
    assert audited.exit_code == 0, audited.output
    types_line = next(line for line in audited.output.splitlines() if line.startswith("types "))
    assert "translation " in types_line and "translation.review " in types_line, types_line
    listed = detente("log", "entries", str(out), "--type", "translation.review", "--refers-to", translation)
    assert listed.code == 0, listed.stderr
    assert "1 of " in listed.stdout.splitlines()[-1], listed.stdout
