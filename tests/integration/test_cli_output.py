"""`inbox`, `links` and `alarms` against real nodes at 80 columns: every id and every sentence whole.

Most commands run through `detente.cli.main` in this process (`cli_support.detente`, 80 columns
wide); one test runs real processes whose output goes to a pipe, as `detente inbox | less` does,
with COLUMNS=80 and without it. Every message is ROUTINE: its deadline passes after the test run,
so no overdue envelope appears while a later test counts what was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from rich.cells import cell_len

from cli_support import detente
from detente.cli.terminal import TEXT_LIMIT, printable
from detente.core.bodies import clip
from detente.core.envelope import uuid7
from detente.core.precedence import format_time, now
from detente.store import tlog
from support import Cluster, NodeProc, wait_for

ENGLISH = "The activity at Panjgur is not directed against your state. We have no hostile intent."
PERSIAN = "فعالیت در پنجگور علیه کشور شما نیست. ما هیچ قصد خصمانه\u200cای نداریم."
LONG = " ".join(f"Paragraph {n}: the patrol withdrew at dawn and no shot was fired." for n in range(12))
WIDTH = 80


def auth(node: NodeProc, operator: str) -> tuple[str, ...]:
    return ("--node", str(node.data), "--token", node.token(operator))


def text(node: NodeProc, operator: str, body: str) -> dict[str, Any]:
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "type": "hotline.text",
               "body": {"text": body}}  # fmt: skip
    return node.created(operator, "/api/v1/messages", request)


def squeezed(output: str) -> str:
    """`output` without whitespace or table borders: a wrapped text reads as one string again."""
    return "".join(output.replace("│", "").split())


def fits(output: str) -> bool:
    return all(cell_len(line) <= WIDTH for line in output.splitlines())


def test_inbox_and_links_at_80_columns_keep_every_id_and_sentence_whole(pair: Cluster) -> None:
    pk, ir = pair["pk"], pair["ir"]
    request = {"channel": "dgmo", "to": "ir:dgmo", "precedence": "ROUTINE", "code": "NO-HOSTILE-INTENT",
               "params": {"place": "Panjgur"}}  # fmt: skip
    code = pk.created("pk-dgmo", "/api/v1/codes", request)
    persian, long = text(pk, "pk-dgmo", PERSIAN), text(pk, "pk-dgmo", LONG)
    wait_for(lambda: ir.message("ir-dgmo", long["id"], missing_ok=True).get("state") == "delivered")
    since = ir.message("ir-dgmo", code["id"])["created"]
    assert ir.message("ir-dgmo", code["id"])["rendered_text"] == ENGLISH
    reader = (*auth(ir, "ir-dgmo"), "--since", since, "--limit", "1000")

    shown = detente("inbox", *reader, width=WIDTH)
    assert shown.code == 0 and fits(shown.stdout), shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    for sent in (code, persian, long):
        # Whole, at the start of a line: what the operator copies to `detente ack`.
        assert any(line.startswith(sent["id"] + " ") for line in lines), shown.stdout
    # Both sentences of the codebook text, and the Persian verb ("we do not have") whole.
    assert squeezed(ENGLISH) in squeezed(shown.stdout) and squeezed(PERSIAN) in squeezed(shown.stdout)
    # The long text, cut after a word with a visible mark, and the way to read it whole.
    head = clip(LONG, TEXT_LIMIT)[0]
    assert head.endswith("…") and LONG.startswith(head[:-1] + " ") and squeezed(head) in squeezed(shown.stdout)
    assert lines[-1] == f"1 text over {TEXT_LIMIT} characters is cut (…): detente message <id> prints it whole"
    whole = json.loads(detente("message", long["id"], *auth(ir, "ir-dgmo")).stdout)
    assert whole["body"]["text"] == LONG

    # A real process writing to a pipe: COLUMNS=80, and no COLUMNS at all (a pipe's default).
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for columns in ({"COLUMNS": str(WIDTH)}, {}):
        for args in (("inbox", *reader), ("links", *auth(pk, "pk-dgmo"))):
            done = subprocess.run([sys.executable, "-m", "detente", *args], capture_output=True, text=True,
                                  timeout=60, env={**env, **columns})  # fmt: skip
            assert done.returncode == 0 and fits(done.stdout), done.stdout + done.stderr
            lines = done.stdout.splitlines()
            if args[0] == "inbox":
                assert all(any(line.startswith(m["id"] + " ") for line in lines) for m in (code, persian, long))
                assert squeezed(ENGLISH) in squeezed(done.stdout) and squeezed(PERSIAN) in squeezed(done.stdout)
            else:
                assert any(line.startswith("│ ir ") and "UP" in line for line in lines), done.stdout


def test_links_and_alarms_json_are_the_nodes_answers(pair: Cluster) -> None:
    pk = pair["pk"]
    links = detente("links", *auth(pk, "pk-dgmo"), "--json")
    assert links.code == 0, links.stderr
    printed = json.loads(links.stdout)
    with pk.client("pk-dgmo") as client:
        answer = client.get("/api/v1/links").json()
        alarms = client.get("/api/v1/alarms").json()
    # Each link test changes the times and figures: the same links, with the same fields.
    assert [(link["peer"], sorted(link)) for link in printed["links"]] == [
        (link["peer"], sorted(link)) for link in answer["links"]
    ]
    assert sorted(printed) == sorted(answer)
    listed = detente("alarms", *auth(pk, "pk-dgmo"), "--json")
    assert listed.code == 0 and json.loads(listed.stdout) == alarms, listed.stderr


def test_a_fork_alarm_shows_in_links_and_alarms_and_a_link_down_shows_no_old_figures(fresh_pair: Cluster) -> None:
    pk, ir = fresh_pair["pk"], fresh_pair["ir"]
    summary = "ir's log presented size 7 inconsistent with size 9 that this node cosigned: \x1b[2J not a prefix"
    engine = pk.engine()
    with engine.begin() as conn:  # as the witness records one (`node.witness`), before the node starts
        tlog.insert_alarm(conn, uuid7(), "fork", "ir", "ir.detente/log", summary, {"kind": "fork"}, format_time(now()))
    engine.dispose()
    fresh_pair.start()

    def link() -> dict[str, Any]:
        with pk.client("pk-dgmo") as client:
            found: dict[str, Any] = client.get("/api/v1/links").json()["links"][0]
        return found

    wait_for(lambda: link()["state"] == "UP" and link()["rtt_ms"] is not None, 30, 0.2, "a successful link test")
    up = detente("links", *auth(pk, "pk-dgmo"), width=WIDTH)
    assert up.code == 0 and fits(up.stdout), up.stdout + up.stderr
    note = up.stdout.rstrip().splitlines()[-1]
    assert note.startswith("1 alarm: fork in ir's log at ") and note.endswith("Z — detente alarms shows it"), note

    alarms = detente("alarms", *auth(pk, "pk-dgmo"), width=WIDTH)
    assert alarms.code == 0 and fits(alarms.stdout), alarms.stdout + alarms.stderr
    assert squeezed(printable(summary)) in squeezed(alarms.stdout) and "\x1b" not in alarms.stdout
    assert "fork" in alarms.stdout and "ir" in alarms.stdout

    ir.stop()
    wait_for(lambda: link()["state"] != "UP", 30, 0.2, "a failed contact with the stopped peer")
    down = detente("links", *auth(pk, "pk-dgmo"), width=WIDTH)
    assert down.code == 0 and fits(down.stdout), down.stdout + down.stderr
    state = link()
    assert state["rtt_ms"] is not None  # the node keeps the last figures; the command does not show them
    row = next(line for line in down.stdout.splitlines() if line.startswith("│ ir "))
    assert row.count("—") == 2 and state["state"] in row, down.stdout
    assert squeezed(printable(state["last_error"])) in squeezed(down.stdout)
    assert down.stdout.rstrip().splitlines()[-1] == note
    as_json = detente("links", *auth(pk, "pk-dgmo"), "--json")
    assert json.loads(as_json.stdout)["links"][0]["peer"] == "ir" and as_json.stderr.startswith(note)
