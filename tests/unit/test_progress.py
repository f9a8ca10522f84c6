"""Task lines of a local run, drawn from the records the KFP local runner logs, and the run's log file."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

from aiserving.pipeline_ops.progress import TaskProgress
from aiserving.pipeline_ops.run_console import RunConsole

# What kfp 2.17's task dispatcher and DAG orchestrator log (colours included), verbatim.
STARTED = "Executing task \x1b[96m'{task}'\x1b[0m"
SUCCEEDED = "Task \x1b[96m'{task}'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m"
FAILED = "Task \x1b[96m'{task}'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m"
SKIPPED = "Skipping task {task}: upstream task(s) ['{upstream}'] failed."


def _task_folder(pipeline_root: Path, task: str, executor_output: dict[str, object]) -> Path:
    folder = pipeline_root / "deploy-model-2026-01-01-00-00-00-000000" / task
    folder.mkdir(parents=True)
    (folder / "executor_output.json").write_text(json.dumps(executor_output))
    return folder


def test_one_line_per_task_with_status_seconds_and_output_and_everything_in_the_log(tmp_path: Path) -> None:
    terminal = io.StringIO()
    root = tmp_path / "root"
    _task_folder(root, "resolve-model", {"parameterValues": {"Output": "7"}})
    report = _task_folder(root, "deployment-report", {"artifacts": {"report": {"artifacts": [{"uri": "X"}]}}})
    (report / "executor_output.json").write_text(
        json.dumps({"artifacts": {"report": {"artifacts": [{"uri": str(report / "report")}]}}})
    )
    digest = "sha256:" + "ab" * 32
    _task_folder(root, "build-image", {"parameterValues": {"Output": f"reg/m@{digest}"}})

    with RunConsole(tmp_path / "run.log", terminal=terminal) as console, TaskProgress(console, root) as progress:
        for task in ("resolve-model", "build-image", "deployment-report"):
            logging.info(STARTED.format(task=task))
            print(f"{task} says hello")
            logging.info(SUCCEEDED.format(task=task))
        print("to stderr", file=sys.stderr)

    lines = terminal.getvalue().splitlines()
    assert [line.split() for line in lines] == [
        ["resolve-model", "✓", "succeeded", "0.0", "s", "version", "7"],
        ["build-image", "✓", "succeeded", "0.0", "s", f"reg/m@sha256:{'ab' * 6}…"],
        ["deployment-report", "✓", "succeeded", "0.0", "s", "deployment-report/report"],
    ]
    assert [result.status for result in progress.results] == ["succeeded"] * 3
    assert progress.run_folder == report.parent
    log = (tmp_path / "run.log").read_text()
    for expected in ("resolve-model says hello", "to stderr", "Executing task"):
        assert expected in log
    assert "\x1b[" not in log  # colours stripped
    assert "  resolve-model             ✓ succeeded" in log


def test_a_failed_task_shows_its_last_lines_and_the_log_path_and_later_tasks_show_skipped(tmp_path: Path) -> None:
    terminal = io.StringIO()
    with RunConsole(tmp_path / "run.log", terminal=terminal) as console, TaskProgress(console, tmp_path) as progress:
        logging.info(STARTED.format(task="build-image"))
        # Written to sys.stdout, not print(): a KFP local run that failed earlier in the session can leave
        # builtins.print swapped for kfp's indenting wrapper, and the tail must not depend on that.
        for number in range(30):
            sys.stdout.write(f"build line {number}\n")
        sys.stdout.write("Traceback: registry 127.0.0.1:1 refused the connection\n")
        logging.error(FAILED.format(task="build-image"))
        logging.info(SKIPPED.format(task="deploy-inference-service", upstream="build-image"))

    output = terminal.getvalue()
    assert "build-image               ✗ failed" in output
    assert "      │ Traceback: registry 127.0.0.1:1 refused the connection" in output
    assert "build line 29" in output
    assert "build line 5\n" not in output  # only the tail
    assert "│   build-image" not in output  # the tail is what the task printed, not its own line
    assert f"full log: {tmp_path / 'run.log'}" in output
    assert "deploy-inference-service  - skipped" in output
    assert "'build-image' failed" in output
    assert [(result.name, result.status) for result in progress.results] == [
        ("build-image", "failed"),
        ("deploy-inference-service", "skipped"),
    ]


def test_verbose_streams_the_log_to_the_terminal_and_everything_is_restored_after(tmp_path: Path) -> None:
    terminal = io.StringIO()
    stdout, stderr, root = sys.stdout, sys.stderr, logging.getLogger()
    handlers, level, filters = root.handlers[:], root.level, root.filters[:]
    with RunConsole(tmp_path / "run.log", verbose=True, terminal=terminal) as console, TaskProgress(console, tmp_path):
        logging.info(STARTED.format(task="resolve-model"))
        print("streamed")
    assert "streamed" in terminal.getvalue()
    assert "Executing task \x1b[96m'resolve-model'" in terminal.getvalue()  # as the runner prints it
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert (root.handlers, root.level, root.filters) == (handlers, level, filters)
