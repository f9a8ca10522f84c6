"""Stopping local server processes: a process started in its own session takes its children with it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from serving_core.processes import launch_and_wait, stop_process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of the stopped shell is a zombie until init reaps it: count that as gone.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def _launch_shell_with_child(tmp_path: Path, *, own_session: bool) -> tuple[int, int]:
    child_pid_file = tmp_path / "child.pid"
    process = launch_and_wait(
        ["sh", "-c", f"sleep 300 & echo $! > {child_pid_file}; wait"],
        log_path=tmp_path / "shell.log",
        ready=lambda: child_pid_file.exists() and child_pid_file.read_text().strip() != "",
        what="shell",
        timeout_s=10,
        own_session=own_session,
    )
    child = int(child_pid_file.read_text())
    stop_process(process, grace_s=5)
    assert process.returncode is not None
    return process.pid, child


def test_own_session_stops_the_children_too(tmp_path: Path) -> None:
    _, child = _launch_shell_with_child(tmp_path, own_session=True)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_without_own_session_only_the_process_is_stopped(tmp_path: Path) -> None:
    _, child = _launch_shell_with_child(tmp_path, own_session=False)
    try:
        assert _alive(child)  # the old behaviour for every other server: its children are its own business
    finally:
        os.kill(child, 9)
