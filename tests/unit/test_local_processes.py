"""Local server processes: learning the port a server bound, and stopping it (with its children)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import requests

from serving_core.errors import OperationTimeoutError
from serving_core.processes import (
    announced_port,
    launch,
    launch_and_wait,
    listening_ports,
    log_size,
    port_from_file,
    stop_process,
    wait_for,
)


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


def test_announced_port_reads_only_the_lines_of_the_new_run(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    pattern = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
    assert announced_port(log, pattern) is None
    log.write_text('msg="listening on 127.0.0.1:4000"\n')  # an earlier run in the same log
    restart = log_size(log)
    assert announced_port(log, pattern, after=restart) is None
    with log.open("a") as appended:
        appended.write('starting\nmsg="listening on 127.0.0.1:5000, tls"\n')
    assert announced_port(log, pattern, after=restart) == 5000


def test_port_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    assert port_from_file(path) is None
    path.write_text(json.dumps({"http": 8123, "grpc": None}))
    assert port_from_file(path) == 8123
    assert port_from_file(path, "grpc") is None


def test_listening_ports_finds_the_port_a_child_of_the_group_bound(tmp_path: Path) -> None:
    server = f"{sys.executable} -m http.server --bind 127.0.0.1 0"
    process = launch_and_wait(
        ["sh", "-c", f"{server} & wait"],  # the listener is a child, as TorchServe's Java frontend is
        log_path=tmp_path / "server.log",
        ready=lambda: True,
        what="shell",
        timeout_s=10,
        own_session=True,
    )
    try:
        port = wait_for(
            lambda: next(iter(listening_ports(process)), None), timeout_s=20, what="server", process=process
        )
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        stop_process(process, grace_s=5)


def test_wait_for_fails_when_the_process_exits_first(tmp_path: Path) -> None:
    process = launch(["true"], log_path=tmp_path / "log")
    process.wait()
    with pytest.raises(OperationTimeoutError, match="exited with code 0"):
        wait_for(lambda: None, timeout_s=5, what="server", process=process)
