"""Nodes a drill starts for itself (`--self-hosted`): a demo node per party, under a drill copy of the agreement.

The copy differs from the scenario's agreement in two ways, both because the nodes keep wall-clock
time while the drill compresses it: link tests run every `link_test_seconds` (1 s by default) so
outages show within a compressed hour, and the `[lead_times]` of pre-notifications that may be
lowered to zero (`operation.prenotify`, `exercise.prenotify`) are removed, because a notice given
a day ahead in drill time is seconds ahead on the wall clock. The scenario is still checked against
the full agreement, lead times included, in drill time (`core.scenario_plan`), before the nodes
start. The nodes run as `python -m detente serve` child processes and are stopped by their pid.

A node the drill starts dies with the drill: on Linux each is started with the parent-death signal
set to SIGKILL (`prctl(PR_SET_PDEATHSIG)`), so a drill killed outright (`kill -9`, the terminal
closed) leaves no node running, not even one it had stopped for a scripted outage (SIGKILL ends a
stopped process too). Before it prepares nodes in a directory, the drill refuses one where a node
still serves (`running_nodes`, from each node's serve.lock), naming its pid.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from detente.core import agreement as agreement_mod
from detente.core import codebook
from detente.errors import BadRequest, Conflict, Unavailable
from detente.node.demo import setup_demo
from detente.node.drill_client import Target, load_target
from detente.node.serving import running
from detente.node.tls import trust_exactly

DRILL_LINK_TEST_SECONDS = 1.0
AGREEMENT_COPY = "drill-agreement.toml"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def drill_agreement(text: str) -> str:
    """Return the agreement's TOML text with the lead times compression cannot honour left out."""
    out: list[str] = []
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
        key = re.match(r'^\s*"?([a-z.]+)"?\s*=', line)
        if section == "lead_times" and key and not codebook.LEAD_TIME_FLOORS.get(key.group(1), None):
            out.append(f"# (drill) {line.strip()}  -- checked in drill time before the nodes start")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass
class SelfHosted:
    """Two (or more) nodes the drill started, and how to stop them."""

    workdir: Path
    target: Target
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop each node by its pid (SIGCONT first, in case an outage left it stopped)."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGINT)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def running_nodes(workdir: Path) -> list[tuple[Path, int | None]]:
    """Return (data directory, pid) of each node that serves from `workdir/nodes/*` now (its serve.lock)."""
    nodes = workdir / "nodes"
    if not nodes.is_dir():
        return []
    found = []
    for data in sorted(nodes.iterdir()):
        holder = running(data) if data.is_dir() else None
        if holder is not None:
            found.append((data, holder.pid))
    return found


def refuse_running(workdir: Path) -> None:
    """Raise `Conflict` naming each node that still serves from `workdir` (and its pid), if any does."""
    found = running_nodes(workdir)
    if found:
        listed = ", ".join(f"{data} (pid {pid})" if pid else str(data) for data, pid in found)
        raise Conflict(
            f"a node still serves from {listed}, left by an earlier drill: stop it first "
            f"(kill {' '.join(str(pid) for _, pid in found if pid)}), then run the drill again"
        )


def is_drill_workdir(workdir: Path) -> bool:
    """Return whether `workdir` holds only what `prepare` writes (or nothing), so a new drill may replace it."""
    if not workdir.is_dir():
        return False
    return {p.name for p in workdir.iterdir()} <= {AGREEMENT_COPY, "nodes"}


def replace_workdir(workdir: Path) -> bool:
    """Make `workdir` ready for `prepare`: remove an earlier drill's nodes there; return whether it did.

    Raises `Conflict` if a node still serves from it, and `BadRequest` if it holds anything a drill
    did not write (it is then left as it is).
    """
    if not workdir.exists():
        return False
    refuse_running(workdir)
    if not is_drill_workdir(workdir):
        raise BadRequest(
            f"{workdir} holds files no drill wrote, so the drill will not put its nodes there: "
            "move them, or give another directory with --workdir"
        )
    if not any(workdir.iterdir()):
        return False
    shutil.rmtree(workdir)
    return True


def prepare(workdir: Path, agreement_file: Path, link_test_seconds: float = DRILL_LINK_TEST_SECONDS) -> Path:
    """Create the demo nodes in `workdir` under a drill copy of the agreement; return demo.json's path.

    Raises `Conflict` if a node still serves from `workdir` (left by an earlier drill).
    """
    refuse_running(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / AGREEMENT_COPY
    text = drill_agreement(agreement_file.read_text(encoding="utf-8"))
    copy.write_text(text, encoding="utf-8")
    # One node per party of the agreement, in its order: pk and ir for pk-ir, three for a group.
    parties = tuple(agreement_mod.load(text).parties)
    setup_demo(workdir / "nodes", copy, link_test_seconds=link_test_seconds, parties=parties)
    return workdir / "nodes" / "demo.json"


def start(demo_json: Path, *, timeout: float = 60.0) -> SelfHosted:
    """Start every node of a prepared demo.json as a child process and wait until each answers."""
    info = load_target(demo_json)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for party, node in info.parties.items():
        data = Path(node.data or "")
        log = (data.parent / f"{party}.log").open("ab")
        processes[party] = subprocess.Popen(
            [sys.executable, "-m", "detente", "serve", "--data", str(data)], stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_dies_with_parent(),
        )  # fmt: skip
    hosted = SelfHosted(demo_json.parent, info, processes)
    try:
        for party, node in info.parties.items():
            _wait_up(party, node.url, node.cert, processes[party], timeout)
    except BaseException:
        hosted.stop()
        raise
    hosted.target = load_target(demo_json, pids={p: proc.pid for p, proc in processes.items()}, source="self-hosted")
    return hosted


def _dies_with_parent() -> Callable[[], None] | None:
    """Return what a node's child process runs before `exec` so it is killed when the drill dies.

    Linux sends the signal when the *thread* that started the child ends, so it is set only from the
    main thread (where the command line runs; a caller on another thread stops its nodes itself).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the drill died before the signal was set
            os._exit(1)

    return child


def _wait_up(party: str, url: str, cert: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    context = trust_exactly(Path(cert).read_text(encoding="utf-8"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"node {party} exited with status {proc.returncode}; see its log next to its data")
        try:
            if httpx.get(url + "/api/v1/openapi.json", verify=context, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise Unavailable(f"node {party} did not start within {timeout:.0f} s")
