"""Before a drill acts: can it reach every node, and will each node take the operators it acts as?

`preflight` (`node.drill_types`) checks a plan against what `demo.json` *says*: offices, operators,
channels. `check_access` asks the nodes themselves, with the same tokens the drill will use, and
changes nothing: it only reads `GET /api/v1/me`, once per operator. For each node it checks that

- the node answers at its URL, over TLS with the certificate `demo.json` names;
- it is the party `demo.json` says, under the agreement `demo.json` names (the drill checked the
  scenario against that agreement, in drill time);
- the operator the drill watches with is accepted and sees every office (supervisor, auditor, admin);
- every operator the plans act as is accepted, is bound to each office it acts for, and may send.

Every problem is listed, and the drill refuses to start. Without this check a stale token made
every step of its office fail with 401 while the drill ran on to ENDEX, and the summary blamed the
other side for messages that were never sent.

`is_harness_failure` tells, once a drill runs, a step that failed because the drill could not act
(a token refused, a role missing, a node out of reach) from a node refusing a step by its rules,
which is part of what a drill observes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from detente.core.scenario_plan import Plan
from detente.errors import Error, Forbidden, Unauthorized, Unavailable
from detente.node.auth import SENDING_ROLES, WIDE_ROLES
from detente.node.drill_client import Clients, NodeRefused, Target

ACCESS_TIMEOUT = 10.0  # real seconds for one node to answer `GET /me`


def is_harness_failure(exc: Error) -> bool:
    """Return whether a step's error means the drill could not act (401, 403, unreachable)."""
    if isinstance(exc, NodeRefused):
        return exc.status_code in (Unauthorized.status_code, Forbidden.status_code)
    return isinstance(exc, Unavailable)


def needed(plans: Sequence[Plan]) -> dict[str, dict[str, set[str]]]:
    """Return party -> operator -> the offices it acts for, over every step of `plans`."""
    out: dict[str, dict[str, set[str]]] = {}
    for plan in plans:
        for step in plan.steps:
            if step.office is not None and step.kind not in ("situation", "silence", "outage"):
                operator = plan.scenario.operator_for(step.office)
                out.setdefault(step.office.split(":")[0], {}).setdefault(operator, set()).add(step.office)
    return out


async def check_access(plans: Sequence[Plan], target: Target) -> None:
    """Check that every node answers and takes every operator the plans act as; send nothing.

    Raises `Unavailable` if a node cannot be reached, else `Unauthorized` if a token is refused,
    else `Forbidden` for a node or an operator that is not what the drill needs; each lists every
    problem found, naming the party, the node's URL and the operator.
    """
    problems: list[tuple[type[Error], str]] = []
    acting = needed(plans)
    async with Clients(target) as clients:
        for party, node in target.parties.items():
            where = f"{party}'s node ({node.url})"
            try:
                watcher = await _me(clients, party, node.watcher, where, problems)
            except Unavailable as exc:
                cause = exc.__cause__ or exc.detail
                problems.append((Unavailable, f"cannot reach {where}: {cause}"))
                continue  # its operators cannot be checked either
            if watcher is not None:
                problems.extend((Forbidden, text) for text in _node_problems(watcher, party, node.watcher, target))
            for operator, offices in sorted(acting.get(party, {}).items()):
                me = watcher if operator == node.watcher else await _me(clients, party, operator, where, problems)
                if me is None:
                    continue
                missing = sorted(offices - set(me.get("offices", [])))
                if missing:
                    problems.append((Forbidden, f"{where}: operator {operator!r} is not bound to {', '.join(missing)}"))
                if not set(me.get("roles", [])) & set(SENDING_ROLES):
                    roles = ", ".join(SENDING_ROLES)
                    problems.append((Forbidden, f"{where}: operator {operator!r} may not send (needs one of {roles})"))
    if problems:
        kinds = {kind for kind, _ in problems}
        kind = next(k for k in (Unavailable, Unauthorized, Forbidden) if k in kinds)
        lines = "\n".join(f"  {text}" for _, text in problems)
        raise kind(f"the drill cannot start; nothing was sent:\n{lines}")


def _node_problems(me: dict[str, Any], party: str, watcher: str, target: Target) -> list[str]:
    """Return what is wrong with a node, as its watcher's `GET /me` describes it."""
    where = f"{party}'s node ({target.parties[party].url})"
    out: list[str] = []
    if me.get("party") != party:
        out.append(f"{where} is party {me.get('party')!r}, not {party!r}")
    if me.get("agreement") != target.agreement.hash:
        out.append(
            f"{where} runs under agreement {str(me.get('agreement'))[:12]}…, not the one the drill checked "
            f"the scenario against ({target.agreement_path}, {target.agreement.hash[:12]}…)"
        )
    roles = [str(r) for r in me.get("roles", [])]
    if not set(roles) & set(WIDE_ROLES):
        out.append(
            f"{where}: {watcher!r}, the operator the drill watches with, does not see every office "
            f"(roles: {', '.join(roles) or 'none'}; needs one of {', '.join(WIDE_ROLES)})"
        )
    return out


async def _me(
    clients: Clients, party: str, operator: str, where: str, problems: list[tuple[type[Error], str]]
) -> dict[str, Any] | None:
    """Return `GET /me` as `operator`, or None after adding why the node refused to `problems`.

    Raises `Unavailable` if the node cannot be reached.
    """
    try:
        body = await clients.call(party, operator, "GET", "/me", timeout=ACCESS_TIMEOUT)
    except NodeRefused as exc:
        kind: type[Error] = Unauthorized if exc.status_code == Unauthorized.status_code else Forbidden
        problems.append((kind, f"{where} refuses the API token of operator {operator!r}: {exc.detail}"))
        return None
    except Unavailable:
        raise
    except Error as exc:  # demo.json gives no token for the operator
        problems.append((Forbidden, f"{where}: {exc.detail}"))
        return None
    return body if isinstance(body, dict) else {}


def check_access_now(plans: Sequence[Plan], target: Target) -> None:
    """Run `check_access` to completion (for callers outside an event loop); raises as it does."""
    asyncio.run(check_access(plans, target))
