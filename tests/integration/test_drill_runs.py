"""What a drill run leaves and says: kept nodes, earlier reports set aside, interruptions, failed steps.

Regression tests for the exercise director's QA of drills (findings 1, 2, 3b and 5). Each runs
`detente drill run` as a process of its own, as an operator does, so its exit status, its output and
its signals are real; each starts its own pair of nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from detente.core import agreement, drill_consistency, drill_facts
from detente.node import drill_nodes

ROOT = Path(__file__).resolve().parents[2]
SHORT = ROOT / "scenarios" / "border-drone.yaml"
AGREEMENT = ROOT / "agreements" / "pk-ir.toml"


def detente(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "detente", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has died; only its parent's wait is missing


def scenario_file(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("../agreements/pk-ir.toml", str(AGREEMENT)), encoding="utf-8")
    return path


def test_a_default_run_keeps_its_nodes_and_sets_the_earlier_reports_aside(tmp_path: Path) -> None:
    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "border-drone.json").write_text("{}", encoding="utf-8")  # an earlier run's
    # An earlier run's nodes where this run keeps its own (prepared as a run prepares them, not run:
    # a second whole drill would double this test's time): they are replaced, not refused.
    earlier = drill_nodes.prepare(reports / "border-drone.nodes", AGREEMENT)
    earlier_key = (earlier.parent / "pk" / "node.key").read_bytes()
    result = detente("drill", "run", str(SHORT), "--report", str(reports), "--speed", "3000", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replaced the nodes of the previous run" in result.stdout
    assert (reports / "border-drone.previous.json").read_text(encoding="utf-8") == "{}"
    nodes = reports / "border-drone.nodes" / "nodes"
    assert (nodes / "pk" / "node.toml").is_file() and (nodes / "ir" / "node.toml").is_file()
    assert (nodes / "pk.log").is_file() and (nodes / "demo.json").is_file()
    out = " ".join(result.stdout.split())
    assert f"the drill's nodes, their databases and logs are kept in {nodes}" in out
    assert f"detente serve --data {nodes / 'pk'}" in out
    # The speed used is said at the start, and why it is slower where it is.
    assert "speed 3000× (drill seconds per real second), quiet stretches jumped; 300× during the 40m outage" in out
    report = json.loads((reports / "border-drone.json").read_text(encoding="utf-8"))
    assert Path(report["run"]["agreement_file"]).is_file()
    assert {p: Path(d).is_dir() for p, d in report["run"]["node_dirs"].items()} == {"pk": True, "ir": True}
    # Each node's checkpoint is in the facts, above every log index of the run on that node, and an
    # export and audit of the kept node (stopped at the end of the run) prove the log up to it.
    assert set(report["checkpoints"]) == {"pk", "ir"} and "checkpoints_missing" not in report
    drill_facts.check(report)
    for party, entry in report["checkpoints"].items():
        assert entry["size"] > max(e["log"][party] for e in report["envelopes"])
    # Beside them, the nodes' keys as the agreement pins them, which every checkpoint's signatures
    # verify with: a checkpoint edited after the run is refused, by `drill compare` too.
    pinned = agreement.load(Path(report["run"]["agreement_file"]).read_text(encoding="utf-8"))
    assert report["keys"] == drill_consistency.party_keys(pinned) and set(report["keys"]) == {"pk", "ir"}
    edited = json.loads(json.dumps(report))
    lines = edited["checkpoints"]["ir"]["note"].split("\n")
    lines[1] = str(int(lines[1]) + 1)  # the size line: the note no longer says what ir's node signed
    edited["checkpoints"]["ir"] = {"size": int(lines[1]), "note": "\n".join(lines)}
    (tmp_path / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    refused = detente("drill", "compare", str(reports / "border-drone.json"), str(tmp_path / "edited.json"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (
        "edited.json was edited or is damaged: checkpoints.ir: its signatures do not verify with keys.ir.log and "
        "the witness keys: invalid note signature; the report was edited"
    ) in refused.stderr
    export = tmp_path / "pk-export"
    exported = detente("log", "export", "--data", str(nodes / "pk"), "--out", str(export))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    audited = detente("audit", str(export), "--agreement", report["run"]["agreement_file"], "--party", "pk")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    page = (reports / "border-drone.html").read_text(encoding="utf-8")
    assert (
        f"detente serve --data {nodes / 'pk'}" in page
        and f'size <b class="num">{report["checkpoints"]["pk"]["size"]}' in page
    )
    assert (nodes / "pk" / "node.key").read_bytes() != earlier_key  # new nodes, new keys


def test_an_alternate_answers_once_the_node_marks_overdue_and_a_refused_step_makes_the_run_exit_1(
    tmp_path: Path,
) -> None:
    # An alternate may answer at the drill-time deadline, but a node marks the message overdue on the
    # wall clock. On the liaison channel, given a 2 s FLASH deadline here, the drill waits for ir's node
    # to mark it and ir:dgmo (the alternate of ir:lo-turbat) answers: the success path. On the DGMO
    # channel the node marks it ten real minutes after it was sent: too long to wait, so the step fails.
    agreement = tmp_path / "short-deadline.toml"
    text = AGREEMENT.read_text(encoding="utf-8")
    assert "\n[channels.liaison]\n" in text and "[channels.liaison.deadlines]" not in text
    agreement.write_text(f"{text}\n[channels.liaison.deadlines]\nFLASH = 2\n", encoding="utf-8")
    text = f"""\
detente-drill: 1
title: escalation
agreement: {agreement}
start: 2024-01-16T13:00:00Z
speed: 3000
timeline:
  - at: +1m
    label: flash
    send: {{from: pk:dgmo, to: ir:dgmo, type: hotline.text, precedence: FLASH, body: {{text: "answer"}}}}
  - at: +1m
    label: lo-flash
    send: {{from: pk:lo-zahedan, to: ir:lo-turbat, type: hotline.text, precedence: FLASH, body: {{text: "who?"}}}}
  - ack: {{ref: lo-flash, by: ir:dgmo}}
    label: lo-escalated
    delay: 2s
  - ack: {{ref: flash, by: ir:fs}}
    label: escalated
    delay: 10m
"""
    scenario = scenario_file(tmp_path, text)
    reports = tmp_path / "r"
    result = detente("drill", "run", str(scenario), "--report", str(reports), "--quiet", "--discard-nodes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: DrillStepsFailed: 1 step failed: the nodes refused what the scenario asked" in result.stderr
    assert "line 16: ack escalated: ir:fs may answer flash only once ir's node marks it overdue" in result.stderr
    assert str(reports / "s.json") in result.stderr and "Traceback" not in result.stderr
    assert not (reports / "s.nodes").exists()
    assert "the drill's nodes and their logs were deleted" in result.stdout
    report = json.loads((reports / "s.json").read_text(encoding="utf-8"))
    assert report["run"]["node_dirs"] is None and report["run"]["agreement_file"] is None
    # The alternate's answer: played after ir's node marked the message overdue, and recorded as its answer.
    step = next(s for s in report["steps"] if s["label"] == "lo-escalated")
    assert step["status"] == "done" and step["line"] == 13, step
    assert "waited for ir's node to mark lo-flash overdue (wall-clock deadline)" in step["notes"], step
    envelopes = {e["id"]: e for e in report["envelopes"]}
    flash = envelopes[next(s["id"] for s in report["steps"] if s["label"] == "lo-flash")]
    ack = envelopes[step["id"]]
    assert ack["type"] == "ack" and ack["refs"] == [flash["id"]] and flash["response"]["id"] == ack["id"]
    # The envelope is the addressee's; its body names the alternate office that answered.
    assert ack["from"] == "ir:lo-turbat" and ack["body"]["office"] == "ir:dgmo" and step["operator"] == "ir-dgmo"
    assert set(ack["log"]) == {"pk", "ir"}
    assert flash["overdue_at"] is not None and flash["overdue_at"] <= ack["created"]
    [message] = [m for m in report["figures"]["node_overdue"] if m["envelope"]["id"] == flash["id"]]
    assert message["status"] == "acknowledged" and not message["overdue"]  # in drill time, on its deadline


def test_an_interrupted_run_says_where_it_stopped_and_writes_a_partial_run(tmp_path: Path) -> None:
    reports = tmp_path / "r"
    reports.mkdir()
    for name in ("border-drone.json", "border-drone.html"):
        (reports / name).write_text("earlier", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200"}
    args = [sys.executable, "-m", "detente", "drill", "run", str(SHORT), "--report", str(reports), "--speed", "100"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "acknowledges report" in line:  # well after STARTEX, messages sent
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest + err
    said = " ".join(rest.split())
    assert "interrupted at 10 Mar " in said and "drill time, after line" in said, said
    assert "envelopes were sent before the interruption and stay in the nodes' logs" in said
    partial = reports / "border-drone.interrupted.json"
    assert f"partial report, marked interrupted: {partial}" in said
    facts = json.loads(partial.read_text(encoding="utf-8"))
    stop = facts["interrupted"]
    assert stop["variant"] is None and stop["steps_left"] > 0 and stop["envelopes"] == "complete"
    assert any(s["status"] == "done" and s["id"] for s in facts["steps"])
    assert any(e["type"] == "incident.report" and set(e["log"]) == {"pk", "ir"} for e in facts["envelopes"])
    # The earlier complete reports no longer look like the latest; the nodes were stopped.
    assert not (reports / "border-drone.json").exists()
    assert (reports / "border-drone.previous.json").read_text(encoding="utf-8") == "earlier"
    assert drill_nodes.running_nodes(reports / "border-drone.nodes") == []


def test_nodes_die_with_a_drill_killed_outright_and_a_running_one_is_named(tmp_path: Path) -> None:
    work = tmp_path / "w"
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom detente.node import drill_nodes\n"
        f"hosted = drill_nodes.start(drill_nodes.prepare(Path({str(work)!r}), Path({str(AGREEMENT)!r})))\n"
        "print(' '.join(str(p.pid) for p in hosted.processes.values()), flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        os.kill(pids[1], signal.SIGSTOP)  # as a scripted outage leaves it
        refused = detente("drill", "run", str(SHORT), "--workdir", str(work), "--report", str(tmp_path / "r"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "a node still serves from" in refused.stderr and f"(pid {pids[0]})" in refused.stderr
        assert not (tmp_path / "r").exists()
        proc.kill()  # kill -9 of the drill
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pid in pids if "pids" in locals() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The lock goes with the last descriptor of it, which a dying process closes a moment after it
    # stops running: wait for that, as for the processes above.
    deadline = time.monotonic() + 10
    while drill_nodes.running_nodes(work) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert drill_nodes.running_nodes(work) == []
