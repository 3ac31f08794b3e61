"""A peer that cannot be reached is worded one way, whichever client met the failure first."""

from __future__ import annotations

import socket
import ssl
from collections import namedtuple

import aiohttp
import pytest

from detente.node import peers
from detente.node.tls import unreachable

URL = "https://127.0.0.1:8444"
REFUSED = (
    "cannot reach https://127.0.0.1:8444: connection refused (nothing listens there: is the node serving, "
    "at that address?)"
)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ConnectionRefusedError(111, "Connection refused"), REFUSED),
        (TimeoutError(), f"cannot reach {URL}: no answer in time"),
        (
            socket.gaierror(-2, "Name or service not known"),
            f"cannot reach {URL}: the host name does not resolve (Name or service not known)",
        ),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), f"cannot reach {URL}: TLS failed ("),
        (OSError(113, "No route to host"), f"cannot reach {URL}: no route to host"),
        (ValueError("odd"), f"cannot reach {URL}: ValueError: odd"),
    ],
)
def test_the_first_connection_says_why_in_plain_words(error: BaseException, says: str) -> None:
    assert unreachable(URL, error).startswith(says)


def test_aiohttp_failures_are_worded_as_the_first_connection() -> None:
    key = namedtuple("Key", "host port ssl")("127.0.0.1", 8444, True)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))  # type: ignore[arg-type]
    assert peers._unreachable(URL, refused) == REFUSED == unreachable(URL, ConnectionRefusedError())
    assert peers._unreachable(URL, aiohttp.ServerDisconnectedError()) == (
        f"cannot reach {URL}: it closed the connection before answering"
    )
    assert peers._unreachable(URL, aiohttp.ServerTimeoutError()) == f"cannot reach {URL}: no answer in time"
