"""`POST /federation/v1/log/proof/inclusions`: many proofs in one answer, each equal to the single one."""

from __future__ import annotations

from support import Cluster, wait_for


def test_batch_proofs_equal_single_proofs_and_bad_requests_are_refused(pair: Cluster) -> None:
    pk = pair["pk"]
    auditor = pk.client("pk-supervisor")  # the supervisor account also holds the auditor role

    def size() -> int:
        response = auditor.get("/federation/v1/log/checkpoint")
        return int(response.text.split("\n")[1]) if response.status_code == 200 else 0

    tree = wait_for(lambda: size() >= 3, what="a checkpoint of 3 entries or more") and size()
    indexes = [0, tree - 1, tree // 2]
    batch = auditor.post("/federation/v1/log/proof/inclusions", json={"size": tree, "indexes": indexes})
    assert batch.status_code == 200, batch.text
    proofs = batch.json()["proofs"]
    assert [p["index"] for p in proofs] == indexes
    for item in proofs:
        single = auditor.get("/federation/v1/log/proof/inclusion", params={"index": item["index"], "size": tree})
        assert single.json()["proof"] == item["proof"]

    refused = [
        ({"size": tree, "indexes": []}, 400),
        ({"size": tree, "indexes": list(range(257))}, 400),
        ({"size": tree, "indexes": [tree]}, 404),
        ({"size": 0, "indexes": [0]}, 400),
        ({"indexes": [0]}, 400),
    ]
    for body, status in refused:
        response = auditor.post("/federation/v1/log/proof/inclusions", json=body)
        assert response.status_code == status, (body, response.text)
    assert pk.client().post("/federation/v1/log/proof/inclusions", json={"size": 1, "indexes": [0]}).status_code == 401
