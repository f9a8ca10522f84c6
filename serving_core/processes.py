"""Start and stop local server processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from serving_core.errors import OperationTimeoutError


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``check`` until it is true, the process dies or the time is up.

    Raises:
        OperationTimeoutError: ``what`` was not ready within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OperationTimeoutError(f"{what} exited with code {process.returncode} before it was ready")
        if check():
            return
        time.sleep(0.2)
    raise OperationTimeoutError(f"{what} was not ready within {timeout_s:g} s")


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
    """Start ``command`` with its output appended to ``log_path`` and wait until ``ready``.

    ``own_session`` starts it as the leader of a new process group, so stopping it also stops the
    processes it spawns (TorchServe's Java frontend and workers).

    Raises:
        OperationTimeoutError: not ready in time (the process is stopped; the log tail is in the message).
    """
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=own_session
        )
    try:
        wait_until(ready, timeout_s=timeout_s, what=what, process=process)
    except OperationTimeoutError as error:
        stop_process(process)
        raise OperationTimeoutError(f"{error.message}; log tail:\n{log_tail(log_path)}") from error
    return process


class LocalProcess:
    """A server process this code starts and stops; a ``with`` block runs it.

    Subclasses implement :meth:`start` (typically with :func:`launch_and_wait`) and keep the
    process in ``_process``.
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
