"""Database URLs a node accepts, and driver errors turned into one line without a password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from detente.errors import BadRequest, Unavailable
from detente.node.database import check_url, database_errors, init_url, shown


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nosuchdb://x", "nosuchdb://x: a node's database is SQLite or PostgreSQL"),
        ("mysql://u:pw@h/db", "mysql://u:***@h/db: a node's database is SQLite or PostgreSQL"),
        ("postgresql+nosuch://u@h/db", "no driver 'nosuch' here"),
        ("sqlite://", "a node's SQLite database is a file"),
        ("sqlite:///:memory:", "a node's SQLite database is a file"),
        ("not a url", "the database URL does not parse"),
    ],
)
def test_urls_a_node_cannot_use_are_refused_plainly(url: str, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        check_url(url)
    assert says in caught.value.detail
    assert "pw" not in caught.value.detail


def test_urls_a_node_can_use() -> None:
    for url in ("sqlite:////srv/n/node.db", "postgresql://u@h/db", "postgresql+psycopg://u:pw@h:5432/db"):
        check_url(url)


def test_init_writes_sqlite_paths_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert init_url(None, Path("adm/n1")) == f"sqlite:///{tmp_path}/adm/n1/node.db"
    assert init_url("sqlite:///db/x.db", Path("n")) == f"sqlite:///{tmp_path}/db/x.db"
    assert init_url("postgresql+psycopg://u@h/db", Path("n")) == "postgresql+psycopg://u@h/db"


def test_a_driver_error_becomes_one_line_without_the_password() -> None:
    url = "postgresql+psycopg://qa:s3cret@db.example/x"
    orig = Exception('connection to "db.example" failed: password s3cret rejected\n\tIs the server running?')
    with pytest.raises(Unavailable) as caught, database_errors(url, "reach"):
        raise OperationalError("SELECT 1", {}, orig)
    detail = caught.value.detail
    assert detail == (
        'cannot reach the database postgresql+psycopg://qa:***@db.example/x: connection to "db.example" '
        "failed: password *** rejected Is the server running?"
    )
    assert shown(url) == "postgresql+psycopg://qa:***@db.example/x"
