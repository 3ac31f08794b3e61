"""The console in-process: a node (not serving) behind Starlette's TestClient, one per test module.

Each module defines a `demo` fixture (the setup it needs: `node.demo.setup_demo`, perhaps with rows
added); `client` is a TestClient of its pk node, with no cookies at the start of each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console_support import BASE
from detente.node.runtime import Node
from detente.web.app import create_app


@pytest.fixture(scope="module")
def app_client(demo: dict[str, Any]) -> Iterator[TestClient]:
    node = Node.open(Path(demo["nodes"]["pk"]["data"]))
    with TestClient(create_app(node, start_background=False), base_url=BASE) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> Iterator[TestClient]:
    app_client.cookies.clear()
    yield app_client
    app_client.cookies.clear()
