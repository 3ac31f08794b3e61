"""The fast canonical path gives exactly the bytes of the rfc8785 package, or defers to it."""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.core.envelope import canonical

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
    import pytest

    from detente.errors import Invalid

    with pytest.raises(Invalid):
        canonical({"x": 2**60})
