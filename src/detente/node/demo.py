"""Preparing the two-node demo: Pakistan and Iran on loopback under `agreements/pk-ir.toml`."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

from detente.core import agreement as agreement_mod
from detente.node.setup import add_user, init_node, ratify

DEMO_PARTIES = ("pk", "ir")
DEMO_LINK_TEST_SECONDS = 5


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill_agreement(text: str, values: dict[str, dict[str, str]], link_test_seconds: float | None) -> str:
    """Fill each party's url, vkey and tls_fingerprint into an agreement's TOML text, keeping comments."""
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
        party = section[len("parties.") :] if section.startswith("parties.") else None
        key = re.match(r"^\s*(url|vkey|tls_fingerprint)\s*=", line)
        if party in values and key:
            line = f'{key.group(1)} = "{values[party][key.group(1)]}"'
        if section == "agreement" and link_test_seconds and re.match(r"^\s*link_test_seconds\s*=", line):
            line = f"link_test_seconds = {link_test_seconds:g}"
        out.append(line)
    return "\n".join(out) + "\n"


def setup_demo(
    workdir: Path,
    agreement_file: Path,
    ports: dict[str, int] | None = None,
    *,
    db_urls: dict[str, str] | None = None,
    link_test_seconds: float = DEMO_LINK_TEST_SECONDS,
) -> dict[str, Any]:
    """Create both demo nodes, the completed and ratified agreement, and one operator per office.

    Writes and returns `workdir/demo.json`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ports = ports or {}
    chosen: dict[str, int] = {}
    for party in DEMO_PARTIES:
        port = ports.get(party) or free_port()
        while port in chosen.values():
            port = free_port()
        chosen[party] = port
    results = {
        party: init_node(workdir / party, party, agreement_file, "127.0.0.1", chosen[party], (db_urls or {}).get(party))
        for party in DEMO_PARTIES
    }
    values = {
        party: {"url": r.config.url, "vkey": r.vkey, "tls_fingerprint": r.fingerprint} for party, r in results.items()
    }
    completed = fill_agreement(agreement_file.read_text(encoding="utf-8"), values, link_test_seconds)
    agreement_path = workdir / "agreement.toml"
    agreement_path.write_text(completed, encoding="utf-8")
    doc = agreement_mod.load(completed)
    for party in DEMO_PARTIES:
        ratify(workdir / party, agreement_path)
    nodes: dict[str, Any] = {}
    for party in DEMO_PARTIES:
        data = workdir / party
        operators = []
        offices = sorted(o for o, office in doc.offices.items() if office.party == party)
        accounts = [(o.replace(":", "-"), [o], ["operator"]) for o in offices]
        accounts.append((f"{party}-supervisor", offices, ["supervisor", "auditor"]))
        accounts.append((f"{party}-admin", offices, ["admin", "auditor"]))
        for name, account_offices, roles in accounts:
            password = f"{name}-demo"
            op = add_user(data, name, account_offices, roles, password)
            operators.append(
                {
                    "name": name,
                    "offices": account_offices,
                    "roles": roles,
                    "token": op.token,
                    "password": password,
                }
            )
        nodes[party] = {
            "party": party,
            "data": str(data),
            "url": results[party].config.url,
            "api": results[party].config.url + "/api/v1",
            "console": results[party].config.url + "/",
            "cert": str(results[party].config.cert_path),
            "vkey": results[party].vkey,
            "tls_fingerprint": results[party].fingerprint,
            "operators": operators,
        }
    info = {"agreement": str(agreement_path), "agreement_hash": doc.hash, "nodes": nodes}
    (workdir / "demo.json").write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    return info
