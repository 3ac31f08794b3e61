"""`detente user passwd` against a running node: the new password works, the old one and its sessions do not.

The command writes the node's database from another process, as an administrator would while the
node serves; the node notices on the session's next page request, and closes its open stream (4401).
Refusals (an unknown name, an empty or short password, one longer than the console login takes,
one of only blanks) are one error line, exit status 1, and change nothing; a missing
--password-stdin is a usage error (`tests/unit/cli/test_usage_errors.py`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from cli_support import Ran, assert_error, detente
from support import Cluster, NodeProc, run_async

NEW = "a new passphrase for duty"
COOKIE = "__Host-detente-pk"


@pytest.fixture
def pk(fresh_pair: Cluster) -> Iterator[NodeProc]:
    """The Pakistani node of a pair of this test's own, running alone (its peer is not needed)."""
    node = fresh_pair["pk"]
    node.start()
    yield node


def console(node: NodeProc) -> httpx.Client:
    return httpx.Client(base_url=node.url, verify=node.context, timeout=30)


def log_in(client: httpx.Client, name: str, password: str) -> int:
    """Post the login form as a browser does; return the answer's status (303 when logged in)."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    form = {"name": name, "password": password, "csrf": token.group(1)}
    return client.post("/login", data=form, follow_redirects=False).status_code


def passwd(node: NodeProc, name: str, stdin: bytes, *flags: str) -> Ran:
    return detente("user", "passwd", "--data", str(node.data), "--name", name, *flags, stdin=stdin)


def test_a_new_password_ends_the_open_session_and_replaces_the_old_one(pk: NodeProc) -> None:
    with console(pk) as browser:
        assert log_in(browser, "pk-dgmo", "pk-dgmo-demo") == 303
        assert browser.get("/", follow_redirects=False).status_code == 200
        cookie = browser.cookies.get(COOKIE)
        assert cookie

        async def stream_closes_after_the_change() -> int:
            uri = pk.url.replace("https", "wss") + "/api/v1/stream"
            headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": pk.url}
            async with websockets.connect(uri, ssl=pk.context, additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["event"] == "hello"
                changed = await asyncio.to_thread(passwd, pk, "pk-dgmo", NEW.encode() + b"\n", "--password-stdin")
                assert changed.code == 0, (changed.stdout, changed.stderr)
                assert "password changed" in changed.stdout
                with pytest.raises(ConnectionClosed) as closed:
                    for _ in range(100):  # events, if any, until the node closes the stream
                        await asyncio.wait_for(ws.recv(), timeout=15)
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code

        assert run_async(stream_closes_after_the_change()) == 4401
        # The same cookie no longer opens a page: the login page, saying the session ended.
        ended = browser.get("/", follow_redirects=False)
        assert ended.status_code == 303 and ended.headers["location"].startswith("/login")

    with console(pk) as browser:
        assert log_in(browser, "pk-dgmo", "pk-dgmo-demo") == 401
    with console(pk) as browser:
        assert log_in(browser, "pk-dgmo", NEW) == 303
        assert browser.get("/", follow_redirects=False).status_code == 200
    with pk.client("pk-dgmo") as api:  # the API token is not the password: it still works
        assert api.get("/api/v1/me").json()["name"] == "pk-dgmo"


REFUSALS = [
    # (name, standard input, flags, what the error says)
    ("nobody", b"long enough password\n", ("--password-stdin",), "no operator called 'nobody'"),
    ("pk-fs", b"", ("--password-stdin",), "no password on standard input"),
    ("pk-fs", b"\n", ("--password-stdin",), "no password on standard input"),
    ("pk-fs", b"short\n", ("--password-stdin",), "passwords are at least 8 characters"),
    ("pk-fs", b"y" * 1025 + b"\n", ("--password-stdin",), "passwords are at most 1024 characters"),
    ("pk-fs", "ی".encode() * 1025 + b"\n", ("--password-stdin",), "passwords are at most 1024 characters"),
    ("pk-fs", b" " * 10 + b"\n", ("--password-stdin",), "a password may not be only spaces"),
    ("pk-fs", "\t \xa0 \t \u2003  \r\n".encode(), ("--password-stdin",), "a password may not be only spaces"),
    ("pk-fs", b"\xff\xfe not utf-8\n", ("--password-stdin",), "not UTF-8"),
]


def test_a_refused_change_is_one_error_line_and_changes_nothing(pk: NodeProc) -> None:
    with console(pk) as browser:
        assert log_in(browser, "pk-fs", "pk-fs-demo") == 303
        for name, stdin, flags, says in REFUSALS:
            assert_error(passwd(pk, name, stdin, *flags), says)
            assert browser.get("/", follow_redirects=False).status_code == 200, says  # the session goes on
    with console(pk) as browser:
        assert log_in(browser, "pk-fs", "pk-fs-demo") == 303
    with console(pk) as browser:
        assert log_in(browser, "pk-fs", "long enough password") == 401


@pytest.mark.parametrize("longest", ["y" * 1024, "ی" * 1024], ids=["ascii", "persian"])
def test_the_longest_password_passwd_sets_is_one_the_login_takes(pk: NodeProc, longest: str) -> None:
    # The console's login form takes at most 1024 characters (not bytes): a longer password set
    # here would lock the operator out.
    changed = passwd(pk, "pk-fs", longest.encode() + b"\n", "--password-stdin")
    assert changed.code == 0, (changed.stdout, changed.stderr)
    with console(pk) as browser:
        assert log_in(browser, "pk-fs", longest) == 303
    with console(pk) as browser:
        assert log_in(browser, "pk-fs", longest + "y") == 400  # the form's own limit, the same number
