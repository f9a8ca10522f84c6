"""Run a pipeline on this machine through the KFP local runner."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aiserving.pipeline_ops.catalog import compiled_path, pipeline_function
from aiserving.pipeline_ops.compile import pipeline_inputs
from serving_core.errors import InvalidInputError, RemoteServiceError

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_locally(
    name: str, arguments: dict[str, Any], pipeline_root: Path, *, environment: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run pipeline ``name`` with SubprocessRunner in this Python environment.

    Each component runs as a subprocess of this interpreter (no containers),
    writing its artifacts under ``pipeline_root``. The subprocesses inherit this
    process's environment plus ``environment`` and this checkout on ``PYTHONPATH``;
    ``os.environ`` is restored when the run ends, failed or not.

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
    # Component subprocesses import our package from this checkout.
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    # The local runner takes no environment: its subprocesses inherit os.environ.
    with scoped_environment({**(environment or {}), "PYTHONPATH": pythonpath}):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True)
        try:
            task = function(**arguments)
        except RuntimeError as error:
            raise RemoteServiceError(f"local run of {name} failed: {error}", hint="see the task logs above") from error
    outputs = getattr(task, "outputs", None) or {}
    return {"pipeline": name, "pipeline_root": str(pipeline_root), "outputs": sorted(outputs)}


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
