"""Nodes a drill starts for itself (`--self-hosted`): the demo pair under a drill copy of the agreement.

The copy differs from the scenario's agreement in two ways, both because the nodes keep wall-clock
time while the drill compresses it: link tests run every `link_test_seconds` (1 s by default) so
outages show within a compressed hour, and the `[lead_times]` of pre-notifications that may be
lowered to zero (`operation.prenotify`, `exercise.prenotify`) are removed, because a notice given
a day ahead in drill time is seconds ahead on the wall clock. The scenario is still checked against
the full agreement, lead times included, in drill time (`core.scenario_plan`), before the nodes
start. The nodes run as `python -m detente serve` child processes and are stopped by their pid.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from detente.core import codebook
from detente.errors import Unavailable
from detente.node.demo import setup_demo
from detente.node.drill_client import Target, load_target
from detente.node.tls import trust_exactly

DRILL_LINK_TEST_SECONDS = 1.0


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


def prepare(workdir: Path, agreement_file: Path, link_test_seconds: float = DRILL_LINK_TEST_SECONDS) -> Path:
    """Create the demo nodes in `workdir` under a drill copy of the agreement; return demo.json's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / "drill-agreement.toml"
    copy.write_text(drill_agreement(agreement_file.read_text(encoding="utf-8")), encoding="utf-8")
    setup_demo(workdir / "nodes", copy, link_test_seconds=link_test_seconds)
    return workdir / "nodes" / "demo.json"


def start(demo_json: Path, *, timeout: float = 60.0) -> SelfHosted:
    """Start every node of a prepared demo.json as a child process and wait until each answers."""
    info = load_target(demo_json)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for party, node in info.parties.items():
        data = Path(node.data or "")
        log = (data.parent / f"{party}.log").open("ab")
        processes[party] = subprocess.Popen(
            [sys.executable, "-m", "detente", "serve", "--data", str(data)], stdout=log, stderr=subprocess.STDOUT
        )
    hosted = SelfHosted(demo_json.parent, info, processes)
    try:
        for party, node in info.parties.items():
            _wait_up(party, node.url, node.cert, processes[party], timeout)
    except BaseException:
        hosted.stop()
        raise
    hosted.target = load_target(demo_json, pids={p: proc.pid for p, proc in processes.items()}, source="self-hosted")
    return hosted


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
