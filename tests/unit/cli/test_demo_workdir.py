"""`detente demo --workdir DIR` refuses, before touching anything, a DIR that is not its own.

These run the real command line on real directories; every case is refused before the demo sets
anything up, so none of them creates a node. Reusing a directory an earlier demo made is in
tests/integration/test_demo.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from detente.node.demo import DEMO_MARKER

Snapshot = dict[str, tuple[str, bytes, int, int]]


def detente(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point's code (`detente.cli.main`) in a process of its own."""
    code = "import sys; from detente.cli import main; sys.argv[0] = 'detente'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )  # fmt: skip


def snapshot(root: Path) -> Snapshot:
    """Return every entry under `root` (itself included): kind, bytes, mode and mtime in ns.

    A directory's mtime changes when an entry is created or removed in it, even for a moment, so
    an equal snapshot means nothing was touched, not only that the files came back.
    """
    paths = [root]
    for top, dirs, files in os.walk(root):  # does not follow symbolic links
        paths += [Path(top, name) for name in dirs + files]
    entries: Snapshot = {}
    for path in paths:
        stat = path.lstat()
        if path.is_symlink():
            kind, content = "link", os.readlink(path).encode()
        elif path.is_dir():
            kind, content = "dir", b""
        else:
            kind, content = "file", path.read_bytes()
        entries[path.relative_to(root).as_posix()] = (kind, content, stat.st_mode, stat.st_mtime_ns)
    return entries


def foreign_dir(path: Path) -> Path:
    """Fill `path` with a user's files, some named like what the demo writes, and return it."""
    (path / "pk").mkdir(parents=True)
    (path / "pk" / "thesis.tex").write_text("chapter 1\n", encoding="utf-8")
    (path / "important.txt").write_text("precious\n", encoding="utf-8")
    (path / "agreement.toml").write_text("# my own agreement\n", encoding="utf-8")
    (path / "ir.log").write_bytes(b"\x00\x01binary")
    return path


def assert_refused(result: subprocess.CompletedProcess[str], *says: str) -> None:
    """Assert a usage error (status 2, the usage, one line naming the problem) with no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Usage: detente demo" in result.stderr and "Try 'detente demo --help'" in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert line.startswith("Error: Invalid value for '--workdir': ")
    for text in says:
        assert text in line, line
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert "prepared" not in result.stdout


@pytest.mark.parametrize("fresh", ["--fresh", "--no-fresh"])
def test_a_non_empty_directory_without_a_demo_is_refused_and_left_byte_for_byte(tmp_path: Path, fresh: str) -> None:
    victim = foreign_dir(tmp_path / "v")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(victim), "--setup-only", fresh)
    assert_refused(result, f"{victim} is not empty and holds no demo", "choose another --workdir or empty it")
    assert snapshot(tmp_path) == before


def test_the_refusal_names_a_few_of_the_entries_found(tmp_path: Path) -> None:
    victim = foreign_dir(tmp_path / "v")
    result = detente("demo", "--workdir", str(victim), "--setup-only")
    assert_refused(result, "(it holds agreement.toml, important.txt, ir.log and 1 more)")


def test_an_empty_workdir_is_refused_and_the_current_directory_left_alone(tmp_path: Path) -> None:
    cwd = foreign_dir(tmp_path / "cwd")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", "", "--setup-only", cwd=cwd)
    assert_refused(result, "it is empty: name a directory")
    assert snapshot(tmp_path) == before


def test_an_empty_workdir_is_refused_even_in_an_empty_current_directory(tmp_path: Path) -> None:
    # An empty value is a script's unset variable: it never means "here", whatever "here" holds.
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", "", "--setup-only", cwd=tmp_path)
    assert_refused(result, "it is empty")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("dot", [".", "./", "sub/.."])
def test_the_current_directory_holding_no_demo_is_refused_and_left_alone(tmp_path: Path, dot: str) -> None:
    cwd = foreign_dir(tmp_path / "cwd")
    (cwd / "sub").mkdir()
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", dot, "--setup-only", cwd=cwd)
    # "." alone would not say which directory was refused: the message names it in full.
    assert_refused(result, f"{cwd} is not empty and holds no demo")
    assert snapshot(tmp_path) == before


def test_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0::/root:/bin/sh\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(path), "--setup-only")
    assert_refused(result, f"{path} is a file: choose a directory as --workdir")
    assert snapshot(tmp_path) == before


def test_a_system_file_is_refused() -> None:
    result = detente("demo", "--workdir", "/etc/passwd", "--setup-only")
    assert_refused(result, "/etc/passwd is a file")


def test_a_path_under_a_file_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("notes\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(path / "demo"), "--setup-only")
    assert_refused(result, f"cannot prepare {path / 'demo'} for the demo (Not a directory)")
    assert snapshot(tmp_path) == before


def test_a_symbolic_link_named_like_a_node_in_a_demo_directory_is_refused_and_its_target_kept(
    tmp_path: Path,
) -> None:
    # The marker makes this a demo's directory, but a demo never makes a link: following it (or
    # removing it) could reach anything, so nothing is touched.
    work = tmp_path / "demo"
    work.mkdir()
    (work / DEMO_MARKER).write_text("made by detente demo\n", encoding="utf-8")
    (work / "demo.json").write_text("{}", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.bin").write_bytes(b"keep me")
    (work / "pk").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(work), "--setup-only")
    assert_refused(result, f"{work / 'pk'} is a symbolic link, not the directory a demo makes there")
    assert snapshot(tmp_path) == before


def test_a_file_named_like_a_node_directory_in_a_demo_directory_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    work.mkdir()
    (work / DEMO_MARKER).write_text("made by detente demo\n", encoding="utf-8")
    (work / "ir").write_text("not a node\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(work), "--setup-only")
    assert_refused(result, f"{work / 'ir'} is a file, not the directory a demo makes there")
    assert snapshot(tmp_path) == before


def test_a_demo_json_of_something_else_does_not_make_a_directory_a_demo(tmp_path: Path) -> None:
    victim = foreign_dir(tmp_path / "v")
    (victim / "demo.json").write_text('{"slides": 12}', encoding="utf-8")
    before = snapshot(tmp_path)
    result = detente("demo", "--workdir", str(victim), "--setup-only")
    assert_refused(result, "holds no demo")
    assert snapshot(tmp_path) == before


def test_help_explains_workdir_and_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "detente", "demo", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--no-fresh" in result.stdout and "removing only what an earlier demo wrote" in result.stdout
    assert "an earlier demo made" in result.stdout


def test_a_file_name_with_control_characters_is_quoted_in_the_refusal(tmp_path: Path) -> None:
    victim = tmp_path / "v"
    victim.mkdir()
    (victim / "\x1b]0;owned\x07\x1b[2J").write_text("x", encoding="utf-8")
    result = detente("demo", "--workdir", str(victim), "--setup-only")
    assert_refused(result, "holds no demo (it holds '\\x1b]0;owned\\x07\\x1b[2J')")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


@pytest.mark.parametrize("speed", ["0", "-3", "nan", "inf"])
def test_a_drill_speed_that_is_no_speed_is_refused_before_anything_is_made(tmp_path: Path, speed: str) -> None:
    result = detente("demo", "--workdir", str(tmp_path / "demo"), "--drill-speed", speed)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Error: Invalid value for '--drill-speed': " in result.stderr and "is not a speed" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "demo").exists()
