"""The fast canonical path gives exactly the bytes of the rfc8785 package, or defers to it."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.core.envelope import canonical
from detente.core.keys import Signer

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30,
)


def reference(obj: Any) -> bytes | None:
    try:
        return rfc8785.dumps(obj)
    except Exception:
        return None


@settings(max_examples=600, deadline=None)
@given(values)
def test_fast_path_agrees_with_rfc8785(obj: Any) -> None:
    expected = reference(obj)
    if expected is None:
        try:
            canonical(obj)
        except Exception:
            return
        raise AssertionError(f"canonical accepted what rfc8785 refuses: {obj!r}")
    assert canonical(obj) == expected


def test_known_differences_go_the_slow_way() -> None:
    for obj in ({"x": 1.0}, {"x": 1e21}, {"\U0001f600": 1, "\ue000": 2}, {"x": "\u2028\x7f\x1f"}):
        assert canonical(obj) == rfc8785.dumps(obj)


def test_integers_beyond_two_to_the_53_are_refused_like_rfc8785() -> None:

    from detente.errors import Invalid

    with pytest.raises(Invalid):
        canonical({"x": 2**60})


ENVELOPE = {
    "v": 1, "id": "01a20000-0000-7000-8000-000000000001", "agreement": "a" * 64, "channel": "dgmo",
    "from": "pk:dgmo", "to": "ir:dgmo", "seq": 1, "author": "op", "precedence": "FLASH",
    "type": "hotline.text", "lang": "en", "refs": [], "case": None, "created": "2024-01-16T13:05:00.000Z",
}  # fmt: skip
# Bodies that try to look like the envelope's own `sig` member from inside.
tricky = st.dictionaries(
    st.sampled_from(["sig", "to", "seq", "type", "v", "text", ',"sig":"', "\u00e9"]), values, max_size=5
)


@settings(max_examples=400, deadline=None)
@given(body=st.one_of(tricky, st.dictionaries(st.text(max_size=8), values, max_size=5)), sig=st.text(max_size=90))
def test_signed_bytes_are_the_jcs_of_every_member_but_sig(body: dict[str, Any], sig: str) -> None:
    from detente.core.envelope import Envelope, parse

    data = {**ENVELOPE, "body": body, "sig": sig}
    try:
        envelope = parse(rfc8785.dumps(data))
    except Exception:
        return  # not canonicalisable (or not again, once decoded): refused before any signature check
    unsigned = rfc8785.dumps({k: v for k, v in data.items() if k != "sig"})
    assert envelope.signed_bytes() == unsigned
    assert Envelope(envelope.data, envelope.raw).signed_bytes() == unsigned


SIGNER = Signer.generate("pk")


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(tricky, st.dictionaries(st.text(max_size=8), values, max_size=5)))
def test_sealed_bytes_are_the_jcs_of_the_whole_envelope(body: dict[str, Any]) -> None:
    from detente.core.envelope import seal
    from detente.errors import Invalid

    fields = {**ENVELOPE, "body": body}
    try:
        expected_unsigned = rfc8785.dumps(fields)
    except Exception:
        with pytest.raises(Invalid):
            seal(fields, SIGNER)
        return
    envelope = seal(fields, SIGNER)
    assert envelope.raw == rfc8785.dumps(envelope.data)
    assert envelope.signed_bytes() == expected_unsigned
    envelope.verify(SIGNER.verifier)
