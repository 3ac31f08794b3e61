"""`detente demo` (what `make demo` runs): both nodes start, the feed runs, both stop cleanly.

A demo run again in its directory replaces what the earlier one wrote and nothing else; the
directories it refuses are in tests/unit/cli/test_demo_workdir.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from detente.node.demo import DEMO_ENTRIES, DEMO_MARKER


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Return `root` and every entry under it (links not followed): a file's bytes, and each mtime in ns.

    A directory's mtime changes when an entry is created or removed in it, so an equal snapshot
    means nothing was rewritten, not only that the same bytes came back.
    """
    paths = [root]
    for top, dirs, files in os.walk(root):  # yields nothing for a file
        paths += [Path(top, name) for name in dirs + files]
    return {
        path.relative_to(root).as_posix(): (
            path.read_bytes() if path.is_file() and not path.is_symlink() else None,
            path.lstat().st_mtime_ns,
        )
        for path in paths
    }


def setup_only(workdir: Path | str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `detente demo --workdir WORKDIR --setup-only ARGS` and return its result."""
    return subprocess.run(
        [sys.executable, "-m", "detente", "demo", "--workdir", str(workdir), "--setup-only", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )  # fmt: skip


def user_files(workdir: Path) -> list[Path]:
    """Put a user's files beside a demo's (a file, a hidden file, a directory) and return them."""
    (workdir / "mine").mkdir()
    (workdir / "mine" / "draft.md").write_text("# talking points\n", encoding="utf-8")
    (workdir / "notes.txt").write_text("precious\n", encoding="utf-8")
    (workdir / ".env").write_bytes(b"TOKEN=\x00\xff")
    return [workdir / "mine", workdir / "notes.txt", workdir / ".env"]


def snapshots(paths: list[Path]) -> dict[Path, dict[str, tuple[bytes | None, int]]]:
    """Return the snapshot of each of `paths` (a file's is its bytes and mtime)."""
    return {path: snapshot(path) for path in paths}


def test_demo_starts_both_nodes_prints_logins_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "DETENTE_DEMO_SECONDS": "4", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "detente", "demo", "--workdir", str(tmp_path / "demo"), "--no-drill"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads((tmp_path / "demo" / "demo.json").read_text())
    for party in ("pk", "ir"):
        node = info["nodes"][party]
        assert node["url"] in result.stdout
        for operator in node["operators"]:
            assert operator["token"] in result.stdout and operator["password"] in result.stdout
    assert "Live feed" in result.stdout
    assert "link to" in result.stdout  # link tests run and their state reaches the feed
    assert "both nodes stopped" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # What a later demo removes is what this one wrote: the list must name every entry.
    assert (tmp_path / "demo" / DEMO_MARKER).is_file()
    assert {p.name for p in (tmp_path / "demo").iterdir()} <= DEMO_ENTRIES.keys()


def test_demo_setup_only_writes_what_scripts_need(tmp_path: Path) -> None:
    result = setup_only(tmp_path / "d")
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "d" / "demo.json").read_text())
    for party, node in info["nodes"].items():
        assert Path(node["data"], "node.toml").exists() and Path(node["cert"]).exists()
        assert node["api"] == node["url"] + "/api/v1"
        offices = {o for op in node["operators"] for o in op["offices"]}
        assert offices == {f"{party}:fs", f"{party}:dgmo", f"{party}:lo-{'zahedan' if party == 'pk' else 'turbat'}"}


def test_a_demo_run_again_replaces_only_what_the_earlier_demo_wrote(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    assert setup_only(work).returncode == 0
    first = json.loads((work / "demo.json").read_text())
    mine = user_files(work)
    kept = snapshots(mine)
    # What a full run adds (logs, the drill's template and reports) goes too ...
    for name in ("pk.log", "ir.log", "agreement-template.toml"):
        (work / name).write_text("old\n", encoding="utf-8")
    (work / "drill-reports").mkdir()
    (work / "drill-reports" / "old.json").write_text("{}", encoding="utf-8")
    # ... and a demo made before the marker existed is known by its demo.json alone.
    (work / DEMO_MARKER).unlink()

    result = setup_only(work)

    assert result.returncode == 0, result.stderr
    second = json.loads((work / "demo.json").read_text())
    tokens = [{op["token"] for n in info["nodes"].values() for op in n["operators"]} for info in (first, second)]
    assert not tokens[0] & tokens[1]  # new nodes, new operators
    assert snapshots(mine) == kept
    for name in ("pk.log", "ir.log", "agreement-template.toml", "drill-reports"):
        assert not (work / name).exists(), name
    assert (work / DEMO_MARKER).is_file()
    demo_wrote = {DEMO_MARKER, "demo.json", "agreement.toml", "pk", "ir"}
    assert {p.name for p in work.iterdir()} == demo_wrote | {path.name for path in mine}


def test_no_fresh_keeps_the_earlier_demo_and_the_users_files(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    assert setup_only(work).returncode == 0
    user_files(work)
    before = snapshot(tmp_path)

    result = setup_only(work, "--no-fresh")

    assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path) == before  # the same nodes, keys and tokens; nothing rewritten


def test_a_setup_cut_short_is_cleared_and_done_again(tmp_path: Path) -> None:
    # setup_demo writes the marker first, so a directory it left half done is still the demo's: the
    # next demo clears it (the half-made node would otherwise be refused) and keeps the user's files.
    work = tmp_path / "demo"
    work.mkdir()
    (work / DEMO_MARKER).write_text("made by detente demo\n", encoding="utf-8")
    (work / "pk").mkdir()
    (work / "pk" / "node.toml").write_text("half written", encoding="utf-8")
    mine = user_files(work)
    kept = snapshots(mine)

    result = setup_only(work)

    assert result.returncode == 0, result.stderr
    assert "half written" not in (work / "pk" / "node.toml").read_text()
    assert json.loads((work / "demo.json").read_text())["nodes"].keys() == {"pk", "ir"}
    assert snapshots(mine) == kept


def test_the_current_directory_holding_a_demo_is_cleared_not_removed(tmp_path: Path) -> None:
    # `--workdir .` once removed the current directory's contents and then failed on rmtree(".").
    (tmp_path / DEMO_MARKER).write_text("made by detente demo\n", encoding="utf-8")
    (tmp_path / "pk.log").write_text("old\n", encoding="utf-8")
    mine = user_files(tmp_path)
    kept = snapshots(mine)

    result = setup_only(".", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "demo.json").read_text())["nodes"].keys() == {"pk", "ir"}
    assert not (tmp_path / "pk.log").exists()
    assert snapshots(mine) == kept
