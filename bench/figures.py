"""Turn each section's raw measurements into report rows: value, target, floor of its hops, ratio.

Floors are medians (p50) measured in the same run. The floor of a Détente figure is the sum of
the floors of the hops it cannot avoid (see `FORMULAS`); the ratio says how many times the floor
the figure is (for rates: how many times slower than the floor's rate).
"""

from __future__ import annotations

import math
from typing import Any

from bench.common import Results

FORMULAS = {
    "accept": "POST + commit + sign",
    "deliver": "POST + POST→WS push + 2 commits + 3 signs + 2 verifies",
    "receipt": "2 POSTs + WS push + 3 commits + 3 signs + 3 verifies",
}
FLASH_P99_MS = 10.0
DELIVERED_PER_S = 1500.0
APPENDS_PER_S = 20_000.0
PROOF_MS = 1.0
AUDIT_S = 10.0
RSS_MB = 250.0


def hop_floors(f: dict[str, Any], commit_ms: float | None = None) -> dict[str, float]:
    """Return the floor (ms) of each latency figure from the measured floors."""
    post, push, ws_only = f["https_post"]["p50"], f["post_ws_push"]["p50"], f["ws_push_only_ms"]
    commit = f["sqlite_commit"]["p50"] if commit_ms is None else commit_ms
    sign, verify = f["ed25519_sign_us"] / 1000, f["ed25519_verify_us"] / 1000
    return {
        "accept": post + commit + sign,
        "deliver": post + push + 2 * commit + 3 * sign + 2 * verify,
        "receipt": 2 * post + ws_only + 3 * commit + 3 * sign + 3 * verify,
    }


def tail_row(r: Results, section: str, metric: str, jitter: dict[str, Any], note: str) -> None:
    """Add the p99 of a `bench.jitter` measurement, beside its own p50: how long the machine's tail is."""
    r.add(section, metric, jitter["p99"], "ms", floor=jitter["p50"], floor_of="its own p50", note=note)


def floor_rows(r: Results, f: dict[str, Any]) -> None:
    s = "floors (same run)"
    r.add(s, "HTTPS POST round trip p50 (uvicorn+FastAPI+TLS, trivial)", f["https_post"]["p50"], "ms")
    r.add(s, "HTTP POST → WebSocket push p50 (one server)", f["post_ws_push"]["p50"], "ms")
    r.add(
        s,
        "HTTPS POSTs/s, 16 concurrent clients",
        f["https_post_concurrent_per_s"],
        "/s",
        note=f"server CPU {f['server_cpu_ms_per_post']} ms/POST",
    )
    r.add(s, "SQLite insert + commit p50 (WAL, synchronous=FULL)", f["sqlite_commit"]["p50"], "ms")
    r.add(s, "SQLite inserts/s, 256 per commit", f["sqlite_batch_insert_per_s"], "/s")
    r.add(s, "Ed25519 sign (400 B, libsodium)", f["ed25519_sign_us"], "µs")
    r.add(s, "Ed25519 verify (400 B, libsodium)", f["ed25519_verify_us"], "µs")
    r.add(s, "SHA-256 of 64 B", f["sha256_64_us"], "µs")
    r.add(s, "idle RSS of the same stack", f["stack_idle_rss_mb"], "MB")
    jitter = f.get("jitter_1ms")
    if jitter:  # runs before the bench measured the machine's tail lack it
        note = f"max {jitter['max']:g} ms: the machine's own tail"
        tail_row(r, s, "1 ms of fixed CPU work, alone in one process: p99", jitter, note)
    p = f["detente_primitives"]
    s = "Détente primitives vs floors"
    sign, verify = f["ed25519_sign_us"], f["ed25519_verify_us"]
    if "openssl_sign_us" in p:  # results written before Détente signed through libsodium lack them
        r.add(
            s,
            "Ed25519 sign through OpenSSL 3.0 (cryptography)",
            p["openssl_sign_us"],
            "µs",
            floor=sign,
            floor_of="sign",
        )
        r.add(
            s,
            "Ed25519 verify through OpenSSL 3.0 (cryptography)",
            p["openssl_verify_us"],
            "µs",
            floor=verify,
            floor_of="verify",
        )
    r.add(s, "JCS canonicalisation of an envelope (rfc8785)", p["jcs_canonical_us"], "µs")
    r.add(s, "envelope seal (2× JCS + sign)", p["envelope_seal_us"], "µs", floor=sign, floor_of="sign")
    r.add(s, "envelope parse + verify", p["envelope_parse_verify_us"], "µs", floor=verify, floor_of="verify")
    r.add(
        s,
        "keys.Verifier.verify (key object cached)",
        p["keys_verifier_verify_us"],
        "µs",
        floor=verify,
        floor_of="verify",
    )
    r.add(s, "receipt make", p["receipt_make_us"], "µs", floor=sign, floor_of="sign")
    r.add(s, "receipt verify", p["receipt_verify_us"], "µs", floor=verify, floor_of="verify")
    if "receipts_200_make_us" in p:  # results from before receipts were signed per batch lack them
        r.add(
            s,
            "receipt make, per receipt of a batch of 200",
            p["receipts_200_make_us"],
            "µs",
            floor=sign,
            floor_of="sign",
        )
        r.add(
            s, "receipt verify, per receipt of a batch of 200", p["receipts_200_verify_us"], "µs",
            floor=verify, floor_of="verify",
        )  # fmt: skip


def latency_rows(
    r: Results, lat: dict[str, Any], f: dict[str, Any], label: str, commit_ms: float | None = None
) -> None:
    s = f"FLASH latency ({label}, n={lat['n']})"
    hops = hop_floors(f, commit_ms)
    target = ("<=", FLASH_P99_MS)
    a, d, rc = lat["accept"], lat["deliver"], lat["receipt"]
    r.add(s, "send accepted (POST → 201) p50", a.get("p50"), "ms", floor=hops["accept"], floor_of=FORMULAS["accept"])
    r.add(s, "send accepted p99", a.get("p99"), "ms", floor=hops["accept"], floor_of=FORMULAS["accept"])
    for q in ("p50", "p95", "p99", "max"):
        r.add(
            s,
            f"delivered (POST on pk → WS on ir) {q}",
            d.get(q),
            "ms",
            target=target if q == "p99" else None,
            floor=hops["deliver"],
            floor_of=FORMULAS["deliver"],
        )
    jitter = lat.get("jitter")
    if jitter and d.get("p99"):
        metric = f"the machine: the delivered p50 ({jitter['work_ms']:.2f} ms) as fixed CPU work alone, p99"
        tail_row(r, s, metric, jitter, "what the delivered p99 would be if its every step were pure computation")
        r.add(
            s,
            "delivered p99 against the machine's p99 for the same work",
            d["p99"],
            "ms",
            floor=jitter["p99"],
            floor_of="p99 of the p50's work alone",
        )
    r.add(s, "receipt back on pk's WS p50", rc.get("p50"), "ms", floor=hops["receipt"], floor_of=FORMULAS["receipt"])
    r.add(
        s,
        "ack accepted on ir p50",
        lat["ack_accept"].get("p50"),
        "ms",
        floor=hops["accept"],
        floor_of=FORMULAS["accept"],
    )
    for q in ("p50", "p95", "p99", "max"):
        r.add(
            s,
            f"ack seen (ack POST on ir → WS on pk) {q}",
            lat["ack_seen"].get(q),
            "ms",
            target=target if q == "p99" else None,
            floor=hops["deliver"],
            floor_of=FORMULAS["deliver"],
        )
    if lat["failures"]:
        r.add(s, "round trips that timed out", len(lat["failures"]), "", note=lat["failures"][0][:80])


def throughput_rows(r: Results, t: dict[str, Any], f: dict[str, Any], label: str) -> None:
    per_request = t.get("per_request", 1)
    shape = f", {per_request} messages per request" if per_request > 1 else ""
    s = f"throughput ({label}, {t['senders']} senders × {t['duration_s']:g} s{shape})"
    floor_rate = f["https_post_concurrent_per_s"]
    r.add(s, "accepted (201) per second", t["accepted_per_s"], "/s", floor=floor_rate, floor_of="concurrent POSTs/s")
    r.add(
        s,
        "delivered, receipted, logged on both, per second",
        t["delivered_per_s"],
        "/s",
        target=(">=", DELIVERED_PER_S),
        floor=floor_rate,
        floor_of="concurrent POSTs/s",
        note="accepted ÷ time until the outbox drained",
    )
    r.add(s, "received on ir per second while sending", t["received_per_s_while_sending"], "/s")
    flash = t.get("flash_among_load")
    if flash and flash.get("n"):
        what = f"a FLASH on {flash['channel']} every {flash['every_s']:g} s, the load on {', '.join(t['channels'])}"
        for q in ("p50", "p99", "max"):
            r.add(s, f"FLASH among the load: delivered (POST → WS on ir) {q}", flash[q], "ms", note=what)
        ack = flash.get("ack_seen") or {}
        for q in ("p50", "p99") if ack.get("n") else ():
            r.add(s, f"FLASH among the load: its ack seen (ack POST on ir → WS on pk) {q}", ack[q], "ms", note=what)
    r.add(s, "outbox: max depth", t["max_outbox"], "")
    r.add(s, "outbox: drain time after the senders stop", t["drain_s"], "s")
    r.add(
        s,
        "lost (accepted but not on both nodes)",
        t["loss"]["lost"],
        "",
        target=("<=", 0),
        note=f"{t['loss']['on_both']} of {t['loss']['accepted']} on both logs",
    )
    r.add(s, "send errors", t["errors"], "", note="; ".join(t["first_errors"])[:80])
    proofs = t.get("proofs")
    if proofs:  # results from before proofs were deferred lack it
        r.add(
            s, "proofs of delivery: all verified, after the drain", proofs["after_drain_s"], "s",
            note=f"{proofs['verified']} of {proofs['of']} proven in ir's log; proofs wait while the link has a backlog",
        )  # fmt: skip
    cpu = t["cpu_ms_per_message"]
    r.add(s, "pk CPU per message", cpu["pk"], "ms", floor=f["server_cpu_ms_per_post"], floor_of="server CPU/POST")
    r.add(s, "ir CPU per message", cpu["ir"], "ms")
    with_proofs = t.get("cpu_ms_per_message_with_proofs")
    if with_proofs:
        for party in ("pk", "ir"):
            r.add(s, f"{party} CPU per message, with the proofs after the drain", with_proofs[party], "ms")
    r.add(s, "bench client CPU per message", cpu["bench"], "ms")
    for party in ("pk", "ir"):
        r.add(s, f"{party} peak RSS (VmHWM) after the run", t["peak_rss_mb"][party], "MB", target=("<", RSS_MB))


def log_rows(r: Results, lg: dict[str, Any], f: dict[str, Any]) -> None:
    s = "log"
    for key, label, target in (
        ("appends", "appends/s, 64 per writer job (a delivery batch)", (">=", APPENDS_PER_S)),
        ("appends_single", "appends/s, 1 per writer job (a message sent)", None),
    ):
        a = lg.get(key)
        if not a:
            continue
        r.add(
            s,
            label,
            a["appends_per_s"],
            "/s",
            target=target,
            floor=f["sqlite_batch_insert_per_s"],
            floor_of="SQLite inserts/s (256/commit)",
            note=f"{a['mean_per_commit']} per commit; root matches: {a['sql_root_matches_memory']}",
        )
        r.add(
            s,
            f"CPU per append, {a.get('per_job', 1)} per job (all threads)",
            a.get("cpu_us_per_append"),
            "µs",
            floor=1e6 / f["sqlite_batch_insert_per_s"],
            floor_of="SQLite insert per row (256/commit)",
        )
    c = lg.get("checkpoints")
    if c:
        r.add(
            s,
            "checkpoints signed/s (core)",
            c["checkpoints_per_s"],
            "/s",
            floor=c["raw_signs_per_s"],
            floor_of="signs/s",
        )
    for size, res in (lg.get("proofs") or {}).items():
        n = int(size)
        floor = math.ceil(math.log2(n)) * f["sha256_64_us"] / 1000
        label = f"10^{round(math.log10(n))}"
        target = ("<", PROOF_MS) if n >= 10**6 else None
        for kind in ("inclusion", "consistency"):
            r.add(
                s,
                f"{kind} proof build+verify p50, {label}, memory",
                res["memory"][f"{kind}_total"]["p50"],
                "ms",
                target=target,
                floor=floor,
                floor_of="⌈log2 n⌉ SHA-256",
            )
            if "sql" in res:
                r.add(
                    s,
                    f"{kind} proof build+verify p50, {label}, SQL tree_hashes",
                    res["sql"][f"{kind}_total"]["p50"],
                    "ms",
                    target=target,
                    floor=floor,
                    floor_of="⌈log2 n⌉ SHA-256",
                )
        if "sql_root_ms" in res:
            r.add(s, f"tree root from SQL, {label}", res["sql_root_ms"], "ms")


def memory_rows(r: Results, m: dict[str, Any], f: dict[str, Any]) -> None:
    s = "memory (SQLite)"
    base = f["stack_idle_rss_mb"]
    for party in ("pk", "ir"):
        r.add(
            s,
            f"{party} idle RSS after start",
            m["idle"][party].get("VmRSS"),
            "MB",
            target=("<", RSS_MB),
            floor=base,
            floor_of="stack idle RSS",
        )


def biglog_rows(r: Results, b: dict[str, Any], f: dict[str, Any]) -> None:
    s = f"memory with a {b['fill']['entries_after']:,}-entry log (pk)"
    r.add(s, "fill (signed link tests + tree hashes)", b["fill"]["fill_s"], "s", note=f"db {b['fill']['db_mb']} MB")
    r.add(
        s,
        "pk RSS after restart, idle",
        b["idle"].get("VmRSS"),
        "MB",
        target=("<", RSS_MB),
        floor=f["stack_idle_rss_mb"],
        floor_of="stack idle RSS",
    )
    r.add(s, "pk peak RSS (VmHWM) after traffic", b["peak"]["pk"].get("VmHWM"), "MB", target=("<", RSS_MB))
    r.add(s, "ir peak RSS (VmHWM)", b["peak"]["ir"].get("VmHWM"), "MB", target=("<", RSS_MB))
    lat = b.get("latency")
    if lat:
        hops = hop_floors(f)
        for q in ("p50", "p99"):
            r.add(
                s,
                f"FLASH delivered {q} with the big log",
                lat["deliver"].get(q),
                "ms",
                target=("<=", FLASH_P99_MS) if q == "p99" else None,
                floor=hops["deliver"],
                floor_of=FORMULAS["deliver"],
            )
    small, big = b.get("audit_small"), b.get("audit")
    rate = None
    if small and small.get("audit_s") and small.get("entries"):
        rate = small["entries"] / (small.get("audit_own_s") or small["audit_s"])
        r.add(
            s,
            f"detente audit of {small['entries']:,} entries (before the fill)",
            small["audit_s"],
            "s",
            note=f"{rate:,.0f} entries/s; {small.get('note', '')}",
        )
    if big:
        size = b["fill"]["entries_after"]
        r.add(
            s,
            f"detente log export of {size:,} entries",
            big.get("export_s"),
            "s",
            note=big.get("note", "") if big.get("export_s") is None else "",
        )
        note = big.get("note", "")
        if big.get("audit_s") is None and rate:
            note += f"; at the rate above (the audit's own time) {size / rate:,.0f} s"
        # Every entry's Ed25519 signature must be verified: N verifies spread over every core.
        floor = size * f["ed25519_verify_us"] / 1e6 / f.get("cores", 1)
        r.add(
            s,
            f"detente audit of {size:,} entries",
            big.get("audit_s"),
            "s",
            target=("<", AUDIT_S),
            note=note,
            floor=floor,
            floor_of="N × verify ÷ cores",
        )
        if big.get("audit_s") is None:
            r.add(s, "floor of that audit (N Ed25519 verifies ÷ cores)", round(floor, 1), "s", target=("<", AUDIT_S))
