"""Envelopes: canonical bytes, sealing, verification and strict structure checks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from detente.core import envelope as envelope_mod
from detente.core.envelope import _UUID, MAX_ENVELOPE_BYTES, canonical, seal, uuid7
from detente.core.keys import Signer
from detente.errors import Invalid, MalformedError, TooLarge, VerificationError

SIGNER = Signer.from_seed("pk.detente/log", bytes(range(32)))


def fields(**extra: Any) -> dict[str, Any]:
    base = {
        "v": 1, "id": "01a20000-0000-7000-8000-000000000001", "agreement": "a" * 64, "channel": "dgmo",
        "from": "pk:dgmo", "to": "ir:dgmo", "seq": 1, "author": "op", "precedence": "FLASH",
        "type": "hotline.text", "lang": "en", "refs": [], "case": None, "created": "2024-01-16T13:05:00.000Z",
        "body": {"text": "سلام — خبر"},
    }  # fmt: skip
    base.update(extra)
    return base


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(200)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    assert all(str(uuid.UUID(i)) == i and _UUID.match(i) for i in ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_canonical_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": [1.0, "é"]}) == b'{"a":[1,"\xc3\xa9"],"b":1}'
    with pytest.raises(Invalid):
        canonical({"x": float("nan")})


def test_seal_then_verify_and_parse_round_trip() -> None:
    env = seal(fields(), SIGNER)
    env.verify(SIGNER.verifier)
    again = envelope_mod.parse(env.raw)
    assert again.raw == env.raw and again.id == env.id
    assert json.loads(env.raw)["sig"] == env.data["sig"]
    # The raw bytes are canonical: parsing a re-indented copy gives the same leaf bytes.
    assert envelope_mod.parse(json.dumps(env.data, indent=2).encode()).raw == env.raw


def test_stored_bytes_decode_to_the_same_envelope_as_parse() -> None:
    env = seal(fields(), SIGNER)
    again = envelope_mod.stored(env.raw)
    assert again == envelope_mod.parse(env.raw)
    assert again.digest == env.digest and again.signed_bytes() == env.signed_bytes()
    again.verify(SIGNER.verifier)


def test_signature_is_deterministic_and_covers_every_member() -> None:
    env = seal(fields(), SIGNER)
    assert seal(fields(), SIGNER).raw == env.raw
    for key, value in [("seq", 2), ("to", "ir:fs"), ("body", {"text": "x"}), ("refs", [uuid7()]), ("lang", "ur")]:
        altered = envelope_mod.parse({**env.data, key: value})
        with pytest.raises(VerificationError):
            altered.verify(SIGNER.verifier)


def test_wrong_key_and_bad_signature_encoding_fail() -> None:
    env = seal(fields(), SIGNER)
    with pytest.raises(VerificationError):
        env.verify(Signer.generate("pk.detente/log").verifier)
    with pytest.raises(VerificationError):
        envelope_mod.parse({**env.data, "sig": "!!!"}).verify(SIGNER.verifier)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "version"),
        ({"v": True}, "version"),
        ({"id": "not-a-uuid"}, "id"),
        ({"agreement": "xyz"}, "agreement"),
        ({"channel": "Bad Name"}, "channel"),
        ({"from": "pkdgmo"}, "'from'"),
        ({"to": 5}, "'to'"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"author": ""}, "author"),
        ({"precedence": "URGENT"}, "precedence"),
        ({"type": ""}, "type"),
        ({"lang": "english"}, "lang"),
        ({"refs": "x"}, "refs"),
        ({"refs": ["01a20000-0000-7000-8000-000000000001"] * 2}, "distinct"),
        ({"case": "x"}, "case"),
        ({"created": "2024-01-16 13:05"}, "RFC 3339"),
        ({"created": "2024-02-30T13:05:00Z"}, "not a real date"),
        ({"body": []}, "body"),
        ({"extra": 1}, "unknown member"),
    ],
)
def test_structure_errors_name_the_member(change: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        seal(fields(**change), SIGNER)


def test_missing_member_and_non_object() -> None:
    data = seal(fields(), SIGNER).data
    with pytest.raises(Invalid, match="lacks member"):
        envelope_mod.parse({k: v for k, v in data.items() if k != "created"})
    with pytest.raises(Invalid, match="not a JSON object"):
        envelope_mod.parse(b"[]")
    with pytest.raises(MalformedError):
        envelope_mod.parse(b"{not json")


def test_size_limit() -> None:
    with pytest.raises(TooLarge):
        seal(fields(body={"text": "x" * MAX_ENVELOPE_BYTES}), SIGNER)


def test_signed_bytes_are_cut_from_the_canonical_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The body holds a `sig` member followed by `to` too, and text that reads like one.
    body = {"a": 1, "sig": "x", "to": "y", "text": ',"sig":"'}
    env = envelope_mod.parse(seal(fields(body=body), SIGNER).raw)
    expected = canonical({k: v for k, v in env.data.items() if k != "sig"})

    def no_encoding(_: Any) -> bytes:
        raise AssertionError("signed_bytes encoded the envelope again")

    monkeypatch.setattr(envelope_mod, "canonical", no_encoding)
    assert env.signed_bytes() == expected
    env.verify(SIGNER.verifier)
