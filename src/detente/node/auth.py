"""Operators' credentials: argon2 password hashes and hashed API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from detente.core.agreement import Agreement
from detente.errors import BadRequest
from detente.store.messages import EnvelopeRow
from detente.store.operators import Operator

ROLES = ("operator", "supervisor", "translator", "auditor", "admin")
# Roles that may send and acknowledge for their offices.
SENDING_ROLES = ("operator", "supervisor")
# Roles that may translate messages of their offices and review (certify or dispute) translations.
# Not a sending role: a translator sends no message of its own and answers none.
TRANSLATING_ROLES = ("translator", "supervisor")
# Roles that see every office of their party, not only their own.
WIDE_ROLES = ("supervisor", "auditor", "admin")
# A console password's length in characters: `user add` and `user passwd` set no password the
# console's login form refuses (it takes at most PASSWORD_MAX), which would lock the operator out.
PASSWORD_MIN = 8
PASSWORD_MAX = 1024

_hasher = PasswordHasher()


def visible_offices(operator: Operator) -> list[str] | None:
    """Return the offices whose traffic the operator may read (None: every office of the party)."""
    if any(operator.has(r) for r in WIDE_ROLES):
        return None
    return list(operator.offices)


def may_read(operator: Operator, from_office: str, to_office: str) -> bool:
    """Return whether the operator may read a message between these two offices."""
    offices = visible_offices(operator)
    return offices is None or from_office in offices or to_office in offices


def may_read_row(operator: Operator, row: EnvelopeRow, agreement: Agreement) -> bool:
    """Return whether the operator may read this envelope row: between its offices, or one it may answer.

    A received message that went overdue falls to the alternates of its addressee (escalation),
    who may answer it, and so must be able to read, list and prove it as its addressee does.
    """
    if may_read(operator, row["from_office"], row["to_office"]):
        return True
    return (
        row["direction"] == "in"
        and row["overdue_at"] is not None
        and bool(set(agreement.alternates(row["to_office"])) & set(operator.offices))
    )


def escalated_to(operator: Operator, agreement: Agreement) -> list[str]:
    """Return the offices whose overdue received messages fall to the operator as their alternate."""
    mine = set(operator.offices)
    return [office for office in sorted(agreement.offices) if mine & set(agreement.alternates(office))]


def new_token() -> str:
    """Return a new random API token (shown once, stored only as its hash)."""
    return "dtn_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the stored form of an API token (tokens are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    """Refuse a console password the login form cannot take or that is no secret.

    Raises `BadRequest` for one under `PASSWORD_MIN` or over `PASSWORD_MAX` characters, or made
    only of spaces (or other blank characters).
    """
    if len(password) < PASSWORD_MIN:
        raise BadRequest(f"passwords are at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise BadRequest(f"passwords are at most {PASSWORD_MAX} characters (the console login takes no longer ones)")
    if not password.strip():
        raise BadRequest("a password may not be only spaces or other blank characters")


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Return whether `password` matches the stored argon2 hash."""
    if not stored:
        # Spend the same time as a real check, so the answer does not reveal which names exist.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
