"""Console passwords: argon2id at the product's cost, checked without telling which names exist.

The tests hash the passwords of their nodes at argon2's least cost (`quick_password_hashes` in
tests/conftest.py); these check the product's own hasher, which that fixture yields.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from detente.errors import BadRequest
from detente.node import auth


def test_the_product_hashes_with_argon2id_at_rfc_9106s_second_recommended_cost(
    quick_password_hashes: PasswordHasher,
) -> None:
    stored = quick_password_hashes.hash("correct horse battery")
    # RFC 9106 §4, the second recommended option: t=3 passes over 64 MiB, 4 lanes.
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored
    # A hash carries its cost: one made at the product's verifies through the node's check, at that cost.
    assert auth.check_password(stored, "correct horse battery")
    assert not auth.check_password(stored, "correct horse battery ")


def test_a_password_checks_only_against_its_own_hash_and_a_missing_or_damaged_one_is_no_match() -> None:
    stored = auth.hash_password("zahedan-liaison-7")
    assert stored.startswith("$argon2id$") and "zahedan" not in stored
    assert auth.check_password(stored, "zahedan-liaison-7")
    assert not auth.check_password(stored, "Zahedan-liaison-7")
    assert not auth.check_password(None, "zahedan-liaison-7")  # no such operator: no, after the same work
    assert not auth.check_password("", "zahedan-liaison-7")
    assert not auth.check_password("$argon2id$v=19$damaged", "zahedan-liaison-7")
    assert auth.hash_password("zahedan-liaison-7") != stored  # salted


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "at least 8"),
        ("x" * (auth.PASSWORD_MAX + 1), "at most 1024"),
        (" \t\u00a0" * 4, "only spaces"),
    ],
)
def test_a_password_the_login_form_would_refuse_is_refused_before_it_is_hashed(password: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        auth.check_new_password(password)
