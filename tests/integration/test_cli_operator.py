"""The operator command line against two real nodes: bad input is one clear line and changes nothing.

Commands run through `detente.cli.main` in this process (`cli_support.detente`): the same errors,
lines and exit status as the installed `detente`. One test runs a real process, for bytes on the
command line that are not UTF-8.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli_support import assert_error, assert_usage_error, detente
from detente.cli.terminal import printable
from detente.cli.transport import UnexpectedAnswer, api, call
from support import Cluster, NodeProc, quiet, service_free_counts, wait_for

HOSTILE = "\x1b]0;owned\x07\x1b[2J[bold red]alarm[/] [/] :smile: \x9b31m"
URDU = "پنجگور کے قریب دھماکوں کی اطلاع"
PERSIAN = "می\u200cخواهیم"


def auth(node: NodeProc, operator: str) -> tuple[str, ...]:
    return ("--node", str(node.data), "--token", node.token(operator))


def sent_to(node: NodeProc, operator: str, to: str, text: str, channel: str = "dgmo") -> dict[str, Any]:
    """Send a ROUTINE text through the API and return the node's answer.

    ROUTINE: its deadline (6 h) passes after the test run, so no overdue envelope appears while a
    later test counts what was written.
    """
    request = {"channel": channel, "to": to, "precedence": "ROUTINE", "type": "hotline.text", "body": {"text": text}}
    with node.client(operator) as client:
        response = client.post("/api/v1/messages", json=request)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def delivered(node: NodeProc, operator: str, message_id: str) -> bool:
    with node.client(operator) as client:
        response = client.get(f"/api/v1/messages/{message_id}")
    return response.status_code == 200 and response.json()["state"] == "delivered"


def counts(pair: Cluster) -> dict[str, dict[str, int]]:
    """Envelopes, log entries and outbox rows of both nodes, once earlier deliveries are done."""
    quiet(pair)
    return {party: service_free_counts(node) for party, node in pair.nodes.items()}


def test_each_id_is_one_path_segment_and_a_miss_is_not_found(pair: Cluster) -> None:
    ir = pair["ir"]
    before = counts(pair)
    for args in (("message", "?box=out"), ("message", ".."), ("message", "."), ("ack", "?box=out"),
                 ("decline", "..", "--reason", "r")):  # fmt: skip
        result = detente(*args, *auth(ir, "ir-dgmo"))
        assert_error(result, f"NotFound: no message {args[1]} for your offices")
        assert result.stdout == ""
    for kind in ("case", "action", "consultation"):
        assert_error(detente(kind, "show", "?x=1", *auth(ir, "ir-dgmo")), "NotFound: ")
    for refused in (("message", ""), ("message", "../links"), ("ack", ""), ("case", "show", "")):
        assert_usage_error(detente(*refused, *auth(ir, "ir-dgmo")), "Invalid value for")
    assert counts(pair) == before


def test_a_redirect_or_a_wrong_shape_from_a_real_node_is_an_error(pair: Cluster) -> None:
    pk = pair["pk"]
    with api(pk.data, None, None, pk.token("pk-dgmo")) as client:
        with pytest.raises(UnexpectedAnswer, match="with 307 Temporary Redirect"):
            call(client, "GET", "/messages/")  # the node redirects to /messages
        with pytest.raises(UnexpectedAnswer, match="has no 'messages' \\(list\\)"):
            call(client, "GET", "/links", expect={"messages": list})


def test_url_may_be_the_api_address_of_demo_json(pair: Cluster) -> None:
    pk = pair["pk"]
    cert = str(pk.data / "tls.crt")
    for url in (pk.url + "/api/v1", pk.url + "/api/v1/", pk.url + "/"):
        result = detente("links", "--url", url, "--cacert", cert, "--token", pk.token("pk-dgmo"))
        assert result.code == 0 and "ir" in result.stdout, result.stderr


def test_the_error_line_reads_as_the_readme_shows_it(pair: Cluster) -> None:
    pk = pair["pk"]
    before = counts(pair)
    result = detente("send", *auth(pk, "pk-fs"), "--channel", "dgmo", "--to", "ir:dgmo", "--text", "x")
    assert result.stderr == "error: Forbidden: operator pk-fs is not bound to office pk:dgmo\n"
    assert result.code == 1 and counts(pair) == before


def test_an_error_quoting_our_input_cannot_move_the_terminal(pair: Cluster) -> None:
    result = detente("message", "\x1b[2J\x07", *auth(pair["ir"], "ir-dgmo"))
    assert_error(result, "NotFound: no message \\x1b[2J\\x07 for your offices")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_refused_sends_change_nothing(pair: Cluster) -> None:
    pk = pair["pk"]
    before = counts(pair)
    route = ("--channel", "dgmo", "--to", "ir:dgmo")
    both = detente("send", *auth(pk, "pk-dgmo"), *route, "--text", "x", "--body", '{"text": "y"}')
    assert_usage_error(both, "give --text or --body, not both")
    assert_usage_error(detente("send", *auth(pk, "pk-dgmo"), *route, "--text", "\udcff"), "is not UTF-8 text")
    assert_usage_error(detente("send", *auth(pk, "pk-dgmo"), *route, "--text", "x", "--token", ""), "token is empty")
    deep = detente("send-batch", "-", *auth(pk, "pk-dgmo"), stdin=b"[" * 100_000 + b"]" * 100_000)
    assert_error(deep, "standard input nests JSON too deeply")
    assert counts(pair) == before


def test_bytes_that_are_not_utf8_on_a_real_command_line(pair: Cluster) -> None:
    pk = pair["pk"]
    command = [sys.executable, "-m", "detente", "send", *auth(pk, "pk-dgmo"), "--channel", "dgmo", "--to", "ir:dgmo"]
    for env in ({}, {"LC_ALL": "C", "PYTHONUTF8": "0"}):
        done = subprocess.run([*command, "--text", b"\xff"], capture_output=True, timeout=60, env={**os.environ, **env})
        assert done.returncode == 2, done.stderr
        assert b"Invalid value for '--text': is not UTF-8 text" in done.stderr and b"Traceback" not in done.stderr


def test_peer_text_reaches_the_terminal_as_text(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    hostile = sent_to(ir, "ir-dgmo", "pk:dgmo", HOSTILE)
    rtl = sent_to(ir, "ir-dgmo", "pk:dgmo", f"{URDU} {PERSIAN}")
    wait_for(lambda: delivered(pk, "pk-dgmo", rtl["id"]) and delivered(pk, "pk-dgmo", hostile["id"]))
    table = detente("inbox", *auth(pk, "pk-dgmo"), "--limit", "1000")
    assert table.code == 0, table.stderr
    assert not any(c in table.stdout for c in "\x1b\x07\x9b")
    assert printable(HOSTILE).startswith("\\x1b]0;owned\\x07\\x1b[2J[bold red]alarm[/] [/] :smile: \\x9b")
    assert printable(HOSTILE) in table.stdout  # whole: a text is never cut short of TEXT_LIMIT
    assert f"{URDU} {PERSIAN}" in table.stdout
    # --json is the node's list of messages, exact once read, and as inert as the table.
    as_json = detente("inbox", *auth(pk, "pk-dgmo"), "--limit", "1000", "--json")
    assert not any(c in as_json.stdout for c in "\x1b\x07\x9b")
    with pk.client("pk-dgmo") as client:
        answer = client.get("/api/v1/messages", params={"box": "in", "limit": 1000}).json()
    printed = json.loads(as_json.stdout)
    assert isinstance(printed, list)
    # Compared message by message: another test's message may change state between the two reads.
    by_id = {m["id"]: m for m in printed}
    assert by_id[hostile["id"]] == next(m for m in answer["messages"] if m["id"] == hostile["id"])
    assert by_id[hostile["id"]]["body"]["text"] == HOSTILE
    shown = json.loads(detente("message", hostile["id"], *auth(pk, "pk-dgmo")).stdout)
    assert shown["body"]["text"] == HOSTILE


def test_inbox_limit_since_and_a_line_when_older_messages_match(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    older = sent_to(pk, "pk-lo-zahedan", "ir:lo-turbat", "older", channel="liaison")
    newer = sent_to(pk, "pk-lo-zahedan", "ir:lo-turbat", "newer", channel="liaison")
    wait_for(lambda: delivered(ir, "ir-lo-turbat", newer["id"]))
    reader = auth(ir, "ir-lo-turbat")
    one = detente("inbox", *reader, "--limit", "1")
    assert one.code == 0 and newer["id"] in one.stdout and older["id"] not in one.stdout
    last_line = one.stdout.rstrip().splitlines()[-1]
    assert last_line == (
        "showing the newest 1; older messages match too: raise --limit (at most 1000), "
        "or narrow with --since, --until, --state or --find"
    )
    # --json prints the list scripts always read; the line goes to standard error.
    as_json = detente("inbox", *reader, "--limit", "1", "--json")
    assert [m["id"] for m in json.loads(as_json.stdout)] == [newer["id"]]
    assert as_json.stderr.strip() == last_line
    everything = detente("inbox", *reader, "--limit", "1000")
    assert older["id"] in everything.stdout and "older messages match" not in everything.stdout
    with ir.client("ir-lo-turbat") as client:
        created = client.get(f"/api/v1/messages/{newer['id']}").json()["created"]
    since = detente("inbox", *reader, "--since", created, "--json")
    assert [m["id"] for m in json.loads(since.stdout)] == [newer["id"]] and since.stderr == ""


def test_status_for_one_of_several_offices(pair: Cluster) -> None:
    pk = pair["pk"]
    supervisor = auth(pk, "pk-supervisor")
    sent = detente("status", *supervisor, "--peer", "ir", "--code", "busy", "--office", "pk:fs", "--note", "drill")
    assert sent.code == 0 and sent.stdout.startswith("status BUSY sent to ir as "), sent.stderr
    # Without --peer: every peer (here the one), as the links list them.
    every = detente("status", *auth(pk, "pk-dgmo"), "--code", "OK")
    assert every.code == 0 and re.fullmatch(r"status OK sent to ir as [0-9a-f-]{36}\n", every.stdout), every.stderr
    # Several offices and no --office: a usage error naming the option, as for --peer (QA: it named the API's
    # `office` field); nothing is sent.
    several = detente("status", *supervisor, "--peer", "ir", "--code", "BUSY")
    assert_usage_error(several, "Invalid value for --office: you hold several offices (pk:")
    assert "say for which one the status is sent; nothing was sent" in several.stderr and several.stdout == ""
    assert_error(
        detente("status", *auth(pk, "pk-dgmo"), "--peer", "ir", "--code", "OK", "--office", "pk:fs"),
        "Forbidden: operator pk-dgmo is not bound to office pk:fs",
    )


def _operators(node: NodeProc) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(detente("user", "list", "--data", str(node.data)).stdout)
    return listed


def test_user_add_refusals_and_duplicates(pair: Cluster) -> None:
    pk = pair["pk"]
    data = ("--data", str(pk.data))
    add = ("user", "add", *data, "--office", "pk:dgmo", "--role", "operator")
    before = _operators(pk)
    not_utf8 = detente(*add, "--name", "cli-qa-a", "--password-stdin", stdin=b"\xff\xfe long enough\n")
    assert_error(not_utf8, "BadRequest: the password on standard input is not UTF-8 text")
    short = detente(*add, "--name", "cli-qa-a", "--password-stdin", stdin="سلام\n".encode())
    assert_error(short, "BadRequest: passwords are at least 8 characters")
    assert_usage_error(detente(*add, "--name", "cli-qa-\udcff"), "Invalid value for '--name': is not UTF-8 text")
    assert _operators(pk) == before

    added = detente("user", "add", *data, "--name", "cli-qa-b", "--office", "pk:dgmo", "--office", "pk:fs",
                    "--office", "pk:dgmo", "--role", "operator", "--role", "supervisor", "--role", "operator",
                    "--password-stdin", stdin=b"long enough\r\n")  # fmt: skip
    assert added.code == 0, added.stderr
    assert added.stdout.startswith("operator cli-qa-b (operator, supervisor) for pk:dgmo, pk:fs\n")
    mine = [o for o in _operators(pk) if o["name"] == "cli-qa-b"]
    assert [{k: v for k, v in o.items() if k != "id"} for o in mine] == [
        {"name": "cli-qa-b", "offices": ["pk:dgmo", "pk:fs"], "roles": ["operator", "supervisor"], "lang": "en",
         "disabled": False}
    ]  # fmt: skip

    after = _operators(pk)
    assert_error(detente(*add, "--name", "CLI-QA-B"), "Conflict: an operator called 'cli-qa-b' exists already;")
    assert_error(detente(*add, "--name", "cli-qa-b"), "Conflict: an operator called 'cli-qa-b' exists already")
    assert _operators(pk) == after
    assert detente("user", "disable", *data, "--name", "cli-qa-b").code == 0
    after = _operators(pk)
    assert [o["disabled"] for o in after if o["name"] == "cli-qa-b"] == [True]
    assert_error(detente(*add, "--name", "cli-qa-b"), "Conflict: an operator called 'cli-qa-b' exists already")
    assert_error(detente(*add, "--name", "Cli-Qa-B"), "names may not differ only in case")
    assert _operators(pk) == after


def test_agreement_files_that_are_not_utf8(pair: Cluster, tmp_path: Path) -> None:
    bad = tmp_path / "agreement.toml"
    bad.write_bytes(Path(pair.info["agreement"]).read_bytes() + b"\n# \xff\n")
    says = f"MalformedError: {bad} is not UTF-8 text"
    assert_error(detente("agreement", "ratify", "--data", str(pair["pk"].data), "--agreement", str(bad)), says)
    assert_error(detente("audit", str(tmp_path), "--agreement", str(bad)), says)
    fresh = tmp_path / "node"
    assert_error(detente("init", "--party", "pk", "--agreement", str(bad), "--data", str(fresh)), says)
    assert not fresh.exists()
    assert "pk" in detente("agreement", "show", "--data", str(pair["pk"].data)).stdout  # still in force


def test_send_names_the_language_of_its_text(pair: Cluster) -> None:
    """Translator QA: `send` signed an Urdu text as `en`, the operator's language, with no way to say otherwise."""
    pk = pair["pk"]
    route = ("--channel", "dgmo", "--to", "ir:dgmo")
    sent = detente("send", *auth(pk, "pk-dgmo"), *route, "--text", URDU, "--lang", "ur")
    assert sent.code == 0, sent.stderr
    message = sent.stdout.split()[0]
    assert pk.message("pk-dgmo", message)["envelope"]["lang"] == "ur"
    default = detente("send", *auth(pk, "pk-dgmo"), *route, "--text", "in English")
    assert pk.message("pk-dgmo", default.stdout.split()[0])["envelope"]["lang"] == "en"
    before = counts(pair)
    refused = detente("send", *auth(pk, "pk-dgmo"), *route, "--text", URDU, "--lang", "de")
    assert_error(refused, "language 'de' is not one of the agreement's: en, ur, fa")
    assert counts(pair) == before


def test_a_language_in_any_case_is_the_agreements_and_a_blank_one_is_refused(pair: Cluster) -> None:
    """QA: `--lang UR` was refused (tags are case-insensitive); `--lang ""` was sent as the operator's language."""
    pk = pair["pk"]
    route = ("--channel", "dgmo", "--to", "ir:dgmo")
    sent = detente("send", *auth(pk, "pk-dgmo"), *route, "--text", URDU, "--lang", "UR")
    assert sent.code == 0, sent.stderr
    assert pk.message("pk-dgmo", sent.stdout.split()[0])["envelope"]["lang"] == "ur"
    message = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text"}
    batch = [{**message, "body": {"text": PERSIAN}, "lang": "Fa"}]
    batched = detente("send-batch", "-", *auth(pk, "pk-dgmo"), stdin=json.dumps(batch).encode())
    assert batched.code == 0, batched.stderr
    assert pk.message("pk-dgmo", batched.stdout.split()[0])["envelope"]["lang"] == "fa"

    before = counts(pair)
    says = "a language cannot be blank: give one of the agreement's (en, ur, fa)"
    for blank in ("", " "):
        assert_usage_error(detente("send", *auth(pk, "pk-dgmo"), *route, "--text", "x", "--lang", blank), says)
    blank_batch = [batch[0], {**batch[0], "lang": ""}]
    assert_error(detente("send-batch", "-", *auth(pk, "pk-dgmo"), stdin=json.dumps(blank_batch).encode()),
                 f"BadRequest: messages.1.lang: {says}")  # fmt: skip
    assert_usage_error(detente("codebook", *auth(pk, "pk-dgmo"), "--lang", ""), says)
    book = detente("codebook", *auth(pk, "pk-dgmo"), "--lang", "FA")
    assert book.code == 0 and "  fa: " in book.stdout and "  FA: " not in book.stdout, book.stdout
    # Offline too: the operator's language, read from the node's own agreement.
    add = ("user", "add", "--data", str(pk.data), "--office", "pk:dgmo", "--role", "operator", "--name")
    assert_usage_error(detente(*add, "cli-qa-lang", "--lang", ""), says)
    assert counts(pair) == before
    added = detente(*add, "cli-qa-lang", "--lang", "UR")
    assert added.code == 0, added.stderr
    assert [o["lang"] for o in _operators(pk) if o["name"] == "cli-qa-lang"] == ["ur"]
