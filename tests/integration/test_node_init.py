"""`detente init` on real directories: a failure is one clear line and leaves nothing behind.

Commands run through `detente.cli.main` in this process (`cli_support.detente`), in a working
directory of the test's own, so that relative paths mean what they mean to an operator.
"""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest

from cli_support import assert_error, detente
from detente.node import setup
from support import AGREEMENT


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (its path relative to `root`) with its content; directories as b'/'."""
    return {str(p.relative_to(root)): (b"/" if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def init(data: Path | str, *extra: str, agreement: Path = AGREEMENT) -> tuple[str, ...]:
    return ("init", "--party", "pk", "--agreement", str(agreement), "--data", str(data), *extra)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_a_relative_data_directory_works_from_any_directory(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = detente(*init("adm/n1"))
    assert made.code == 0, made.stderr
    data = cwd / "adm" / "n1"
    assert f'db = "sqlite:///{data}/node.db"' in (data / "node.toml").read_text()
    elsewhere = cwd.parent / "elsewhere"
    (elsewhere / "adm" / "n1").mkdir(parents=True)  # the relative path exists here too, empty
    monkeypatch.chdir(elsewhere)
    listed = detente("user", "list", "--data", str(data))
    assert listed.code == 0 and json.loads(listed.stdout) == [], listed.stderr
    added = detente("user", "add", "--data", str(data), "--name", "duty1", "--office", "pk:dgmo", "--role", "operator")
    assert added.code == 0, added.stderr
    listed = json.loads(detente("user", "list", "--data", str(data)).stdout)
    assert listed == [
        {"name": "duty1", "id": listed[0]["id"], "offices": ["pk:dgmo"], "roles": ["operator"], "lang": "en",
         "disabled": False}
    ]  # fmt: skip
    assert added.stdout and len(listed[0]["id"]) == 36  # the id envelopes name as their author
    assert detente("user", "disable", "--data", str(data), "--name", "duty1").code == 0
    assert [o["disabled"] for o in json.loads(detente("user", "list", "--data", str(data)).stdout)] == [True]
    assert files(elsewhere) == {"adm": b"/", "adm/n1": b"/"}  # no empty database made here


def test_a_node_of_an_earlier_release_with_a_relative_database_path(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert detente(*init("adm/n1")).code == 0
    data = cwd / "adm" / "n1"
    toml = data / "node.toml"
    toml.write_text(toml.read_text().replace(f"sqlite:///{data}/node.db", "sqlite:///adm/n1/node.db"))
    assert (
        detente("user", "add", "--data", "adm/n1", "--name", "duty1", "--office", "pk:dgmo", "--role", "operator").code
        == 0
    )
    monkeypatch.chdir(cwd.parent)
    listed = detente("user", "list", "--data", str(data))
    assert [o["name"] for o in json.loads(listed.stdout)] == ["duty1"], listed.stderr
    # A stray database where the relative path points from the data directory: which one is meant
    # is not for us to guess.
    (data / "adm" / "n1").mkdir(parents=True)
    (data / "adm" / "n1" / "node.db").write_bytes(b"")
    assert_error(
        detente("user", "list", "--data", str(data)), "holds its own node.db: was the directory moved or copied?"
    )


def test_a_moved_data_directory_is_named_not_given_a_new_database(cwd: Path) -> None:
    assert detente(*init("n1")).code == 0
    (cwd / "n1").rename(cwd / "n2")
    before = files(cwd)
    assert_error(detente("user", "list", "--data", "n2"), "holds its own node.db: was the directory moved or copied?")
    (cwd / "n2" / "node.db").rename(cwd / "n2" / "kept.db")
    assert_error(detente("user", "list", "--data", "n2"), f"NotFound: the database {cwd}/n1/node.db named in")
    assert not (cwd / "n1").exists()
    assert files(cwd).keys() == before.keys() - {"n2/node.db"} | {"n2/kept.db"}


RECORD_COMMANDS = [("log", "export", "--data", "n1", "--out", "out"), ("rebuild", "--data", "n1")]


@pytest.mark.parametrize("command", RECORD_COMMANDS, ids=["export", "rebuild"])
def test_the_record_commands_never_make_a_missing_database_anew(cwd: Path, command: tuple[str, ...]) -> None:
    assert detente(*init("n1")).code == 0
    (cwd / "n1" / "node.db").rename(cwd / "kept.db")
    before = files(cwd)
    assert_error(detente(*command), f"NotFound: the database {cwd}/n1/node.db named in")
    assert files(cwd) == before  # no empty node.db, no export directory


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("nosuchdb://x", "BadRequest: nosuchdb://x: a node's database is SQLite or PostgreSQL"),
        ("postgresql+nosuch://u@h/db", "no driver 'nosuch' here"),
        ("sqlite://", "a node's SQLite database is a file"),
        ("a:b:c", "the database URL does not parse"),
        (
            f"postgresql+psycopg://qa:s3cret@127.0.0.1:{closed_port()}/x",
            "Unavailable: cannot reach the database postgresql+psycopg://qa:***@127.0.0.1:",
        ),
    ],
    ids=["unknown", "driver", "memory", "garbage", "unreachable"],
)
def test_a_bad_database_url_changes_nothing(cwd: Path, db: str, says: str) -> None:
    result = detente(*init("n9", "--db", db))
    assert_error(result, says)
    assert "s3cret" not in result.stderr
    assert files(cwd) == {}
    assert detente(*init("n9")).code == 0  # and the same directory takes a node afterwards


def test_a_database_failing_after_the_files_are_written_takes_them_all_back(cwd: Path) -> None:
    # The URL is fine and names no file yet, but SQLite cannot create it: the last step fails.
    result = detente(*init("deep/er/n9", "--db", f"sqlite:///{cwd}/missing/node.db"))
    assert_error(result, f"Unavailable: cannot create the database sqlite:///{cwd}/missing/node.db:")
    assert files(cwd) == {}


def test_ctrl_c_in_the_middle_takes_back_what_init_made(cwd: Path) -> None:
    (cwd / "n9").mkdir()
    with mock.patch.object(setup, "make_certificate", side_effect=KeyboardInterrupt):
        assert detente(*init("n9/sub")).code == 130
    assert files(cwd) == {"n9": b"/"}  # the directory that was there before stays


def test_an_existing_database_file_is_not_taken_over(cwd: Path) -> None:
    other = cwd / "other.db"
    other.write_bytes(b"someone else's")
    assert_error(detente(*init("n9", "--db", "sqlite:///other.db")), f"Conflict: {other} exists already")
    assert files(cwd) == {"other.db": b"someone else's"}


@pytest.mark.postgres
def test_a_postgresql_database_holding_a_node_is_not_taken_over(cwd: Path, pg_database: Callable[[str], str]) -> None:
    url = pg_database("init")
    made = detente(*init("n1", "--db", url))
    assert made.code == 0, made.stderr
    assert (cwd / "n1" / "node.toml").read_text().endswith(f'db = "{url}"\n')
    assert_error(detente(*init("n2", "--db", url)), "already holds a node's tables; give an empty database")
    assert not (cwd / "n2").exists()


def test_the_data_directory_must_be_new_or_empty(cwd: Path) -> None:
    (cwd / "afile").write_bytes(b"x")
    (cwd / "full").mkdir()
    (cwd / "full" / "notes.txt").write_bytes(b"mine")
    before = files(cwd)
    assert_error(detente(*init("afile")), f"BadRequest: {cwd}/afile is a file, not a directory")
    assert_error(detente(*init("afile/n1")), f"BadRequest: cannot create {cwd}/afile/n1: Not a directory")
    assert_error(detente(*init("full")), f"Conflict: {cwd}/full is not empty (it holds notes.txt); choose a new")
    assert files(cwd) == before
    (cwd / "empty").mkdir()
    assert detente(*init("empty")).code == 0
    node = files(cwd / "empty")
    assert_error(detente(*init("empty")), f"Conflict: {cwd}/empty already holds a node; choose a new or empty")
    assert files(cwd / "empty") == node


def test_agreement_files_init_cannot_use(cwd: Path) -> None:
    text = AGREEMENT.read_bytes()
    not_utf8 = cwd.parent / "not-utf8.toml"
    not_utf8.write_bytes(text + b"\n# \xff\n")
    assert_error(detente(*init("n1", agreement=not_utf8)), f"MalformedError: {not_utf8} is not UTF-8 text (byte")
    bad_key = cwd.parent / "bad-key.toml"
    section = b'[parties.ir]\nname = "Islamic Republic of Iran"\nutc_offset = "+03:30"\nurl = ""\nvkey = ""'
    assert section in text
    bad_key.write_bytes(text.replace(section, section.replace(b'vkey = ""', b'vkey = "ir.detente/log+00+AA"')))
    assert_error(detente(*init("n1", agreement=bad_key)), "MalformedError: [parties.ir]: malformed verifier key")
    assert files(cwd) == {}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "an empty directory made before"])
def test_the_node_s_directory_and_database_are_its_user_s_alone(cwd: Path, existing: bool) -> None:
    """The database holds every message and the hashes of every password and token, as private as the key."""
    data, elsewhere = cwd / "node", cwd / "databases"
    if existing:
        data.mkdir(mode=0o755)
    elsewhere.mkdir(mode=0o755)
    made = detente(*init(data, "--db", f"sqlite:///{elsewhere}/pk.db"))
    assert made.code == 0, made.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((elsewhere / "pk.db").stat().st_mode) == 0o600  # a database outside DIR too
    for name in ("node.key", "tls.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    added = detente("user", "add", "--data", str(data), "--name", "duty1", "--office", "pk:dgmo", "--role", "operator")
    assert added.code == 0, added.stderr  # written again by another command, still private
    assert stat.S_IMODE((elsewhere / "pk.db").stat().st_mode) == 0o600


def test_the_url_for_the_agreement_is_the_one_peers_reach(cwd: Path) -> None:
    public = detente(*init("public", "--listen", "0.0.0.0:8443", "--url", "https://hotline.example.pk:443"))
    assert public.code == 0, public.stderr
    assert 'url = "https://hotline.example.pk:443"' in public.stdout and public.stderr == ""
    # Listening on every address without --url: the line to paste is not an address; a note says so.
    everywhere = detente(*init("everywhere", "--listen", "0.0.0.0:8443"))
    assert everywhere.code == 0, everywhere.stderr
    assert 'url = "https://0.0.0.0:8443"' in everywhere.stdout
    assert "note: 0.0.0.0 is where this node listens, not an address a peer can connect to" in everywhere.stderr
    for bad in ("http://hotline.example.pk", "https://0.0.0.0:8443", "https://hotline.example.pk:99999", "hotline"):
        before = files(cwd)
        assert_error(detente(*init("refused", "--url", bad)), "--url must be")
        assert files(cwd) == before  # refused before anything is made
