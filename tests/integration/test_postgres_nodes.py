"""The hotline between two real nodes whose databases are PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support import Cluster, wait_for

pytestmark = pytest.mark.postgres


def test_message_and_ack_with_postgresql(tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    cluster = Cluster(tmp_path, db_urls={"pk": pg_database("pk"), "ir": pg_database("ir")}).start()
    try:
        pk, ir = cluster["pk"], cluster["ir"]
        with pk.client("pk-dgmo") as client:
            sent = client.post(
                "/api/v1/messages",
                json={"channel": "dgmo", "to": "ir:dgmo", "precedence": "FLASH", "type": "hotline.text",
                      "body": {"text": "over PostgreSQL"}},
            )  # fmt: skip
        assert sent.status_code == 201, sent.text
        message_id = sent.json()["id"]
        wait_for(lambda: ir.client("ir-dgmo").get(f"/api/v1/messages/{message_id}").status_code == 200)
        assert ir.client("ir-dgmo").post(f"/api/v1/messages/{message_id}/ack").status_code == 201
        wait_for(lambda: pk.client("pk-dgmo").get(f"/api/v1/messages/{message_id}").json()["state"] == "acknowledged")
        assert pk.counts()["outbox"] == 0 or wait_for(lambda: pk.counts()["outbox"] == 0)
    finally:
        cluster.stop()
