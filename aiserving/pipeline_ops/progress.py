"""One line per pipeline task of a local run: name, status, seconds and the output that matters.

The hook is a :class:`logging.Filter` on the root logger. The KFP local runner (kfp 2.17) logs
"Executing task 'NAME'", "Task 'NAME' finished with status SUCCESS|FAILURE" and "Skipping task NAME:
upstream task(s) [...] failed." through the root logger; it swaps the root *handlers* around each
task but leaves the logger's filters alone, so a filter sees every one of those records. The filter
only watches: every record still goes on to the log file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from aiserving.pipeline_ops.run_console import RunConsole, without_colours

_STARTED = re.compile(r"^Executing task '(?P<task>[^']+)'")
_FINISHED = re.compile(r"^Task '(?P<task>[^']+)' finished with status (?P<status>SUCCESS|FAILURE)")
_SKIPPED = re.compile(r"^Skipping task (?P<task>\S+): upstream task\(s\) \[(?P<upstream>[^\]]*)\] failed")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}")
# A bare output that does not say what it is gets a word in front.
_OUTPUT_LABELS = {"resolve-model": "version"}
_NAME_WIDTH = 26
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_REDRAW_S = 0.2
# What a failed task printed last, shown under its line.
FAILURE_TAIL_LINES = 12


@dataclass(frozen=True)
class TaskResult:
    """How one task of a local run ended."""

    name: str
    status: str  # succeeded, failed or skipped
    seconds: float
    output: str


def brief(value: str, run_folder: Path) -> str:
    """``value`` shortened for a progress line: digests to 12 hex digits, paths relative to the run or here.

    A path inside ``run_folder`` becomes ``TASK/OUTPUT``; another below the working directory becomes relative.
    """
    value = _DIGEST.sub(r"\1…", value.strip())
    if value.startswith("/"):
        path = Path(value)
        if path.is_relative_to(run_folder):
            return str(path.relative_to(run_folder))
        with_cwd = os.path.relpath(value)
        value = value if with_cwd.startswith("..") else with_cwd
    return value


def latest_task_folder(pipeline_root: Path, task: str) -> Path | None:
    """The folder of ``task``'s latest run under ``pipeline_root`` (``PIPELINE_ROOT/RUN/TASK``), if it wrote one."""
    written = sorted(pipeline_root.glob(f"*/{task}/executor_output.json"), key=lambda path: path.stat().st_mtime)
    return written[-1].parent if written else None


def task_output(task_folder: Path) -> str:
    """The output that matters of the task that wrote ``task_folder``, or ``""``.

    Its ``Output`` parameter when it returns one (the version, digest, image or manifest the step
    produced), else the path of its first output artifact; read from the executor output the
    runner leaves in the task's folder.
    """
    executor_output = json.loads((task_folder / "executor_output.json").read_text(encoding="utf-8"))
    value = str(executor_output.get("parameterValues", {}).get("Output", ""))
    if not value:
        artifacts = [
            artifact["uri"]
            for output in executor_output.get("artifacts", {}).values()
            for artifact in output.get("artifacts", [])
        ]
        value = artifacts[0] if artifacts else ""
    label = _OUTPUT_LABELS.get(task_folder.name)
    shown = brief(value, task_folder.parent)
    return f"{label} {shown}" if label and shown else shown


class TaskProgress(logging.Filter):
    """Draw task lines on a :class:`RunConsole` from the runner's log records while installed.

    Use as a context manager around the run; :attr:`results` lists the tasks in the order they ended
    and :attr:`run_folder` is where the runner wrote their outputs.
    On a terminal the running task's line shows a spinner and the seconds so far.
    """

    def __init__(self, console: RunConsole, pipeline_root: Path) -> None:
        """Watch the runner for a run writing under ``pipeline_root``, drawing on ``console``."""
        super().__init__()
        self.console = console
        self.pipeline_root = pipeline_root
        self.results: list[TaskResult] = []
        # The runner names the run's folder itself; the first finished task shows where it is.
        self.run_folder: Path | None = None
        self._running: tuple[str, float] | None = None
        self._stop_spinner = threading.Event()
        self._spinner: threading.Thread | None = None

    def __enter__(self) -> Self:
        logging.getLogger().addFilter(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        logging.getLogger().removeFilter(self)
        self._halt_spinner()

    def filter(self, record: logging.LogRecord) -> bool:
        """Watch one record and let it through to the log file."""
        message = without_colours(record.getMessage())
        if started := _STARTED.match(message):
            self._start(started["task"])
        elif finished := _FINISHED.match(message):
            self._finish(finished["task"], "succeeded" if finished["status"] == "SUCCESS" else "failed")
        elif skipped := _SKIPPED.match(message):
            task, why = skipped["task"], f"upstream {skipped['upstream']} failed"
            self._line(task, TaskResult(task, "skipped", 0.0, why))
        return True

    @staticmethod
    def _prefix(task: str) -> str:
        return f"  {task:<{_NAME_WIDTH}}"

    def _start(self, task: str) -> None:
        self._running = (task, time.monotonic())
        self.console.forget_recent()
        if self.console.verbose:
            return
        if self.console.live:
            self._stop_spinner.clear()
            self._spinner = threading.Thread(target=self._spin, args=(task, time.monotonic()), daemon=True)
            self._spinner.start()
        else:
            # Finished by the status when the task ends: one line per task in a pipe too.
            self.console.write(self._prefix(task), to_log=False)

    def _spin(self, task: str, since: float) -> None:
        frame = 0
        while not self._stop_spinner.is_set():
            elapsed = time.monotonic() - since
            self.console.write(f"\r{self._prefix(task)}{_SPINNER[frame % len(_SPINNER)]} running {elapsed:4.0f} s")
            frame += 1
            self._stop_spinner.wait(_REDRAW_S)

    def _halt_spinner(self) -> None:
        self._stop_spinner.set()
        if self._spinner is not None:
            self._spinner.join()
            self._spinner = None
            self.console.write("\r\x1b[K", to_log=False)

    def _finish(self, task: str, status: str) -> None:
        started = self._running[1] if self._running and self._running[0] == task else time.monotonic()
        self._running = None
        self._halt_spinner()
        folder = latest_task_folder(self.pipeline_root, task)
        output = ""
        if folder is not None and status == "succeeded":
            self.run_folder = folder.parent
            output = task_output(folder)
        # Taken before the task's own line goes to the log, which would make it the last of them.
        tail = self.console.recent()[-FAILURE_TAIL_LINES:]
        self._line(task, TaskResult(task, status, time.monotonic() - started, output), started_line=True)
        if status == "failed":
            for line in tail:
                self.console.say(f"      │ {line}")
            self.console.say(f"      full log: {self.console.log_path}")

    def _line(self, task: str, result: TaskResult, *, started_line: bool = False) -> None:
        self.results.append(result)
        mark = {"succeeded": "✓", "failed": "✗", "skipped": "-"}[result.status]
        seconds = f"{result.seconds:5.1f} s" if result.status != "skipped" else " " * 7
        rest = f"{mark} {result.status:<9} {seconds}  {result.output}".rstrip()
        if self.console.verbose:
            self.console.say(f"{self._prefix(task)}{rest}")
            return
        # In a pipe the name went out when the task started; the rest completes that line.
        if started_line and not self.console.live:
            self.console.write(rest + "\n", to_log=False)
            self.console.log(f"{self._prefix(task)}{rest}\n")
        else:
            self.console.say(f"{self._prefix(task)}{rest}")
