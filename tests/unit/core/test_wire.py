"""Signed federation requests and receipts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from detente.core import agreement as agreement_mod
from detente.core import wire
from detente.core.keys import Signer
from detente.errors import ClockSkew, Forbidden, NotRatified, Unauthorized

SHIPPED = Path(__file__).resolve().parents[3] / "agreements" / "pk-ir.toml"
PK = Signer.from_seed("pk.detente/log", b"p" * 32)
IR = Signer.from_seed("ir.detente/log", b"i" * 32)


AF = Signer.from_seed("af.detente/log", b"a" * 32)
GROUP = SHIPPED.with_name("pk-ir-af.toml")


def agreement(path: Path = SHIPPED) -> agreement_mod.Agreement:
    text = path.read_text(encoding="utf-8")
    for party, signer in (("pk", PK), ("ir", IR), ("af", AF)):
        if f"[parties.{party}]" not in text:
            continue
        marker = f"[parties.{party}]"
        head, tail = text.split(marker, 1)
        tail = tail.replace('url = ""', f'url = "https://{party}.example"', 1)
        tail = tail.replace('vkey = ""', f'vkey = "{signer.verifier.vkey()}"', 1)
        tail = tail.replace('tls_fingerprint = ""', f'tls_fingerprint = "{"ab" * 32}"', 1)
        text = head + marker + tail
    return agreement_mod.load(text)


DOC = agreement()
HEADERS = wire.sign_request(PK, "pk", wire.ratify(DOC, PK), DOC, "POST", "/federation/v1/envelopes", b"{}", 1000, "ir")


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_a_signed_request_verifies() -> None:
    party = wire.verify_request(DOC, "ir", lower(HEADERS), "POST", "/federation/v1/envelopes", b"{}", 1100)
    assert party == "pk"


def test_in_a_group_a_request_is_for_its_recipient_and_its_query_only() -> None:
    """Red team: ir could replay, within the clock window, a request pk signed for it to af, which
    would answer it as pk's (an entry bundle of pk and af's exchanges, say)."""
    group = agreement(GROUP)
    path, query = "/federation/v1/log/proof/inclusion", [("size", "9"), ("index", "3")]
    signed = lower(wire.sign_request(PK, "pk", wire.ratify(group, PK), group, "GET", path, b"", 1000, "ir", query))
    assert wire.verify_request(group, "ir", signed, "GET", path, b"", 1000, reversed(query)) == "pk"  # any order
    for own, asked in (("af", query), ("ir", [("size", "9"), ("index", "4")]), ("ir", [])):
        with pytest.raises(Unauthorized, match="signature does not verify"):
            wire.verify_request(group, own, signed, "GET", path, b"", 1000, asked)
    # Version 1 (no recipient), as between two parties, is refused in a group.
    v1 = wire.request_message("GET", path, 1000, b"", group.hash)
    old = {**signed, "detente-signature": base64.b64encode(PK.sign(v1)).decode()}
    with pytest.raises(Unauthorized, match="signature does not verify"):
        wire.verify_request(group, "ir", old, "GET", path, b"", 1000, query)


def test_between_two_parties_a_request_is_signed_as_before() -> None:
    """A node of an earlier release verifies version 1 only; a pair has no third party to replay to."""
    message = wire.request_message("POST", "/federation/v1/envelopes", 1000, b"{}", DOC.hash)
    assert message.startswith(b"detente-request/v1\n")
    assert PK.verifier.verify(base64.b64decode(HEADERS["Detente-Signature"]), message)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"method": "PUT"}, Unauthorized),
        ({"path": "/federation/v1/other"}, Unauthorized),
        ({"body": b"{ }"}, Unauthorized),
        ({"now": 1000 + 301}, Unauthorized),
        ({"now": 1000 - 301}, Unauthorized),
        ({"own": "pk"}, Forbidden),
    ],
)
def test_any_change_is_refused(change: dict[str, object], error: type[Exception]) -> None:
    args = {"method": "POST", "path": "/federation/v1/envelopes", "body": b"{}", "now": 1000, "own": "ir"}
    args.update(change)
    with pytest.raises(error):
        wire.verify_request(
            DOC,
            str(args["own"]),
            lower(HEADERS),
            str(args["method"]),
            str(args["path"]),
            args["body"],  # type: ignore[arg-type]
            int(args["now"]),  # type: ignore[call-overload]
        )


def test_missing_headers_and_bad_ratification() -> None:
    with pytest.raises(Unauthorized):
        wire.verify_request(DOC, "ir", {}, "POST", "/", b"", 1000)
    forged = {**lower(HEADERS), "detente-ratification": base64.b64encode(IR.sign(DOC.ratification_message())).decode()}
    with pytest.raises(NotRatified):
        wire.verify_request(DOC, "ir", forged, "POST", "/federation/v1/envelopes", b"{}", 1000)
    with pytest.raises(Unauthorized):
        wire.verify_request(DOC, "ir", {**lower(HEADERS), "detente-time": "12a"}, "POST", "/", b"{}", 1000)


@pytest.mark.parametrize(("late", "said"), [(600, "10 min 0 s ahead of"), (-301, "5 min 1 s behind")])
def test_a_request_from_a_clock_too_far_off_says_how_far_and_what_to_do(late: int, said: str) -> None:
    # Stamped 1000 by pk; ir's clock reads 1000 - late. The signature is checked first: the offset is pk's word.
    with pytest.raises(ClockSkew) as refused:
        wire.verify_request(DOC, "ir", lower(HEADERS), "POST", "/federation/v1/envelopes", b"{}", 1000 - late)
    assert refused.value.offset == late and refused.value.status_code == 401
    assert refused.value.detail == (
        f"pk's clock is {said} ir's (requests are accepted within ±300 s): set both nodes' clocks by NTP"
    )
    forged = {**lower(HEADERS), "detente-signature": base64.b64encode(b"\0" * 64).decode()}
    with pytest.raises(Unauthorized, match="signature does not verify"):
        wire.verify_request(DOC, "ir", forged, "POST", "/federation/v1/envelopes", b"{}", 1000 - late)
