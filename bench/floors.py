"""Floors, measured in the same run: what the hops of a Détente figure cost with nothing of Détente in them.

- HTTPS POST round trip to the same stack (uvicorn + FastAPI + TLS, a trivial endpoint, own process),
  one at a time and with 16 concurrent clients;
- HTTP POST → WebSocket push on that one server;
- one SQLite insert + commit in WAL with synchronous=FULL, and batched inserts (256 per commit);
- Ed25519 sign and verify (400-byte message, keys already loaded) through libsodium's C API, the
  fastest Ed25519 here (OpenSSL's is measured beside it), SHA-256 of 64 bytes;
- for comparison, the same operations through Détente's own code (seal, parse + verify, receipts),
  measured interleaved with the crypto floors so that both see the same load;
- the machine's own tail: 1 ms of fixed CPU work timed again and again (`bench.jitter`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nacl.bindings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import jitter
from bench.client import RawClient, Response, StreamWatcher
from bench.common import free_port, per_op, proc_cpu, proc_memory, summary_ms
from detente.core import envelope as envelope_mod
from detente.core import receipts
from detente.core.keys import Signer
from detente.node.tls import make_certificate, trust_exactly

MESSAGE = b"m" * 400
BATCH = 200  # receipts per delivery batch in the receipt figures


async def _http_floors(url: str, cert: str, n: int) -> dict[str, Any]:
    context = trust_exactly(cert)
    out: dict[str, Any] = {}
    async with RawClient(url, context) as client, RawClient(url, context) as pusher:
        payload = {"channel": "dgmo", "to": "ir:dgmo", "body": {"text": "x" * 80}}
        for _ in range(20):
            await client.post("/echo", json=payload)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            response = await client.post("/echo", json=payload)
            samples.append(time.perf_counter() - t0)
            _ok(response)
        out["https_post"] = summary_ms(samples)
        ws_url = url.replace("https://", "wss://", 1) + "/ws"
        async with StreamWatcher(ws_url, context, "floor") as stream:
            samples = []
            for i in range(n + 20):
                t0 = time.perf_counter()
                posting = asyncio.create_task(pusher.post("/push", json={"id": str(i)}))
                arrived = await stream.wait("message", str(i))
                _ok(await posting)
                if i >= 20:
                    samples.append(arrived - t0)
        out["post_ws_push"] = summary_ms(samples)
    return out


def _concurrent(url: str, cert: str, pid: int, senders: int, seconds: float) -> dict[str, float]:
    """POSTs/s with `senders` concurrent clients, and the CPU each side spent per POST."""
    server_cpu, client_cpu = proc_cpu(pid), time.process_time()
    done, elapsed = asyncio.run(_concurrent_posts(url, trust_exactly(cert), senders, seconds))
    server_cpu, client_cpu = proc_cpu(pid) - server_cpu, time.process_time() - client_cpu
    return {
        "https_post_concurrent_per_s": round(done / elapsed, 1),
        "server_cpu_ms_per_post": round(server_cpu / max(done, 1) * 1000, 3),
        "client_cpu_ms_per_post": round(client_cpu / max(done, 1) * 1000, 3),
    }


async def _concurrent_posts(url: str, context: Any, senders: int, seconds: float) -> tuple[int, float]:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def sender() -> None:
        nonlocal done
        async with RawClient(url, context) as client:
            while time.perf_counter() < stop_at:
                _ok(await client.post("/echo", json={"text": "status report"}))
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return done, time.perf_counter() - start


def _ok(response: Response) -> None:
    if response.status_code >= 300:
        raise RuntimeError(f"floor server answered {response.status_code}: {response.text[:200]}")


def _sqlite_floors(tmp: Path, n: int) -> dict[str, Any]:
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (data) VALUES (?)", (MESSAGE,))
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - t0)
        batches, batch = 40, 256
        t0 = time.perf_counter()
        for _ in range(batches):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t (data) VALUES (?)", [(MESSAGE,)] * batch)
            conn.execute("COMMIT")
        rate = batches * batch / (time.perf_counter() - t0)
    finally:
        conn.close()
    return {"sqlite_commit": summary_ms(samples), "sqlite_batch_insert_per_s": round(rate, 1)}


def crypto(budget: float) -> tuple[dict[str, float], dict[str, float]]:
    """The crypto floors and the same work through Détente's code, measured interleaved (µs)."""
    sodium_public, sodium_secret = nacl.bindings.crypto_sign_keypair()
    signed = nacl.bindings.crypto_sign(MESSAGE, sodium_secret)
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    raw_sig = key.sign(MESSAGE)
    block = b"\x00" * 64
    signer = Signer.generate("pk.detente/log")
    fields = {
        "v": 1, "id": envelope_mod.uuid7(), "agreement": "ab" * 32, "channel": "dgmo", "from": "pk:dgmo",
        "to": "ir:dgmo", "seq": 42, "author": "0190f0a0-0000-7000-8000-000000000000", "precedence": "FLASH",
        "type": "hotline.text", "lang": "en", "refs": [], "case": None, "created": "2024-01-16T13:05:00.000Z",
        "body": {"text": "FLASH: explosions reported near Panjgur. Request immediate clarification."},
    }  # fmt: skip
    env = envelope_mod.seal(fields, signer)
    verifier = signer.verifier
    received = "2024-01-16T13:05:00.100Z"
    receipt = receipts.make_receipt(signer, "ir", env, 12345, received)
    # A delivery batch of 200 envelopes: one signature for all their receipts, and one verification.
    bodies = [receipts.receipt_body("ir", env, i, received) for i in range(BATCH)]
    batch = receipts.sign_receipts(signer, "ir", bodies)

    def verify_batch() -> None:
        check = receipts.ReceiptVerifier(verifier, "ir")
        for r in batch:
            check.verify(r, env)

    sig = signer.sign(MESSAGE)
    seconds = per_op(
        {
            "ed25519_sign_us": lambda: nacl.bindings.crypto_sign(MESSAGE, sodium_secret),
            "ed25519_verify_us": lambda: nacl.bindings.crypto_sign_open(signed, sodium_public),
            "openssl_sign_us": lambda: key.sign(MESSAGE),
            "openssl_verify_us": lambda: public.verify(raw_sig, MESSAGE),
            "sha256_64_us": lambda: hashlib.sha256(block).digest(),
            "jcs_canonical_us": lambda: envelope_mod.canonical(fields),
            "envelope_seal_us": lambda: envelope_mod.seal(fields, signer),
            "envelope_parse_verify_us": lambda: envelope_mod.parse(env.raw).verify(verifier),
            "keys_verifier_verify_us": lambda: verifier.verify(sig, MESSAGE),
            "receipt_make_us": lambda: receipts.make_receipt(signer, "ir", env, 1, received),
            "receipt_verify_us": lambda: receipts.verify_receipt(receipt, verifier, "ir", env),
            "receipts_200_make_us": lambda: receipts.sign_receipts(signer, "ir", bodies),
            "receipts_200_verify_us": verify_batch,
        },
        budget=budget,
    )
    # The batch figures are per receipt.
    per = {name: value / (BATCH if name.startswith("receipts_200") else 1) for name, value in seconds.items()}
    us = {name: round(value * 1e6, 3 if name == "sha256_64_us" else 1) for name, value in per.items()}
    floor_names = ("ed25519_sign_us", "ed25519_verify_us", "sha256_64_us")
    return {k: us[k] for k in floor_names}, {k: v for k, v in us.items() if k not in floor_names}


def measure(n: int, concurrent: int, seconds: float, budget: float, step: Callable[[str], None]) -> dict[str, Any]:
    """Measure every floor; `step` is told what is being measured."""
    out: dict[str, Any] = {"cores": os.cpu_count() or 1}
    with tempfile.TemporaryDirectory(prefix="detente-floor-") as tmpdir:
        tmp = Path(tmpdir)
        cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
        make_certificate("floor", "127.0.0.1", cert_path, key_path)
        port = free_port()
        step("HTTPS and WebSocket floors")
        log = (tmp / "server.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.floor_server",
                "--port",
                str(port),
                "--cert",
                str(cert_path),
                "--key",
                str(key_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            url = f"https://127.0.0.1:{port}"
            _wait_up(url, cert_path.read_text(), proc)
            out["stack_idle_rss_mb"] = proc_memory(proc.pid).get("VmRSS")
            out.update(asyncio.run(_http_floors(url, cert_path.read_text(), n)))
            out.update(_concurrent(url, cert_path.read_text(), proc.pid, concurrent, seconds))
            out["stack_peak_rss_mb"] = proc_memory(proc.pid).get("VmHWM")
        finally:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            log.close()
        out["ws_push_only_ms"] = round(max(0.0, out["post_ws_push"]["p50"] - out["https_post"]["p50"]), 3)
        step("SQLite floors")
        out.update(_sqlite_floors(tmp, max(50, n // 2)))
    step("crypto floors")
    crypto_floors, primitives = crypto(budget)
    out.update(crypto_floors)
    out["detente_primitives"] = primitives
    step("the machine's tail")
    out["jitter_1ms"] = jitter.measure(1.0, n)
    return out


def _wait_up(url: str, cert: str, proc: subprocess.Popen[bytes]) -> None:
    context = trust_exactly(cert)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the floor server exited")
        try:
            if httpx.get(url + "/health", verify=context, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the floor server did not start")
