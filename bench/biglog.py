"""A node with a 10^6-entry log: fill a stopped node's database, restart it, measure it.

The fill writes what the node itself would have written for that many link tests to its peer
(`link.test` envelopes, unsequenced, each signed with the node's own key and canonicalised): the
`log` rows, the `envelopes` rows, and the Merkle `tree_hashes` continuing the existing tree, in
batches of `CHUNK` per transaction. It bypasses the writer only for speed (a million writer jobs
would take far longer than the bench may); the first envelope of every chunk is checked against
`core.envelope` (canonical bytes and signature) so the fast path cannot drift from the real one.

`export_and_audit` then times `detente log export` and `detente audit` on the node's data as a
user runs them; when the installed `detente` lacks them, the bench says "not available".
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from detente.core import envelope as envelope_mod
from detente.core import merkle, merkle_memory
from detente.core.agreement import LINK_CHANNEL
from detente.core.keys import Signer
from detente.core.precedence import format_time, now
from detente.node.config import load_config
from detente.store import messages, tables
from detente.store.db import make_engine

CHUNK = 20_000


def _jcs(value: dict[str, Any]) -> bytes:
    # Equal to RFC 8785 for what is written here: ASCII strings, small integers, null, lists.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_chunk(args: tuple[bytes, str, str, str, str, int, int]) -> list[tuple[str, bytes, str]]:
    """Sign `count` link-test envelopes; return (id, canonical bytes, created) for each (pool worker)."""
    pem, key_name, agreement_hash, sender, recipient, start, count = args
    signer = Signer.from_pem(key_name, pem)
    created = format_time(now())
    out = []
    for i in range(start, start + count):
        fields = {
            "v": 1,
            "id": envelope_mod.uuid7(),
            "agreement": agreement_hash,
            "channel": LINK_CHANNEL,
            "from": sender,
            "to": recipient,
            "seq": 0,
            "author": "system",
            "precedence": "ROUTINE",
            "type": "link.test",
            "lang": "en",
            "refs": [],
            "case": None,
            "created": created,
            "body": {"nonce": f"bench{i:011d}"},
        }
        fields["sig"] = base64.b64encode(signer.sign(_jcs(fields))).decode()
        out.append((str(fields["id"]), _jcs(fields), created))
    first = envelope_mod.parse(out[0][1])
    if first.raw != out[0][1]:
        raise AssertionError("the bench's canonical JSON differs from core.envelope's")
    first.verify(signer.verifier)
    return out


def _envelope_row(
    envelope_id: str, raw: bytes, created: str, index: int, peer: str, sender: str, to: str
) -> dict[str, Any]:
    return {
        "id": envelope_id,
        "direction": "out",
        "peer": peer,
        "channel": LINK_CHANNEL,
        "from_office": sender,
        "to_office": to,
        "seq": 0,
        "type": "link.test",
        "precedence": "ROUTINE",
        "author": "system",
        "case_id": None,
        "ref": None,
        "created": created,
        "raw": raw,
        "log_index": index,
        "needs_ack": False,
        "deadline": None,
        "state": "delivered",
        "receipt": None,
        "delivered_at": created,
        "recorded_at": created,
    }


def _check_columns(row: dict[str, Any]) -> None:
    for column in tables.envelopes.columns:
        if not column.nullable and column.server_default is None and column.name not in row:
            raise RuntimeError(f"the bench's fill does not know the new column envelopes.{column.name}")


def fill(data: Path, total: int, step: Callable[[int], None]) -> dict[str, Any]:
    """Grow the log of the (stopped) node in `data` to `total` entries; return what was done."""
    config = load_config(data)
    signer = config.signer()
    agreement = config.agreement()
    peer = next(p for p in agreement.parties if p != config.party)
    sender, recipient = agreement.party(config.party).node_office, agreement.party(peer).node_office
    if not config.db.startswith("sqlite"):
        raise RuntimeError("the 10^6-entry fill is written for SQLite nodes")
    engine = make_engine(config.db)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            existing = messages.log_size(conn)
            store = merkle_memory.MemoryHashStore(messages.read_leaves(conn, 0, existing))
            _check_tree(conn, store)
        need = max(0, total - existing)
        jobs = [
            (signer.to_pem(), signer.name, agreement.hash, sender, recipient, start, min(CHUNK, need - start))
            for start in range(0, need, CHUNK)
        ]
        index = existing
        with multiprocessing.get_context("spawn").Pool(max(1, os.cpu_count() or 1)) as pool:
            for chunk in pool.imap(make_chunk, jobs):  # imap keeps the jobs' order: log indexes follow it
                first_hash = merkle.stored_hash_count(index)
                log_rows, env_rows = [], []
                for envelope_id, raw, created in chunk:
                    store.append(raw)
                    log_rows.append((index, raw, envelope_id))
                    env_rows.append(_envelope_row(envelope_id, raw, created, index, peer, sender, recipient))
                    index += 1
                hashes = store.read_hashes(range(first_hash, merkle.stored_hash_count(index)))
                _insert(engine, log_rows, env_rows, [(first_hash + k, h) for k, h in enumerate(hashes)])
                step(len(chunk))
    finally:
        engine.dispose()
    return {
        "entries_before": existing,
        "entries_after": index,
        "added": index - existing,
        "fill_s": round(time.perf_counter() - started, 1),
        "root": store.root().hex(),
        "db_mb": _db_size(config.db),
    }


def _insert(engine: Engine, log_rows: list[Any], env_rows: list[dict[str, Any]], hash_rows: list[Any]) -> None:
    """Insert one chunk in one transaction through the DB-API connection (SQLAlchemy's executemany
    costs more than the inserts themselves at this volume)."""
    _check_columns(env_rows[0])
    names = list(env_rows[0])
    env_sql = f"INSERT INTO envelopes ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany("INSERT INTO log (idx, leaf, envelope_id) VALUES (?, ?, ?)", log_rows)
        cur.executemany(env_sql, [tuple(row[n] for n in names) for row in env_rows])
        if hasattr(tables, "tree_hashes"):
            cur.executemany("INSERT INTO tree_hashes (idx, hash) VALUES (?, ?)", hash_rows)
        cur.execute("COMMIT")
        cur.close()
    finally:
        raw.close()


def _check_tree(conn: Connection, store: merkle_memory.MemoryHashStore) -> None:
    """The stored tree must be the tree of the stored leaves before the bench extends it."""
    if not hasattr(tables, "tree_hashes") or store.size == 0:
        return
    count = merkle.stored_hash_count(store.size)
    rows = conn.execute(select(tables.tree_hashes.c.hash).order_by(tables.tree_hashes.c.idx)).all()
    if [bytes(r[0]) for r in rows] != store.read_hashes(range(count)):
        raise RuntimeError("the node's tree_hashes do not match its log; refusing to extend them")


def _db_size(url: str) -> float | None:
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///") :])
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    return round(total / 1e6, 1)


# --- `detente log export` and `detente audit`, timed as a user runs them (separate processes) ---


def _detente(*args: str) -> list[str]:
    return [sys.executable, "-m", "detente", *args]


def audit_available() -> bool:
    """Return whether this tree's CLI has both `log export` and `audit`."""
    for args in (("log", "export", "--help"), ("audit", "--help")):
        done = subprocess.run(_detente(*args), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return False
    return True


def _run(cmd: list[str], timeout: float) -> tuple[int | None, str, float]:
    """Run `cmd`; return (exit code or None on timeout, output tail, seconds).

    The command runs in its own process group (the audit starts worker processes); on timeout that
    group, which holds only what this call started, is killed.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        return None, (out or "")[-600:], time.perf_counter() - start
    return proc.returncode, (out or "")[-600:], time.perf_counter() - start


def export_and_audit(data: Path, agreement: Path, out: Path, timeout: float) -> dict[str, Any]:
    """Export the node's log to `out`, then audit it; return the times and the audit's verdict."""
    result: dict[str, Any] = {"export_s": None, "audit_s": None, "timeout_s": timeout}
    code, tail, seconds = _run(_detente("log", "export", "--data", str(data), "--out", str(out)), timeout)
    if code != 0:
        result["note"] = "export timed out" if code is None else f"export failed: {tail.strip()[-200:]}"
        return result
    result["export_s"] = round(seconds, 2)
    # The export ends at the newest checkpoint the peer cosigned (the audit fails entries no peer
    # witnessed): entries signed in the moment before it are left out, and said so.
    left_out = [line.strip() for line in tail.splitlines() if line.strip().startswith(("left out:", "warning:"))]
    if left_out:
        result["export_note"] = " ".join(left_out)
    jobs = str(os.cpu_count() or 1)
    code, tail, seconds = _run(_detente("audit", str(out), "--agreement", str(agreement), "--jobs", jobs), timeout)
    if code is None:
        result["note"] = f"audit did not finish within {timeout:g} s"
        return result
    result["audit_s"] = round(seconds, 2)
    result["audit_ok"] = code == 0
    result["audit_tail"] = tail.strip().splitlines()[-8:]
    for line in result["audit_tail"]:
        if line.startswith("tree") and "size" in line:
            result["entries"] = int(line.split("size", 1)[1].split()[0])
        own = re.search(r"\(([0-9.]+) s\)$", line)
        if own:  # the audit's own time, without the interpreter's start-up
            result["audit_own_s"] = float(own.group(1))
    result["note"] = ("verdict OK" if code == 0 else "verdict FAILED") + f", --jobs {jobs}"
    if left_out:
        result["note"] += "; export " + result["export_note"]
    return result
