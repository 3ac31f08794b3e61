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


_TASKS = (
    "Deliverer.run",
    "ProofFetcher.run",
    "WitnessClient.run",
    "Checkpointer.run",
    "Scheduler.run",
    "EvidenceFetcher.run",
    "stream (detente",
)


def _after(frames: list[str], marker: str) -> str | None:
    for i, frame in enumerate(frames[:-1]):
        if marker in frame:
            return frames[i + 1].split(" (")[0]
    return None


def activity(frames: list[str]) -> str:
    """Name what a stack is doing: a writer job, an endpoint, a background task, a pool thread, or idle."""
    text = ";".join(frames)
    leaf = frames[-1]
    if "EpollSelector.select" in leaf or "Condition.wait" in leaf or "lock.acquire" in leaf:
        return "(idle)"
    if "Writer._commit" in text:
        return "writer job: " + (_after(frames, "Writer._commit") or "?")
    if "_WorkItem.run" in text:
        return "thread pool: " + (_after(frames, "_WorkItem.run") or "?")
    endpoint = _after(frames, "run_endpoint_function")
    if endpoint:
        return "endpoint: " + endpoint
    if "solve_dependencies" in text:
        return "endpoint dependencies (auth, body parsing)"
    for task in _TASKS:
        if task in text:
            return "task: " + task.split(" ")[0]
    if any(k in text for k in ("uvicorn", "starlette", "fastapi", "h11")):
        return "HTTP stack outside endpoints"
    return "other: " + leaf


def summarize(collapsed: str, top: int = 40) -> str:
    """Return busy samples by activity, then the functions with the most inclusive and self samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    doing: Counter[str] = Counter()
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
        doing[activity(frames)] += count
        for name in set(frames):
            inclusive[name] += count
    busy = total - doing.pop("(idle)", 0)
    lines = [f"{total} samples, {busy} busy", "", "busy %      activity"]
    lines += [f"{100 * c / busy:10.1f}  {name}" for name, c in doing.most_common(top)] if busy else []
    lines += ["", "inclusive %  function"]
    lines += [f"{100 * c / total:10.1f}  {name}" for name, c in inclusive.most_common(top)] if total else []
    lines += ["", "self %      function"]
    lines += [f"{100 * c / total:10.1f}  {name}" for name, c in own.most_common(top)] if total else []
    return "\n".join(lines) + "\n"
