"""node.toml: what `load_config` accepts, how it names what is wrong, and where a SQLite path points."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from detente.errors import BadRequest, NotFound
from detente.node.config import load_config, toml_string, write_config

GOOD = 'party = "pk"\nhost = "127.0.0.1"\nport = 8443\ndb = "postgresql+psycopg://u@h/db"\n'


def _node_toml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "node.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return tmp_path


def test_a_good_node_toml_loads(tmp_path: Path) -> None:
    config = load_config(_node_toml(tmp_path, GOOD))
    assert (config.party, config.host, config.port, config.db) == (
        "pk",
        "127.0.0.1",
        8443,
        "postgresql+psycopg://u@h/db",
    )


def test_a_directory_without_node_toml_is_not_a_node(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="is not a node data directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD.replace('party = "pk"\n', ""), "it has no 'party' setting"),
        (GOOD.replace("port = 8443\n", ""), "it has no 'port' setting"),
        (GOOD.replace('db = "postgresql+psycopg://u@h/db"\n', ""), "it has no 'db' setting"),
        (GOOD.replace("port = 8443", 'port = "8443"'), "'port' must be a number"),
        (GOOD.replace("port = 8443", "port = true"), "'port' must be a number"),
        (GOOD.replace("port = 8443", "port = 70000"), "port must be 1-65535, not 70000"),
        (GOOD.replace('party = "pk"', "party = 7"), "'party' must be a string"),
        (GOOD + "[broken\n", "is damaged: Expected ']'"),
        (GOOD.encode() + b"# \xff\n", "is damaged: it is not UTF-8 text"),
    ],
    ids=["no-party", "no-port", "no-db", "port-text", "port-bool", "port-range", "party-number", "toml", "utf8"],
)
def test_a_damaged_node_toml_names_the_file_and_the_setting(tmp_path: Path, text: str | bytes, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        load_config(_node_toml(tmp_path, text))
    assert str(tmp_path / "node.toml") in caught.value.detail and says in caught.value.detail


def test_written_values_read_back_whatever_they_hold(tmp_path: Path) -> None:
    odd = 'a "quoted" \\ path\x7f'
    write_config(tmp_path, "pk", odd, 8443, "sqlite:////x/node.db")
    assert tomllib.loads((tmp_path / "node.toml").read_text())["host"] == odd
    assert load_config(tmp_path).host == odd
    assert tomllib.loads(f"v = {toml_string(odd)}")["v"] == odd


def _sqlite_db(tmp_path: Path, url: str) -> str:
    return load_config(_node_toml(tmp_path, GOOD.replace("postgresql+psycopg://u@h/db", url))).db


def test_a_new_node_names_its_database_by_an_absolute_path(tmp_path: Path) -> None:
    assert _sqlite_db(tmp_path, f"sqlite:///{tmp_path}/node.db") == f"sqlite:///{tmp_path}/node.db"


def test_an_earlier_release_s_relative_path_is_read_against_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `init --data adm/n1` of an earlier release wrote the directory as typed, from another directory.
    data = tmp_path / "adm" / "n1"
    data.mkdir(parents=True)
    (data / "node.db").write_bytes(b"")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "adm" / "n1").mkdir(parents=True)  # the same relative path, here, must not be taken
    monkeypatch.chdir(elsewhere)
    assert _sqlite_db(data, "sqlite:///adm/n1/node.db") == f"sqlite:///{data}/node.db"
    assert _sqlite_db(data, "sqlite:///node.db") == f"sqlite:///{data}/node.db"
    (data / "sub").mkdir()
    (data / "sub" / "node.db").write_bytes(b"")
    assert _sqlite_db(data, "sqlite:///sub/node.db") == f"sqlite:///{data}/sub/node.db"  # as written, if it exists
    assert not list(elsewhere.rglob("*.db"))
