"""Start and stop local server processes on 127.0.0.1.

Servers bind port 0 and the launcher learns the port they got: from a line in their log
(:func:`announced_port`), from a port file they write (:func:`port_from_file`) or, for programs that
do not say, from the sockets they listen on (:func:`listening_ports`). Picking a free port first
and handing it over races with every other process that does the same.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from serving_core.errors import InvalidInputError, OperationTimeoutError

T = TypeVar("T")

_LISTEN_STATE = "0A"


def log_size(path: Path) -> int:
    """Bytes in a log so far (0 before it exists): where the lines of a process started now begin."""
    return path.stat().st_size if path.exists() else 0


def announced_port(log_path: Path, pattern: re.Pattern[str], *, after: int = 0) -> int | None:
    """The port in group 1 of the first match of ``pattern`` in the log from byte ``after``, or ``None`` yet.

    Args:
        log_path: the server's log.
        pattern: matches the line where the server says where it listens; group 1 is the port.
        after: skip what earlier runs appended (see :func:`log_size`).
    """
    if not log_path.exists():
        return None
    with log_path.open("rb") as log:
        log.seek(after)
        match = pattern.search(log.read().decode(errors="replace"))
    return int(match.group(1)) if match else None


def port_from_file(path: Path, key: str = "http") -> int | None:
    """The port under ``key`` in the JSON file a server writes once it listens, or ``None``.

    ``None`` before the file exists and when the server does not serve ``key`` (``"grpc": null``).
    """
    try:
        ports = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    port = ports.get(key)
    return int(port) if port is not None else None


def _group_pids(process: subprocess.Popen[bytes]) -> set[int]:
    """The process and, when it leads a process group, every process in that group."""
    pids = {process.pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may hold spaces: the fields after it are state, ppid, pgrp.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == process.pid:
            pids.add(int(stat.parent.name))
    return pids


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return set()
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_ports(process: subprocess.Popen[bytes]) -> set[int]:
    """TCP ports the process, or a process of the group it leads, listens on (Linux ``/proc``).

    For programs that bind port 0 but log only the address they were given (tritonserver, TorchServe,
    MLServer): the kernel knows which port each of their listening sockets got.
    """
    ports = set()
    for pid in _group_pids(process):
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        for table in ("tcp", "tcp6"):
            try:
                rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[3] == _LISTEN_STATE and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wait_for(value: Callable[[], T | None], *, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> T:
    """Poll ``value`` until it is not ``None``, the process dies or the time is up; returns the value.

    Raises:
        OperationTimeoutError: ``what`` gave no value within ``timeout_s`` or exited first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OperationTimeoutError(f"{what} exited with code {process.returncode} before it was ready")
        if (result := value()) is not None:
            return result
        time.sleep(0.2)
    raise OperationTimeoutError(f"{what} was not ready within {timeout_s:g} s")


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``check`` until it is true, the process dies or the time is up.

    Raises:
        OperationTimeoutError: ``what`` was not ready within ``timeout_s``.
    """
    wait_for(lambda: True if check() else None, timeout_s=timeout_s, what=what, process=process)


def _signal(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Signal the process, or its whole group when it leads one (started with ``own_session``)."""
    try:
        leads_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return
    if leads_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """Terminate a process (with the children of its own session), then kill it when it does not exit in time."""
    if process.poll() is not None:
        return
    _signal(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def launch(
    command: list[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output appended to ``log_path``.

    ``own_session`` starts it as the leader of a new process group, so stopping it also stops the
    processes it spawns (TorchServe's Java frontend and workers).
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=own_session
        )


def wait_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], *, log_path: Path, what: str, timeout_s: float
) -> None:
    """Wait until ``ready``; stop the process when it does not get there.

    Raises:
        OperationTimeoutError: not ready in time, or exited first (the log tail is in the message).
    """
    try:
        wait_until(ready, timeout_s=timeout_s, what=what, process=process)
    except OperationTimeoutError as error:
        stop_process(process)
        raise OperationTimeoutError(f"{error.message}; log tail:\n{log_tail(log_path)}") from error


def launch_and_wait(
    command: list[str],
    *,
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """:func:`launch` ``command``, then :func:`wait_ready` for it.

    Raises:
        OperationTimeoutError: not ready in time (the process is stopped; the log tail is in the message).
    """
    process = launch(command, log_path=log_path, cwd=cwd, env=env, own_session=own_session)
    wait_ready(process, ready, log_path=log_path, what=what, timeout_s=timeout_s)
    return process


class LocalProcess:
    """A server process this code starts and stops; a ``with`` block runs it.

    Subclasses implement :meth:`start` (typically with :func:`launch_and_wait`, or :func:`launch` and
    :func:`wait_ready` when readiness needs the process) and keep the process in ``_process``.
    """

    _process: subprocess.Popen[bytes] | None = None
    stop_grace_s: float = 10.0

    def start(self) -> Self:
        """Start the process and wait until it serves."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process (terminate, then kill after a grace period)."""
        if self._process is not None:
            stop_process(self._process, self.stop_grace_s)
            self._process = None

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop on leaving the ``with`` block."""
        self.stop()


def python_path_with(package: str) -> str:
    """``$PYTHONPATH`` with the ``sys.path`` entry ``package`` is imported from in front (checkout or site-packages).

    A child process started with it imports the same code as this one, wherever that is installed.

    Raises:
        InvalidInputError: ``package`` is not importable here.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise InvalidInputError(
            f"the {package} package is not importable", hint="install creativeflow-ai-serving in this environment"
        )
    return os.pathsep.join(filter(None, [str(Path(locations[0]).parent), os.environ.get("PYTHONPATH")]))
