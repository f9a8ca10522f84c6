"""The pipelines we ship, by the name users type."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from serving_core.errors import InvalidInputError

# The compiled YAML ships as package data of ``pipelines`` (installed as a plain directory, so a real path).
COMPILED_DIR = Path(str(files("pipelines") / "compiled"))


def pipelines() -> dict[str, Any]:
    """Name → pipeline function (imported lazily: authoring imports kfp)."""
    from pipelines.batch_inference import batch_inference
    from pipelines.canary_control import canary_control
    from pipelines.deploy_fleet import deploy_fleet
    from pipelines.deploy_model import deploy_model
    from pipelines.deploy_on_alias_change import deploy_on_alias_change
    from pipelines.progressive_rollout import progressive_rollout_pipeline

    return {
        "deploy-model": deploy_model,
        "canary-control": canary_control,
        "deploy-on-alias-change": deploy_on_alias_change,
        "deploy-fleet": deploy_fleet,
        "progressive-rollout": progressive_rollout_pipeline,
        "batch-inference": batch_inference,
    }


def pipeline_function(name: str) -> Any:
    """The pipeline function called ``name``.

    Raises:
        InvalidInputError: no pipeline has that name.
    """
    known = pipelines()
    if name not in known:
        raise InvalidInputError(f"unknown pipeline {name!r}", hint=f"choose one of: {', '.join(sorted(known))}")
    return known[name]


def compiled_path(name_or_path: str) -> Path:
    """The compiled YAML for a pipeline name, or the path itself when it is a file.

    Raises:
        InvalidInputError: neither a known pipeline nor an existing file.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    pipeline_function(name_or_path)
    path = COMPILED_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise InvalidInputError(
            f"compiled pipeline {path} is missing", hint="run `aiserving compile` to write pipelines/compiled/"
        )
    return path
