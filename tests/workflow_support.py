"""Workflow messages between real nodes, as the operator API takes them: send, read, wait for a state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from detente.core.envelope import Envelope
from detente.core.precedence import format_time, now
from detente.store import messages as db
from support import Cluster, NodeProc, quiet, wait_for

PRENOTIFY = {
    "area": {"center": {"lat": 27.35, "lon": 62.33}, "radius_km": 15.0, "place": "Saravan border villages"},
    "forces": "Armed drones and stand-off munitions", "target_group": "BLF",
    "objective": "Hideouts of the group responsible for the attack on Sirkan",
}  # fmt: skip


def iso(hours: float = 0) -> str:
    return format_time(now() + timedelta(hours=hours))


def post(node: NodeProc, operator: str, path: str, payload: Any, expect: int = 201, **kwargs: Any) -> dict[str, Any]:
    with node.client(operator) as client:
        response = client.post(path, json=payload, **kwargs)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def get(node: NodeProc, operator: str, path: str, expect: int = 200, **params: Any) -> dict[str, Any]:
    with node.client(operator) as client:
        response = client.get(path, params=params)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def send(
    node: NodeProc, operator: str, kind: str, body: dict[str, Any], *, to: str | None = None, channel: str = "dgmo",
    refs: list[str] | None = None, precedence: str = "PRIORITY", case: str | None = None, expect: int = 201,
) -> dict[str, Any]:  # fmt: skip
    other = "ir" if node.party == "pk" else "pk"
    request = {"channel": channel, "to": to or f"{other}:dgmo", "precedence": precedence, "type": kind, "body": body,
               "refs": refs or [], "case": case}  # fmt: skip
    return post(node, operator, "/api/v1/messages", request, expect)


def status_of_message(node: NodeProc, message: str) -> int:
    with node.client(f"{node.party}-dgmo") as client:
        code: int = client.get(f"/api/v1/messages/{message}").status_code
    return code


def status_of(node: NodeProc, operator: str, kind: str, target: str) -> str | None:
    with node.client(operator) as client:
        response = client.get(f"/api/v1/{kind}s/{target}")
    return response.json()[kind]["status"] if response.status_code == 200 else None


def reaches(node: NodeProc, operator: str, kind: str, target: str, status: str) -> None:
    wait_for(lambda: status_of(node, operator, kind, target) == status, what=f"{node.party}: {kind} {status}")


def same_on_both(pair: Cluster, kind: str, target: str) -> dict[str, Any]:
    """Wait until both nodes hold the same state, then compare it field by field; return it."""
    quiet(pair)
    states: dict[str, dict[str, Any]] = {
        p: get(pair[p], f"{p}-supervisor", f"/api/v1/{kind}s/{target}")[kind] for p in ("pk", "ir")
    }
    assert sorted(states["pk"]) == sorted(states["ir"])
    for name in states["pk"]:
        assert states["pk"][name] == states["ir"][name], name
    return states["pk"]


def store_received(conn: Connection, envelope: Envelope) -> None:
    """Store `envelope` as this node stores one received (its log entry and row), without its workflow."""
    index = db.append_log(conn, envelope.raw, envelope.id)
    db.insert_envelope(
        conn, id=envelope.id, direction="in", peer=envelope.sender_party, channel=envelope.channel,
        from_office=envelope.sender, to_office=envelope.recipient, seq=envelope.seq, type=envelope.type,
        precedence="PRIORITY", author="duty", case_id=envelope.case, ref=envelope.refs[0] if envelope.refs else None,
        created=envelope.created, raw=envelope.raw, log_index=index, needs_ack=False, state="delivered",
        recorded_at=envelope.created,
    )  # fmt: skip
