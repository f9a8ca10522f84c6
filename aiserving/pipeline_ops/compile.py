"""Compile every pipeline to reusable YAML, optionally for another components image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aiserving.pipeline_ops.catalog import pipelines


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


def _set_components_image(documents: list[dict[str, Any]], image: str) -> None:
    # The pipeline spec is the first document; executors carry the container image.
    executors = documents[0].get("deploymentSpec", {}).get("executors", {})
    for executor in executors.values():
        container = executor.get("container")
        if container is not None:
            container["image"] = image


def compile_pipeline(name: str, out_dir: Path, components_image: str | None = None) -> Path:
    """Compile one pipeline to ``out_dir/NAME.yaml`` and return the path."""
    from kfp import compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    compiler.Compiler().compile(pipelines()[name], str(path))
    if components_image is not None:
        documents = _documents(path)
        _set_components_image(documents, components_image)
        with path.open("w", encoding="utf-8") as stream:
            yaml.safe_dump_all(documents, stream, sort_keys=True)
    return path


def compile_all(out_dir: Path, components_image: str | None = None) -> list[Path]:
    """Compile every shipped pipeline into ``out_dir``."""
    return [compile_pipeline(name, out_dir, components_image) for name in pipelines()]


def pipeline_inputs(path: Path) -> dict[str, dict[str, Any]]:
    """The root input parameters of a compiled pipeline: name → definition."""
    spec = _documents(path)[0]
    parameters: dict[str, dict[str, Any]] = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return parameters
