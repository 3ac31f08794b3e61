"""What `inbox`, `links` and `alarms` print: never a cut sentence or id, and 80 columns are enough.

The commands run through `detente.cli.main` (`cli_support.detente`) against a node played by an
`httpx.MockTransport`: the node's answers are the test's own, so each layout is checked exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from unittest import mock

import httpx
import pytest
from rich.cells import cell_len

from cli_support import Ran, detente
from detente.cli import client as cli_client
from detente.cli import inbox as cli_inbox
from detente.cli.alarms import alarm_note
from detente.cli.terminal import TEXT_LIMIT, compact_time
from detente.cli.translations import translation_lines
from detente.cli.transport import API, UnexpectedAnswer
from detente.core.bodies import body_summary, clip

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
ENGLISH = "The activity at Panjgur is not directed against your state. We have no hostile intent."
PERSIAN = "فعالیت در پنجگور علیه کشور شما نیست. ما هیچ قصد خصمانه\u200cای نداریم."
IDS = ["0193a8f0-6b1e-7c3a-9d2e-0000000000a1", "0193a8f0-6b1e-7c3a-9d2e-0000000000a2",
       "0193a8f0-6b1e-7c3a-9d2e-0000000000a3"]  # fmt: skip
ADVICE = "is the peer's node running, and is its address in the agreement right?"
ERROR = f"cannot reach https://127.0.0.1:8444/federation/v1/envelopes: [Errno 111] Connection refused; {ADVICE}"
FORK = {
    "id": "0193a8f0-6b1e-7c3a-9d2e-00000000f0f0", "kind": "fork", "peer": "ir", "origin": "ir.detente/log",
    "summary": "ir's log presented size 12 inconsistent with size 15 that this node cosigned: the proof fails",
    "created": "2024-01-16T07:31:00.000Z", "evidence": {"kind": "fork", "proof": []},
}  # fmt: skip


def message(n: int, text: str | None = None, **fields: Any) -> dict[str, Any]:
    """A message as `GET /api/v1/messages` lists it."""
    return {
        "id": IDS[n], "precedence": "ROUTINE", "from": "pk:dgmo", "to": "ir:dgmo", "type": "hotline.text",
        "created": f"{TODAY}T13:05:00.000Z", "deadline": "2026-12-01T19:05:00.000Z", "state": "delivered",
        "body": {"text": text}, **fields,
    }  # fmt: skip


def link(**fields: Any) -> dict[str, Any]:
    """A link as `GET /api/v1/links` lists it, UP and tested unless `fields` say otherwise."""
    return {
        "peer": "ir", "state": "UP", "since": "2026-11-27T07:31:00.000Z", "last_test_at": f"{TODAY}T13:05:00.000Z",
        "last_ok_at": f"{TODAY}T13:05:00.000Z", "rtt_ms": 12.75, "clock_offset_ms": -3.5, "clock_warning": None,
        "failures": 0, "last_error": None, "outbox": 0, "peer_status": None, "peer_statuses": [],
        "our_statuses": [], "refused": [], **fields,
    }  # fmt: skip


Node = Callable[..., Ran]


@pytest.fixture
def node() -> Iterator[Node]:
    """Run `detente ARGS` against a node whose answers are `answers` (path → JSON, or an `httpx.Response`)."""

    def run(*args: str, answers: dict[str, Any], width: int = 80) -> Ran:
        def handler(request: httpx.Request) -> httpx.Response:
            answer = answers[request.url.path.removeprefix(API)]
            return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

        def fake_api(*_: Any) -> httpx.Client:
            return httpx.Client(base_url="https://node.test" + API, transport=httpx.MockTransport(handler))

        with mock.patch.object(cli_client, "api", fake_api), mock.patch.object(cli_inbox, "api", fake_api):
            return detente(*args, "--url", "https://node.test", "--token", "dtn_test", width=width)

    yield run


def lines_fit(output: str, width: int = 80) -> bool:
    return all(cell_len(line) <= width for line in output.splitlines())


def joined(output: str) -> str:
    """The output with its lines joined by spaces: a wrapped text reads whole again."""
    return " ".join(line.strip(" │") for line in output.splitlines())


# --- clip and compact_time ---


def test_a_text_within_the_limit_is_whole() -> None:
    assert clip(ENGLISH, len(ENGLISH)) == (ENGLISH, False)
    assert clip("", 5) == ("", False)


@pytest.mark.parametrize("text", [ENGLISH, PERSIAN, "alpha beta gamma", "one  two\tthree\nfour"])
def test_a_longer_text_is_cut_between_words_and_marked(text: str) -> None:
    words = text.split()
    for limit in range(1, len(text)):
        shown, cut = clip(text, limit)
        assert cut and shown.endswith("…") and len(shown) <= limit + 1, (limit, shown)
        if any(c.isspace() for c in text[1 : limit + 1]):
            # Whole words only: never "نداریم" cut to "ندار" (a negation gone), never "hos…".
            head = shown.removesuffix("…").split()
            assert head and head == words[: len(head)], (limit, shown)


def test_a_word_longer_than_the_limit_is_cut_at_the_limit_and_marked() -> None:
    assert clip("x" * 10, 4) == ("xxxx…", True)
    assert clip("https://example.org/a/very/long/path more", 10) == ("https://ex…", True)


def test_a_boundary_right_after_the_limit_keeps_the_last_word() -> None:
    assert clip("We have no hostile intent.", 18) == ("We have no hostile…", True)
    assert clip("We have no hostile intent.", 17) == ("We have no…", True)


def test_times_are_compact_and_nothing_else_is_lost() -> None:
    today = date(2024, 1, 16)
    assert compact_time("2024-01-16T13:05:00.123Z", today) == "13:05:00Z"
    assert compact_time("2024-01-15T23:59:59Z", today) == "2024-01-15 23:59Z"
    assert compact_time(None, today) == ""
    assert compact_time("yesterday\x1b[2J", today) == "yesterday\\x1b[2J"
    assert compact_time(17, today) == "17"


# --- inbox ---


def test_inbox_at_80_columns_shows_each_id_and_each_text_whole(node: Node) -> None:
    code = message(0, None, type="code.message", precedence="FLASH", rendered_text=ENGLISH, body={"code": "X"})
    messages = [code, message(1, PERSIAN, precedence="IMMEDIATE"), message(2, "free text ends here")]
    shown = node("inbox", answers={"/messages": {"messages": messages, "more": False}})
    assert shown.code == 0 and shown.stderr == "", shown.stderr
    assert lines_fit(shown.stdout), shown.stdout
    lines = shown.stdout.splitlines()
    for n in range(3):
        # Whole, and first on its line: what a double click or a copy takes to `detente ack`.
        assert sum(line.startswith(IDS[n] + " ") for line in lines) == 1, shown.stdout
    assert ENGLISH in joined(shown.stdout) and PERSIAN in joined(shown.stdout)
    assert "free text ends here" in shown.stdout and "…" not in shown.stdout
    assert "13:05:00Z" in shown.stdout and "2026-12-01 19:05Z" in shown.stdout and "FLASH" in shown.stdout


@pytest.mark.parametrize("width", [80, 250])
def test_inbox_shows_the_note_sent_with_a_codebook_message(node: Node, width: int) -> None:
    note = "EXCEPT the air-defence battery at Saravan, which stays on alert."
    code = message(0, None, type="code", precedence="FLASH", rendered_text=ENGLISH,
                   body={"code": "NO-HOSTILE-INTENT", "params": {"place": "Panjgur"}, "note": note})  # fmt: skip
    plain = message(1, None, type="code", rendered_text=ENGLISH, body={"code": "NO-HOSTILE-INTENT", "note": " "})
    shown = node("inbox", answers={"/messages": {"messages": [code, plain], "more": False}}, width=width)
    assert shown.code == 0, shown.stderr
    # The sender's words may limit the code: they are shown, marked as the sender's.
    assert f"{ENGLISH} | sender's note: {note}" in joined(shown.stdout), shown.stdout
    assert joined(shown.stdout).count("sender's note") == 1


def test_inbox_wide_enough_is_a_table_a_row_a_message(node: Node) -> None:
    shown = node("inbox", answers={"/messages": {"messages": [message(1, PERSIAN)]}}, width=250)
    row = next(line for line in shown.stdout.splitlines() if IDS[1] in line)
    assert PERSIAN in row and "pk:dgmo → ir:dgmo" in row and "2026-12-01 19:05Z" in row and "13:05:00Z" in row


@pytest.mark.parametrize("width", [80, 250])
def test_a_text_beyond_the_limit_is_cut_at_a_word_and_the_way_to_read_it_whole_said(node: Node, width: int) -> None:
    long = " ".join([ENGLISH] * 8)
    assert len(long) > TEXT_LIMIT
    shown = node("inbox", answers={"/messages": {"messages": [message(0, long), message(1, ENGLISH)]}}, width=width)
    assert shown.code == 0, shown.stderr
    text = joined(shown.stdout)
    head = clip(long, TEXT_LIMIT)[0]
    kept = head.removesuffix("…")
    assert long.startswith(kept) and long[len(kept)] == " " and len(kept) > TEXT_LIMIT - 20  # a whole word ends it
    assert head in text and ENGLISH in text
    assert shown.stdout.rstrip().splitlines()[-1] == (
        f"1 text over {TEXT_LIMIT} characters is cut (…): detente message <id> prints it whole"
    )


@pytest.mark.parametrize("width", [80, 250])
def test_an_empty_inbox_says_so(node: Node, width: int) -> None:
    shown = node("inbox", answers={"/messages": {"messages": [], "more": False}}, width=width)
    assert shown.code == 0 and shown.stdout == "no messages\n"


INCIDENT = {
    "kind": "strike", "time": "2024-01-16T13:00:00Z", "location": {"lat": 26.97, "lon": 63.52, "place": "Koh-e-Sabz"},
    "description": "Missiles and drones hit a house and a mosque.", "assessment": "A deliberate strike.",
    "casualties": {"killed": 2, "injured": None, "missing": None}, "escalation": 3,
}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (INCIDENT, "Missiles and drones hit a house and a mosque."),  # its description, not its JSON
        ({"title": "  ", "summary": "Shelling at Taftan"}, "Shelling at Taftan"),  # a blank title says nothing
        ({"questions": ["Who ordered it?", "Will it recur?"]}, "Who ordered it? | Will it recur?"),
        ({"status": "contained", "escalation": 2, "note": ""}, "status: contained, escalation: 2"),
        ({"held_at": "2024-01-16T11:40:00Z", "participants": ["DGMO Pakistan", "DO Iran"]},
         "held_at: 2024-01-16T11:40:00Z, participants: DGMO Pakistan, DO Iran"),
        ({"missile": "Shaheen-III", "launch_site": {"lat": 25.2, "lon": 66.7, "place": "Sonmiani"},
          "impact_area": {"center": {"lat": 20.0, "lon": 63.0}, "radius_km": 50.0},
          "window": {"start": "2024-02-01T00:00:00Z", "end": "2024-02-03T00:00:00Z"}},
         "missile: Shaheen-III, launch_site: Sonmiani, window: 2024-02-01T00:00:00Z – 2024-02-03T00:00:00Z"),
        ({"unilateral": True, "count": 0}, "unilateral: true, count: 0"),
        ({}, ""),
        (["not", "a", "body"], "['not', 'a', 'body']"),
    ],
)  # fmt: skip
def test_a_body_summary_is_one_readable_line(body: Any, line: str) -> None:
    assert body_summary(body) == line


@pytest.mark.parametrize("width", [80, 250])
def test_inbox_shows_reports_and_workflow_messages_as_a_line_not_json(node: Node, width: int) -> None:
    messages = [
        message(0, type="incident.report", precedence="FLASH", body=INCIDENT),
        message(1, type="case.update", body={"status": "contained", "escalation": 2}),
        message(2, type="clarification.request", body={"questions": ["Who ordered it?"]}),
    ]
    shown = node("inbox", answers={"/messages": {"messages": messages, "more": False}}, width=width)
    assert shown.code == 0 and shown.stderr == "", shown.stderr
    text = joined(shown.stdout)
    for line in (INCIDENT["description"], "status: contained, escalation: 2", "Who ordered it?"):
        assert line in text, shown.stdout
    assert "{" not in shown.stdout and '"kind"' not in shown.stdout and "assessment" not in shown.stdout


def test_inbox_json_is_the_list_exact_and_uncut(node: Node) -> None:
    long = " ".join([PERSIAN] * 20)
    shown = node("inbox", "--json", answers={"/messages": {"messages": [message(0, long)]}})
    assert json.loads(shown.stdout) == [message(0, long)] and shown.stderr == ""


# --- links ---


def test_links_at_80_columns_wraps_the_error_whole_and_hides_old_figures_of_a_link_not_up(node: Node) -> None:
    statuses = [{"office": "ir:dgmo", "code": "AWAITING_AUTHORITY"}, {"office": "ir:fs", "code": "OK"}]
    down = link(state="DOWN", since=f"{TODAY}T13:07:00.000Z", failures=3, last_error=ERROR, outbox=3,
                peer_statuses=statuses)  # fmt: skip
    up = link(peer="af", rtt_ms=4.25, clock_offset_ms=-450.5)
    shown = node("links", answers={"/links": {"links": [down, up]}, "/alarms": {"alarms": []}})
    assert shown.code == 0 and shown.stderr == "", shown.stderr
    assert lines_fit(shown.stdout), shown.stdout
    ir_row = next(line for line in shown.stdout.splitlines() if line.startswith("│ ir "))
    # The last test's round trip and clock are not the link's now: a dash, as on the console.
    assert "12.75" not in shown.stdout and "-3.5" not in shown.stdout and ir_row.count("—") == 2, ir_row
    assert "DOWN" in ir_row and "13:07:00Z" in ir_row and "13:05:00Z" in ir_row
    af_row = next(line for line in shown.stdout.splitlines() if line.startswith("│ af "))
    assert "4.25" in af_row and "-450.5" in af_row and "2026-11-27" in af_row
    text = joined(shown.stdout)
    assert ERROR in text and ADVICE in text  # the advice half too, wrapped
    assert "ir:dgmo AWAITING_AUTHORITY; ir:fs OK" in text
    assert "alarm" not in shown.stdout


def test_links_never_tested_shows_never_and_dashes(node: Node) -> None:
    fresh = link(state="DOWN", since=None, last_test_at=None, rtt_ms=None, clock_offset_ms=None,
                 last_error="never contacted")  # fmt: skip
    shown = node("links", answers={"/links": {"links": [fresh]}, "/alarms": {"alarms": []}})
    row = next(line for line in shown.stdout.splitlines() if line.startswith("│ ir "))
    assert "never" in row and row.count("—") == 2 and "never contacted" in shown.stdout


def test_links_json_is_the_nodes_answer_as_it_is(node: Node) -> None:
    answer = {"links": [link(state="DOWN", last_error="no\x1b[2J answer")], "extra": {"kept": True}}
    shown = node("links", "--json", answers={"/links": answer, "/alarms": {"alarms": []}})
    assert shown.code == 0 and json.loads(shown.stdout) == answer and shown.stderr == ""
    assert "\x1b" not in shown.stdout


def test_links_says_in_one_line_that_there_is_an_alarm(node: Node) -> None:
    answers = {"/links": {"links": [link()]}, "/alarms": {"alarms": [FORK]}}
    shown = node("links", answers=answers)
    assert shown.code == 0, shown.stderr
    assert shown.stdout.rstrip().splitlines()[-1] == (
        "1 alarm: fork in ir's log at 2024-01-16 07:31Z — detente alarms shows it"
    )
    # With --json, standard output stays the node's answer; the line goes to standard error.
    as_json = node("links", "--json", answers=answers)
    assert json.loads(as_json.stdout) == answers["/links"]
    assert as_json.stderr == "1 alarm: fork in ir's log at 2024-01-16 07:31Z — detente alarms shows it\n"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="https://node.test" + API, transport=httpx.MockTransport(handler))


def test_the_alarm_line_names_the_newest_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    older = {**FORK, "kind": "inclusion", "peer": "af", "created": "2024-01-01T00:00:00.000Z"}
    newest = {**FORK, "created": f"{TODAY}T07:31:00.000Z", "peer": "ir\x1b[2J"}
    with _client(lambda request: httpx.Response(200, json={"alarms": [newest, older]})) as client:
        line = alarm_note(client)
    assert line == "2 alarms, the newest: fork in ir\\x1b[2J's log at 07:31:00Z — detente alarms shows them"
    with _client(lambda request: httpx.Response(200, json={"alarms": [FORK] * 100})) as client:
        assert (alarm_note(client) or "").startswith("100 or more alarms, the newest: fork")
    with _client(lambda request: httpx.Response(200, json={"alarms": []})) as client:
        assert alarm_note(client) is None
    assert capsys.readouterr().err == ""


def test_alarms_an_operator_may_not_read_are_not_mentioned(capsys: pytest.CaptureFixture[str]) -> None:
    refused = httpx.Response(403, json={"error": "Forbidden", "detail": "no role that may read alarms"})
    with _client(lambda request: refused) as client:
        assert alarm_note(client) is None
    assert capsys.readouterr().err == ""
    failed = httpx.Response(500, json={"error": "Error", "detail": "database is locked"})
    with _client(lambda request: failed) as client:
        assert alarm_note(client) is None
    assert capsys.readouterr().err == "warning: the node's alarms could not be read: Error: database is locked\n"


def test_links_with_alarms_refused_prints_the_links_alone(node: Node) -> None:
    refused = httpx.Response(403, json={"error": "Forbidden", "detail": "no role that may read alarms"})
    shown = node("links", answers={"/links": {"links": [link()]}, "/alarms": refused})
    assert shown.code == 0 and shown.stderr == "" and "alarm" not in shown.stdout and "│ ir " in shown.stdout


# --- alarms ---


def test_alarms_at_80_columns_lists_each_whole(node: Node) -> None:
    second = {**FORK, "kind": "inclusion", "peer": "pk", "created": f"{TODAY}T06:00:00.000Z", "summary": "x [bold]"}
    shown = node("alarms", answers={"/alarms": {"alarms": [FORK, second]}})
    assert shown.code == 0 and shown.stderr == "", shown.stderr
    assert lines_fit(shown.stdout), shown.stdout
    text = joined(shown.stdout)
    assert FORK["summary"] in text and "x [bold]" in text and "06:00:00Z" in text
    assert "2024-01-16" in shown.stdout and "07:31Z" in shown.stdout and "inclusion" in shown.stdout
    assert shown.stdout.rstrip().splitlines()[-1] == (
        "each alarm's evidence: detente alarms --json, or the console's Record page"
    )


def test_alarms_json_is_the_nodes_answer_and_none_is_said(node: Node) -> None:
    shown = node("alarms", "--json", answers={"/alarms": {"alarms": [FORK]}})
    assert json.loads(shown.stdout) == {"alarms": [FORK]}
    none = node("alarms", answers={"/alarms": {"alarms": []}})
    assert none.code == 0 and none.stdout == "no alarms: every checkpoint and proof this node checked was consistent\n"


def test_alarms_limit_is_checked_before_anything_is_sent(node: Node) -> None:
    shown = node("alarms", "--limit", "0", answers={})
    assert shown.code == 2 and "--limit" in shown.stderr


def test_translations_for_people_show_control_characters_and_refuse_a_malformed_answer() -> None:
    created = f"{TODAY}T13:05:00.000Z"
    review = {"verdict": "disputed", "note": "wrong\x07", "by": "ir-tr2", "created": created}
    made = {"id": IDS[1], "lang": "fa", "text": "line one\nline \x1b[2Jtwo", "by": "ir-tr1", "office": "ir:dgmo",
            "created": created, "certified": False, "reviews": [review]}  # fmt: skip
    assert translation_lines({"id": IDS[0], "translations": [made]}) == [
        f"1 translation of {IDS[0]}",
        f"translation {IDS[1]} into fa by ir-tr1 (ir:dgmo) at 13:05:00Z: disputed",
        "  line one",
        "  line \\x1b[2Jtwo",
        "  disputed by ir-tr2 at 13:05:00Z: wrong\\x07",
    ]
    with pytest.raises(UnexpectedAnswer, match="the node's answer has no 'translations'"):
        translation_lines({"id": IDS[0]})
    with pytest.raises(UnexpectedAnswer, match="a review in the node's answer is not a JSON object"):
        translation_lines({"id": IDS[0], "translations": [{**made, "reviews": ["certified"]}]})
