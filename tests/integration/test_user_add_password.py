"""`detente user add --password-stdin` takes exactly the passwords the console login takes.

The rule is one (`node.auth.check_new_password`): 8 to 1024 characters, not only blanks. A refused
password is one error line, exit status 1, and no operator is added; the longest accepted one
logs in.
"""

from __future__ import annotations

import json

import httpx
import pytest

from cli_support import assert_error, detente
from console_support import login
from support import Cluster, NodeProc

ADD = ("--office", "pk:dgmo", "--role", "operator", "--password-stdin")


def _names(node: NodeProc) -> list[str]:
    return [o["name"] for o in json.loads(detente("user", "list", "--data", str(node.data)).stdout)]


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        (b"y" * 1025 + b"\n", "BadRequest: passwords are at most 1024 characters"),
        ("ی".encode() * 1025 + b"\n", "BadRequest: passwords are at most 1024 characters"),
        (b" " * 12 + b"\n", "BadRequest: a password may not be only spaces"),
        ("\t\u00a0\u2003\u3000    \n".encode(), "BadRequest: a password may not be only spaces"),
        (b"seven77\n", "BadRequest: passwords are at least 8 characters"),
    ],
    ids=["1025-ascii", "1025-persian", "spaces", "other-blanks", "short"],
)
def test_a_password_the_login_would_refuse_adds_no_one(pair: Cluster, stdin: bytes, says: str) -> None:
    pk = pair["pk"]
    before = _names(pk)
    assert_error(detente("user", "add", "--data", str(pk.data), "--name", "pw-rule-refused", *ADD, stdin=stdin), says)
    assert _names(pk) == before


@pytest.mark.parametrize(
    ("name", "password"),
    [("pw-rule-ascii", "y" * 1024), ("pw-rule-persian", "ی" * 1024), ("pw-rule-inner", "  a b c  ")],
)
def test_the_longest_password_and_one_with_spaces_in_it_log_in(pair: Cluster, name: str, password: str) -> None:
    pk = pair["pk"]
    added = detente("user", "add", "--data", str(pk.data), "--name", name, *ADD, stdin=password.encode() + b"\n")
    assert added.code == 0, added.stderr
    with httpx.Client(base_url=pk.url, verify=pk.context, timeout=30) as browser:
        assert login(browser, name, password).status_code == 303
