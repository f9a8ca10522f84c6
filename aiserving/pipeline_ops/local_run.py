"""Run a pipeline on this machine through the KFP local runner."""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiserving.pipeline_ops.catalog import compiled_path, pipeline_function
from aiserving.pipeline_ops.compile import pipeline_inputs
from aiserving.pipeline_ops.progress import TaskProgress, TaskResult
from aiserving.pipeline_ops.run_console import RunConsole, without_colours
from serving_core.errors import InvalidInputError, RemoteServiceError
from serving_core.processes import python_path_with


def run_locally(
    name: str,
    arguments: dict[str, Any],
    pipeline_root: Path,
    *,
    environment: Mapping[str, str] | None = None,
    console: RunConsole | None = None,
) -> dict[str, Any]:
    """Run pipeline ``name`` with SubprocessRunner in this Python environment.

    Each component runs as a subprocess of this interpreter (no containers),
    writing its artifacts under ``pipeline_root``. The subprocesses inherit this
    process's environment plus ``environment`` and this checkout on ``PYTHONPATH``;
    ``os.environ`` is restored when the run ends, failed or not.

    Args:
        name: The pipeline (see :mod:`aiserving.pipeline_ops.catalog`).
        arguments: Its parameters.
        pipeline_root: Where the tasks write their outputs.
        environment: Extra environment variables for the task subprocesses.
        console: An open :class:`RunConsole`: a line per task on it and the runner's own output in
            its log. Without one the runner prints its stream to stdout as it does by itself.

    Returns:
        The pipeline, its root and its outputs; with a console also each task's result and the log.

    Raises:
        InvalidInputError: an argument names no pipeline input.
        RemoteServiceError: a task of the pipeline failed (the message names it).
    """
    from kfp import local

    function = pipeline_function(name)
    inputs = pipeline_inputs(compiled_path(name))
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise InvalidInputError(
            f"pipeline {name} has no parameter(s) {', '.join(unknown)}", hint=f"its parameters: {', '.join(inputs)}"
        )
    pipeline_root.mkdir(parents=True, exist_ok=True)
    # Component subprocesses import our packages from where this process does.
    pythonpath = python_path_with("components")
    where = f"full log: {console.log_path}" if console else "see the task logs above"
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        progress = stack.enter_context(TaskProgress(console, pipeline_root)) if console else None
        # The local runner takes no environment: its subprocesses inherit os.environ.
        stack.enter_context(scoped_environment({**(environment or {}), "PYTHONPATH": pythonpath}))
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True)
        try:
            task = function(**arguments)
        except RuntimeError as error:
            if progress is not None:
                progress.console.say(f"{name}: {_tally(progress.results)} after {time.monotonic() - started:.1f} s")
            message = without_colours(str(error))
            raise RemoteServiceError(f"local run of {name} failed: {message}", hint=where) from error
    outputs = getattr(task, "outputs", None) or {}
    summary: dict[str, Any] = {"pipeline": name, "pipeline_root": str(pipeline_root), "outputs": sorted(outputs)}
    if progress is not None:
        progress.console.say(f"{name}: {_tally(progress.results)} in {time.monotonic() - started:.1f} s")
        summary |= {
            "tasks": [asdict(result) for result in progress.results],
            "log": str(progress.console.log_path),
            "run_folder": str(progress.run_folder or pipeline_root),
        }
    return summary


def _tally(results: list[TaskResult]) -> str:
    """``"6 tasks: 5 succeeded, 1 skipped"``, statuses in the order they first occurred."""
    counts = Counter(result.status for result in results)
    return f"{len(results)} tasks: " + ", ".join(f"{count} {status}" for status, count in counts.items())


@contextlib.contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the ``with`` block, then restore what was there.

    A key that was unset before is removed again; this happens even when the block raises.
    """
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
