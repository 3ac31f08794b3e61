"""Queries on operators and the agreement's ratifications."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select, update

from detente.store import driver
from detente.store.tables import operators, ratifications


@dataclass(frozen=True)
class Operator:
    """A person with an account on this node."""

    id: str
    name: str
    roles: tuple[str, ...]
    offices: tuple[str, ...]
    lang: str
    password_hash: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles


def _operator(row: RowMapping | Mapping[str, Any]) -> Operator:
    return Operator(
        id=row["id"],
        name=row["name"],
        roles=tuple(json.loads(row["roles"])),
        offices=tuple(json.loads(row["offices"])),
        lang=row["lang"],
        password_hash=row["password_hash"],
    )


def add_operator(
    conn: Connection,
    *,
    operator_id: str,
    name: str,
    token_hash: str,
    password_hash: str | None,
    roles: list[str],
    offices: list[str],
    lang: str,
    created: str,
) -> None:
    """Insert an operator row."""
    conn.execute(
        insert(operators).values(
            id=operator_id,
            name=name,
            token_hash=token_hash,
            password_hash=password_hash,
            roles=json.dumps(sorted(roles)),
            offices=json.dumps(sorted(offices)),
            lang=lang,
            created=created,
        )
    )


# Built once: every API request looks its token up.
_BY_TOKEN = select(operators).where(operators.c.token_hash == bindparam("token_hash"), operators.c.disabled.is_(False))


def by_token_hash(conn: Connection, token_hash: str) -> Operator | None:
    """Return the enabled operator whose API token hashes to `token_hash`."""
    found = driver.mappings(conn, _BY_TOKEN, {"token_hash": token_hash})  # on every API request
    return _operator(found[0]) if found else None


def by_name(conn: Connection, name: str) -> Operator | None:
    """Return the enabled operator called `name`."""
    row = (
        conn.execute(select(operators).where(operators.c.name == name, operators.c.disabled.is_(False)))
        .mappings()
        .first()
    )
    return None if row is None else _operator(row)


def name_taken(conn: Connection, name: str) -> str | None:
    """Return the name of an operator, enabled or disabled, equal to `name` ignoring case (`name` first), or None."""
    wanted = name.casefold()
    # Few rows (a node's operators): compared in Python, where case folding knows every script.
    found = (n for n in conn.execute(select(operators.c.name)).scalars() if n.casefold() == wanted)
    return min(found, key=lambda n: n != name, default=None)


def by_id(conn: Connection, operator_id: str) -> Operator | None:
    """Return the operator with this id."""
    row = conn.execute(select(operators).where(operators.c.id == operator_id)).mappings().first()
    return None if row is None else _operator(row)


def all_operators(conn: Connection) -> list[Operator]:
    """Return every operator, by name."""
    return [_operator(r) for r in conn.execute(select(operators).order_by(operators.c.name)).mappings()]


def disabled_names(conn: Connection) -> set[str]:
    """Return the names of the operators who are disabled."""
    return set(conn.execute(select(operators.c.name).where(operators.c.disabled)).scalars())


def set_password_hash(conn: Connection, name: str, password_hash: str) -> bool:
    """Set an operator's password hash; return whether the operator exists."""
    return _update_by_name(conn, name, password_hash=password_hash)


def set_disabled(conn: Connection, name: str, disabled: bool) -> bool:
    """Disable (or enable again) an operator's token and console login; return whether the operator exists."""
    return _update_by_name(conn, name, disabled=disabled)


def set_token_hash(conn: Connection, name: str, token_hash: str) -> bool:
    """Replace an operator's API token hash; return whether the operator exists."""
    return _update_by_name(conn, name, token_hash=token_hash)


def _update_by_name(conn: Connection, name: str, **values: object) -> bool:
    return bool(conn.execute(update(operators).where(operators.c.name == name).values(**values)).rowcount)


def set_lang(conn: Connection, operator_id: str, lang: str) -> None:
    """Set an operator's preferred language."""
    conn.execute(update(operators).where(operators.c.id == operator_id).values(lang=lang))


def save_ratification(conn: Connection, party: str, agreement_hash: str, signature: str, at: str) -> None:
    """Store (or replace) a party's ratification signature of an agreement hash."""
    key = (ratifications.c.party == party) & (ratifications.c.agreement_hash == agreement_hash)
    if conn.execute(update(ratifications).where(key).values(signature=signature, recorded_at=at)).rowcount == 0:
        conn.execute(
            insert(ratifications).values(
                party=party, agreement_hash=agreement_hash, signature=signature, recorded_at=at
            )
        )


def ratifications_of(conn: Connection, agreement_hash: str) -> dict[str, str]:
    """Return party -> signature for every stored ratification of `agreement_hash`."""
    rows = conn.execute(
        select(ratifications.c.party, ratifications.c.signature).where(ratifications.c.agreement_hash == agreement_hash)
    )
    return {str(p): str(s) for p, s in rows}


def ratified_by(conn: Connection, party: str) -> dict[str, str]:
    """Return agreement hash -> the time it was recorded, for every agreement `party` ratified."""
    rows = conn.execute(
        select(ratifications.c.agreement_hash, ratifications.c.recorded_at).where(ratifications.c.party == party)
    )
    return {str(h): str(at) for h, at in rows}
