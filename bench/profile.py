"""Optional sampling profiles of the node processes during the throughput run (`--profile DIR`).

Uses py-spy when it is installed (`pip install py-spy`; it is not a dependency of the project):
`py-spy record --format raw` writes collapsed stacks; `summarize` turns them into the functions
with the most inclusive and self time, which `DIR/<party>-top.txt` lists. The collapsed files
also load into speedscope or flamegraph.pl.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 100  # samples per second per process


def py_spy() -> str | None:
    """Return the py-spy executable next to this Python, or on PATH, or None."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recorders attached to some processes for a bounded duration."""

    def __init__(self, out: Path, pids: dict[str, int], seconds: float) -> None:
        self.out = out
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        out.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            self.procs[name] = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, int(seconds))),
                    "--rate",
                    str(RATE),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--threads",
                    "-o",
                    str(out / f"{name}.collapsed"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def finish(self, timeout: float = 60.0) -> dict[str, Path]:
        """Wait for the recorders (ending them by pid after `timeout`) and write the summaries."""
        written: dict[str, Path] = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGINT)
                proc.wait(timeout=10)
            collapsed = self.out / f"{name}.collapsed"
            if collapsed.exists():
                target = self.out / f"{name}-top.txt"
                target.write_text(summarize(collapsed.read_text()), encoding="utf-8")
                written[name] = target
        return written


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep "function (file.py)".
    func, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


def summarize(collapsed: str, top: int = 40) -> str:
    """Return the functions with the most inclusive and self samples, as text."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"{total} samples", "", "inclusive %  function"]
    lines += [f"{100 * c / total:10.1f}  {name}" for name, c in inclusive.most_common(top)] if total else []
    lines += ["", "self %      function"]
    lines += [f"{100 * c / total:10.1f}  {name}" for name, c in own.most_common(top)] if total else []
    return "\n".join(lines) + "\n"
