"""`detente log export` and `detente audit`, timed as a user runs them (separate processes).

Both commands arrived with the log work; when the installed `detente` lacks them, the bench says
"not available" instead of failing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _detente(*args: str) -> list[str]:
    return [sys.executable, "-m", "detente", *args]


def available() -> bool:
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
    result["note"] = ("verdict OK" if code == 0 else "verdict FAILED") + f", --jobs {jobs}"
    return result
