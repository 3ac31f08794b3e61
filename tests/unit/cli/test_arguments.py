"""The command line's own values are checked before anything is sent: usage errors, exit status 2.

None of these commands reaches a node (none runs here): each is refused while its arguments are
read, or before the first request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli_support import assert_error, assert_usage_error, detente
from detente.cli.arguments import MAX_ID, CheckedCommand, check_id, check_prefixes, check_since, language_tag, segment

ID = "01a20000-0000-7000-8000-000000000000"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (ID, ID),
        ("?box=out", "%3Fbox%3Dout"),
        ("a b#c%d", "a%20b%23c%25d"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "..."),
        ("پیام", "%D9%BE%DB%8C%D8%A7%D9%85"),
    ],
)
def test_an_id_is_one_path_segment(value: str, encoded: str) -> None:
    assert segment(value) == encoded


@pytest.mark.parametrize(
    ("value", "says"),
    [("", "cannot be empty"), ("../links", "cannot hold '/'"), (f"{ID}/proof", "cannot hold '/'"),
     ("a" * (MAX_ID + 1), f"at most {MAX_ID} characters")],
)  # fmt: skip
def test_ids_that_cannot_be_one_segment_are_refused(value: str, says: str) -> None:
    with pytest.raises(typer.BadParameter, match=says):
        segment(value)
    with pytest.raises(typer.BadParameter, match=says):
        check_id(value)


def test_since_is_read_as_the_node_reads_it() -> None:
    assert check_since(None) is None
    assert check_since("2024-01-16T13:05:00Z") == "2024-01-16T13:05:00Z"
    for bad in ("yesterday", "2024-01-16 13:05", "2024-02-30T00:00:00Z"):
        with pytest.raises(typer.BadParameter):
            check_since(bad)


def test_a_language_is_taken_in_any_case_and_never_blank() -> None:
    """QA: `--lang UR` was refused and `--lang ""` silently meant the operator's own language."""

    def languages() -> list[str]:
        asked.append(True)
        return ["en", "ur", "fa"]

    asked: list[bool] = []
    assert [language_tag(value, languages) for value in ("ur", "UR", "Fa", "de")] == ["ur", "ur", "fa", "de"]
    assert language_tag("ÜR", languages) == "ÜR"  # not a tag: the node refuses it by name
    assert asked == []  # the node is asked for its languages only to refuse a blank one
    for blank in ("", "  ", "\t"):
        with pytest.raises(typer.BadParameter) as raised:
            language_tag(blank, languages, "--lang")
        assert raised.value.message == "a language cannot be blank: give one of the agreement's (en, ur, fa)"
        assert raised.value.param_hint == "'--lang'"
    assert len(asked) == 3


def test_an_id_prefix_cannot_be_empty() -> None:
    assert check_prefixes(None) is None and check_prefixes(["01a2", ID]) == ["01a2", ID]
    with pytest.raises(typer.BadParameter, match="an id prefix cannot be empty"):
        check_prefixes(["01a2", ""])


def test_a_checked_command_refuses_text_that_is_not_utf8_naming_the_option() -> None:
    app = typer.Typer()

    @app.command(cls=CheckedCommand)
    def echo(text: str = "", tags: list[str] | None = None, path: Path | None = None) -> None:
        print("ran", text, tags, path is not None)

    runner = CliRunner()
    refused = runner.invoke(app, ["--text", "a\udcffb"])
    assert refused.exit_code == 2 and "Invalid value for '--text': is not UTF-8 text" in refused.output
    listed = runner.invoke(app, ["--tags", "ok", "--tags", "\udcff"])
    assert listed.exit_code == 2 and "'--tags'" in listed.output
    # A path need not be UTF-8 (POSIX file names are bytes); Urdu text is UTF-8.
    fine = runner.invoke(app, ["--text", "سلام", "--path", "/tmp/\udcff"])
    assert fine.exit_code == 0 and "ran سلام" in fine.output


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A directory for `--node`: these commands are refused before they read it."""
    return tmp_path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("message", ""), "Invalid value for 'message': an id cannot be empty"),
        (("message", "../links"), "an id cannot hold '/'"),
        (("message", "a" * 100_000), f"an id is at most {MAX_ID} characters, not 100000"),
        (("ack", ""), "Invalid value for 'message': an id cannot be empty"),
        (("decline", "", "--reason", "r"), "an id cannot be empty"),
        (("case", "show", ""), "Invalid value for 'target': an id cannot be empty"),
        (("action", "show", "../links"), "an id cannot hold '/'"),
        (("consultation", "show", ""), "an id cannot be empty"),
        (("send", "--channel", "dgmo", "--to", "ir:dgmo", "--text", "x", "--body", '{"text": "y"}'),
         "give --text or --body, not both"),
        (("send", "--channel", "dgmo", "--to", "ir:dgmo"), "give --text or --body"),
        (("send", "--channel", "dgmo", "--to", "ir:dgmo", "--body", "{"), "Invalid value for '--body': is not JSON"),
        (("send", "--channel", "dgmo", "--to", "ir:dgmo", "--body", "[" * 100_000),
         "Invalid value for '--body': nests JSON too deeply"),
        (("send", "--channel", "dgmo", "--to", "ir:dgmo", "--text", "\udcff"),
         "Invalid value for '--text': is not UTF-8 text"),
        (("ack", ID, "--note", "n\udcffo"), "Invalid value for '--note': is not UTF-8 text"),
        (("inbox", "--box", "sideways"), "Invalid value for '--box'"),
        (("inbox", "--state", "lost"), "Invalid value for '--state'"),
        (("inbox", "--limit", "0"), "Invalid value for '--limit'"),
        (("inbox", "--limit", "1001"), "Invalid value for '--limit'"),
        (("inbox", "--since", "yesterday"), "Invalid value for '--since': time 'yesterday' is not RFC 3339"),
        (("links", "--cacert", "/nonexistent/tls.crt"), "'/nonexistent/tls.crt' does not exist"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_before_anything_is_sent(node_dir: Path, args: tuple[str, ...], says: str) -> None:
    assert_usage_error(detente(*args, "--node", str(node_dir), "--token", "dtn_x"), says)


@pytest.mark.parametrize(
    ("token", "says"),
    [("", "the token is empty"), ("dtn_a b", "printable ASCII without spaces"), ("dtn_\n", "printable ASCII"),
     ("dtn_é", "printable ASCII"), ("dtn_\udcff", "is not UTF-8 text")],
)  # fmt: skip
def test_a_token_that_cannot_be_one_is_a_usage_error_that_never_repeats_it(
    node_dir: Path, token: str, says: str
) -> None:
    result = detente("links", "--node", str(node_dir), "--token", token)
    assert_usage_error(result, says)
    assert "Invalid value for '--token'" in result.stderr
    if token.strip():
        assert token not in result.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8443", "is not an https:// URL"),
        ("127.0.0.1:8443", "is not an https:// URL"),
        ("https://127.0.0.1:8443/?", "a query, a fragment or a user name"),
        ("https://127.0.0.1:8443/#x", "a query, a fragment or a user name"),
        ("https://me@127.0.0.1:8443", "a query, a fragment or a user name"),
        ("https://127.0.0.1:99999", "its port is not a number"),
        ("https://127.0.0.1:8443/a b", "spaces or control characters"),
        ("https://127.0.0.1:8443/\x1b", "spaces or control characters"),
    ],
)
def test_a_url_that_is_not_a_node_base_url_is_a_usage_error(tmp_path: Path, url: str, says: str) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("not used", encoding="utf-8")
    result = detente("links", "--url", url, "--cacert", str(cert), "--token", "dtn_x")
    assert_usage_error(result, says)
    assert "Invalid value for '--url'" in result.stderr and "e.g. https://127.0.0.1:8443" in result.stderr
    assert "\x1b" not in result.stderr


def test_a_node_directory_that_does_not_exist_is_a_usage_error() -> None:
    assert_usage_error(detente("links", "--node", "/nonexistent/node", "--token", "dtn_x"), "does not exist")


def test_which_node_must_be_said() -> None:
    assert_usage_error(detente("links", "--token", "dtn_x"), "no node given: use --node DIR, or --url URL")
    no_cert = detente("links", "--url", "https://127.0.0.1:8443", "--token", "dtn_x")
    assert_usage_error(no_cert, "Invalid value for '--cacert'")


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"root:x:0:0:root:/root:/bin/bash\n", "is not a PEM certificate"),
     (b"\xff\xfe\x00binary", "is not a PEM certificate"),
     (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a PEM certificate")],
)  # fmt: skip
def test_a_certificate_file_that_is_not_one_is_an_error(tmp_path: Path, content: bytes, says: str) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_bytes(content)
    result = detente("links", "--url", "https://127.0.0.1:8443", "--cacert", str(cert), "--token", "dtn_x")
    assert_error(result, f"BadRequest: {cert} {says}")


def test_a_certificate_path_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = detente("links", "--url", "https://127.0.0.1:8443", "--cacert", str(tmp_path), "--token", "dtn_x")
    assert_usage_error(result, "is a directory")


def test_send_batch_input_that_cannot_be_read_is_an_error(node_dir: Path) -> None:
    auth = ("--node", str(node_dir), "--token", "dtn_x")
    assert_error(detente("send-batch", "-", *auth, stdin=b"[" * 100_000), "standard input nests JSON too deeply")
    assert_error(detente("send-batch", "-", *auth, stdin=b'[{"text": "\xff"}]'), "standard input is not UTF-8 text")
    assert_error(detente("send-batch", "-", *auth, stdin=b"[1,"), "standard input is not JSON")
    deep = node_dir / "deep.json"
    deep.write_bytes(b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    assert_error(detente("send-batch", str(deep), *auth), f"{deep} nests JSON too deeply")
    assert_error(detente("send-batch", str(node_dir / "none.json"), *auth), "cannot read")
