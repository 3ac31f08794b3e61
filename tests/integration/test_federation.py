"""The federation endpoint against forged, altered, replayed and out-of-order input.

Only the Iranian node runs; the test plays the Pakistani node with that node's own key, so it can
also misbehave in every way the receiver must catch.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from detente.core import envelope as envelope_mod
from detente.core import receipts, wire
from detente.core.agreement import Agreement
from detente.core.envelope import uuid7
from detente.core.keys import Signer
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from detente.node.incoming import JOB_ENVELOPES
from support import Cluster, NodeProc, service_free_counts

PATH = "/federation/v1/envelopes"


class Peer:
    """The test's stand-in for the pk node: its key, agreement and sequence numbers."""

    def __init__(self, cluster: Cluster) -> None:
        config = load_config(cluster["pk"].data)
        self.signer: Signer = config.signer()
        self.agreement: Agreement = config.agreement()
        self.ratification = wire.ratify(self.agreement, self.signer)
        self.ir: NodeProc = cluster["ir"]
        self.seq = 0
        self.fs_seq = 0  # the "fs" channel, used by one test

    def envelope(self, seq: int | None = None, signer: Signer | None = None, **fields: Any) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        data = {
            "v": 1, "id": uuid7(), "agreement": self.agreement.hash, "channel": "dgmo", "from": "pk:dgmo",
            "to": "ir:dgmo", "seq": seq, "author": "test", "precedence": "FLASH", "type": "hotline.text",
            "lang": "en", "refs": [], "case": None, "created": format_time(now()), "body": {"text": "test"},
        }  # fmt: skip
        data.update(fields)
        return envelope_mod.seal(data, signer or self.signer).data

    def post(
        self, envelopes: list[Any], *, body: bytes | None = None, when: int | None = None,
        party: str = "pk", signer: Signer | None = None, ratification: str | None = None, batch: bool = True,
    ) -> httpx.Response:  # fmt: skip
        raw = body if body is not None else json.dumps({"envelopes": envelopes}).encode()
        headers = wire.sign_request(
            signer or self.signer, party, ratification or self.ratification, self.agreement, "POST", PATH, raw,
            when or int(time.time()), "ir",
        )  # fmt: skip
        headers["Content-Type"] = "application/json"
        if batch:  # what a node of this release asks for; one of an earlier release does not
            headers.update(receipts.ASK_BATCH)
        with httpx.Client(base_url=self.ir.url, verify=self.ir.context, timeout=30) as client:
            return client.post(PATH, content=raw, headers=headers)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    cluster = Cluster(tmp_path_factory.mktemp("federation"))
    cluster["ir"].start()
    try:
        yield Peer(cluster)
    finally:
        cluster.stop()


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    out: list[dict[str, Any]] = response.json()["results"]
    return out


def test_valid_envelope_gets_a_verifiable_receipt_and_replay_gets_the_same(peer: Peer) -> None:
    env = peer.envelope()
    first = results(peer.post([env]))[0]
    verifier = peer.agreement.party("ir").verifier()
    parsed = envelope_mod.parse(env)
    assert receipts.verify_receipt(first["receipt"], verifier, "ir", parsed) >= 0
    before = service_free_counts(peer.ir)
    again = results(peer.post([env]))[0]
    assert again["receipt"] == first["receipt"]
    assert service_free_counts(peer.ir) == before


@pytest.mark.parametrize(
    ("tweak", "status", "error"),
    [
        ({"signer": Signer.generate("pk.detente/log")}, 401, "Unauthorized"),
        ({"when": -600}, 401, "ClockSkew"),
        ({"when": 600}, 401, "ClockSkew"),
        ({"party": "xx"}, 403, "Forbidden"),
        ({"party": "ir"}, 403, "Forbidden"),
        ({"ratification": base64.b64encode(b"\0" * 64).decode()}, 403, "NotRatified"),
    ],
    ids=["bad-signature", "stale", "future", "unknown-node", "own-party", "not-ratified"],
)
def test_request_authentication_failures(peer: Peer, tweak: dict[str, Any], status: int, error: str) -> None:
    before = service_free_counts(peer.ir)
    env = peer.envelope(seq=999)
    if "when" in tweak:  # an offset from now, taken when the test runs
        tweak = {**tweak, "when": int(time.time()) + tweak["when"]}
    response = peer.post([env], **tweak)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert service_free_counts(peer.ir) == before


def test_unsigned_request_is_refused(peer: Peer) -> None:
    with httpx.Client(base_url=peer.ir.url, verify=peer.ir.context) as client:
        response = client.post(PATH, json={"envelopes": []})
    assert response.status_code == 401


def test_altered_body_breaks_the_request_signature(peer: Peer) -> None:
    raw = json.dumps({"envelopes": [peer.envelope(seq=999)]}).encode()
    headers = wire.sign_request(
        peer.signer, "pk", peer.ratification, peer.agreement, "POST", PATH, raw, int(time.time()), "ir"
    )
    tampered = raw.replace(b'"test"}', b'"TEST"}')
    with httpx.Client(base_url=peer.ir.url, verify=peer.ir.context) as client:
        response = client.post(PATH, content=tampered, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 401 and "signature" in response.json()["detail"]


def _refused(peer: Peer, env: Any, error: str, detail: str) -> None:
    before = service_free_counts(peer.ir)
    result = results(peer.post([env]))[0]
    assert result.get("error") == error, result
    assert detail in result["detail"]
    assert service_free_counts(peer.ir) == before


def test_envelope_signed_by_the_wrong_key_is_refused(peer: Peer) -> None:
    env = peer.envelope(seq=999, signer=Signer.generate("pk.detente/log"))
    _refused(peer, env, "VerificationError", "signature does not verify")


def test_altered_envelope_is_refused(peer: Peer) -> None:
    env = peer.envelope(seq=999)
    env["body"] = {"text": "altered after signing"}
    _refused(peer, env, "VerificationError", "signature does not verify")


def test_envelope_under_another_agreement_is_refused(peer: Peer) -> None:
    _refused(peer, peer.envelope(seq=999, agreement="0" * 64), "Invalid", "another agreement")


def test_envelope_with_a_bad_body_is_refused(peer: Peer) -> None:
    _refused(peer, peer.envelope(seq=999, body={"text": ""}), "Invalid", "body.text")


def test_envelope_on_a_channel_it_does_not_belong_to_is_refused(peer: Peer) -> None:
    _refused(peer, peer.envelope(seq=999, channel="fs"), "Invalid", "is not channel 'fs'")


def test_envelope_from_another_party_than_the_request_is_refused(peer: Peer) -> None:
    _refused(peer, peer.envelope(seq=999, **{"from": "ir:fs", "to": "ir:dgmo"}), "Invalid", "is from ir:fs")


def test_structurally_broken_envelopes_are_refused(peer: Peer) -> None:
    env = peer.envelope(seq=999)
    del env["sig"]
    _refused(peer, env, "Invalid", "lacks member(s): sig")
    _refused(peer, "not an object", "Invalid", "not a JSON object")


def test_sequence_gap_names_the_expected_number(peer: Peer) -> None:
    expected = peer.seq + 1
    env = peer.envelope(seq=expected + 4)
    before = service_free_counts(peer.ir)
    result = results(peer.post([env]))[0]
    assert result["error"] == "SequenceGap"
    assert result["expected"] == expected and result["got"] == expected + 4 and result["channel"] == "dgmo"
    assert service_free_counts(peer.ir) == before


def test_same_id_with_other_content_and_reused_sequence_are_conflicts(peer: Peer) -> None:
    env = peer.envelope()
    assert "receipt" in results(peer.post([env]))[0]
    twin = peer.envelope(seq=env["seq"] + 1, id=env["id"])
    _refused(peer, twin, "Conflict", "already used by different content")
    reused = peer.envelope(seq=env["seq"])
    _refused(peer, reused, "Conflict", "already used")


def test_batch_is_processed_in_order_and_stops_a_channel_at_its_first_refusal(peer: Peer) -> None:
    good = peer.envelope()
    bad = peer.envelope(body={"text": ""})
    after = peer.envelope()  # would follow the refused one: must not be stored out of order
    out = results(peer.post([good, bad, after]))
    assert "receipt" in out[0]
    assert out[1]["error"] == "Invalid"
    assert out[2]["error"] in ("SequenceGap", "Conflict")
    peer.seq -= 2  # the refused and the blocked numbers are still free


def test_a_batch_with_repeats_and_several_channels_stores_each_once_in_order(peer: Peer) -> None:
    """The receiver reads stored rows and sequences once per batch: repeats and later batches still agree."""
    first, second = peer.envelope(), peer.envelope()
    peer.fs_seq += 1
    fs = peer.envelope(seq=peer.fs_seq, channel="fs", **{"from": "pk:fs", "to": "ir:fs"})
    out = results(peer.post([first, second, first, fs, second]))
    assert all("receipt" in r for r in out), out
    assert out[2]["receipt"] == out[0]["receipt"] and out[4]["receipt"] == out[1]["receipt"]
    indexes = [r["receipt"]["log_index"] for r in out]
    assert indexes[0] < indexes[1] < indexes[3]  # each stored once, logged in batch order
    # The sequences written back at the end of the batch: the next number is accepted, a reused one is not.
    assert "receipt" in results(peer.post([peer.envelope()]))[0]
    _refused(peer, peer.envelope(seq=second["seq"]), "Conflict", "already used")
    again = peer.envelope(seq=fs["seq"], channel="fs", **{"from": "pk:fs", "to": "ir:fs"})
    _refused(peer, again, "Conflict", "already used")


def test_a_batch_gets_receipts_under_one_signature_each_standing_alone(peer: Peer) -> None:
    """The receipts of the envelopes a batch stores share one signature; refused ones get none."""
    good = [peer.envelope() for _ in range(5)]
    bad = peer.envelope(body={"text": ""}, channel="fs", seq=peer.fs_seq + 1, **{"from": "pk:fs", "to": "ir:fs"})
    out = results(peer.post([*good[:2], bad, good[0], *good[2:]]))
    assert out[2]["error"] == "Invalid" and "receipt" not in out[2]
    signed = [r["receipt"] for r in out if "receipt" in r]
    assert signed[2] == signed[0]  # the repeat in the batch gets the first one's receipt
    fresh = [signed[i] for i in (0, 1, 3, 4, 5)]
    assert {r["sig"] for r in fresh} == {fresh[0]["sig"]}
    assert [r["batch"]["index"] for r in fresh] == [0, 1, 2, 3, 4]
    assert {r["batch"]["size"] for r in fresh} == {5}
    verifier = peer.agreement.party("ir").verifier()
    for env, receipt in zip(good, fresh, strict=True):
        # Each one verifies alone, with a fresh verifier, as an auditor holding one receipt would.
        assert receipts.verify_receipt(receipt, verifier, "ir", envelope_mod.parse(env)) >= 0
    # What the node stored is what it answered: a replay of the whole batch gets the same receipts.
    again = results(peer.post(good))
    assert [r["receipt"] for r in again] == fresh


def test_a_batch_longer_than_a_writer_job_is_stored_in_parts_in_order(peer: Peer) -> None:
    """Parts of JOB_ENVELOPES, each with its receipts under one signature; a refusal spans the parts."""
    n = JOB_ENVELOPES
    good = [peer.envelope() for _ in range(n + 10)]
    fs = {"channel": "fs", "from": "pk:fs", "to": "ir:fs"}
    # Refused when stored (a gap), in the first part: the channel stops for the rest of the batch,
    # so the envelope the receiver expects next, in the second part, is refused too.
    refused = peer.envelope(seq=peer.fs_seq + 2, **fs)
    behind = peer.envelope(seq=peer.fs_seq + 1, **fs)
    out = results(peer.post([*good[: n - 1], refused, *good[n - 1 :], behind]))
    assert out[n - 1]["error"] == "SequenceGap"
    assert out[-1]["error"] == "Conflict" and "earlier envelope of this channel" in out[-1]["detail"]
    signed = [r["receipt"] for r in out if "receipt" in r]
    assert len(signed) == len(good)
    first, second = signed[: n - 1], signed[n - 1 :]
    assert {r["sig"] for r in first} != {r["sig"] for r in second}
    assert len({r["sig"] for r in first}) == len({r["sig"] for r in second}) == 1
    assert {r["batch"]["size"] for r in first} == {n - 1} and {r["batch"]["size"] for r in second} == {11}
    assert [r["log_index"] for r in signed] == sorted(r["log_index"] for r in signed)  # stored in order
    verifier = peer.agreement.party("ir").verifier()
    for env, receipt in zip(good, signed, strict=True):
        assert receipts.verify_receipt(receipt, verifier, "ir", envelope_mod.parse(env)) >= 0


def test_a_sender_of_an_earlier_release_gets_one_signed_receipt_each(peer: Peer) -> None:
    """Without the batch header (a node not yet upgraded), receipts are version 1: a signature each."""
    good = [peer.envelope() for _ in range(3)]
    out = results(peer.post(good, batch=False))
    verifier = peer.agreement.party("ir").verifier()
    signed = [r["receipt"] for r in out]
    assert {r["kind"] for r in signed} == {"detente-receipt/v1"} and all("batch" not in r for r in signed)
    assert len({r["sig"] for r in signed}) == 3
    for env, receipt in zip(good, signed, strict=True):
        body = {k: v for k, v in receipt.items() if k != "sig"}
        assert verifier.verify(base64.b64decode(receipt["sig"]), envelope_mod.canonical(body))
        assert receipts.verify_receipt(receipt, verifier, "ir", envelope_mod.parse(env)) >= 0
    # Once the sender upgrades, a repeat still gets the receipt stored the first time.
    assert [r["receipt"] for r in results(peer.post(good))] == signed


def test_malformed_and_oversized_bodies(peer: Peer) -> None:
    assert peer.post([], body=b"{not json").status_code == 400
    assert peer.post([], body=b'{"other": []}').status_code == 400
    huge = b'{"envelopes": ["' + b"a" * (17 * 1024 * 1024) + b'"]}'
    assert peer.post([], body=huge).status_code == 413


def test_responses_carry_the_ratification(peer: Peer) -> None:
    response = peer.post([])
    wire.check_ratification(peer.agreement, "ir", response.headers["detente-ratification"])


def test_node_refuses_to_serve_without_ratification(tmp_path: Path) -> None:
    import subprocess
    import sys

    from detente.node.setup import init_node
    from support import AGREEMENT

    init_node(tmp_path / "pk", "pk", AGREEMENT, "127.0.0.1", 1, None)
    result = subprocess.run(
        [sys.executable, "-m", "detente", "serve", "--data", str(tmp_path / "pk")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "NotRatified" in result.stderr and "Traceback" not in result.stderr
