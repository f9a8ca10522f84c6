"""Python-wrapper packages written the way package-model writes them, for the deploy tests."""

from __future__ import annotations

import json
from pathlib import Path

from model_packaging.manifest import WRAPPER_SETTINGS_FILE, ModelFormat, PackageManifest, SourceRef, TensorSpec


def write_wrapper_package(
    root: Path, *, model: str, version: str, run_id: str, digest: str, max_batch_size: int, instance_kind: str
) -> Path:
    """An sklearn model's Python-wrapper package (package.json and wrapper-settings.json) in a new ``root``."""
    root.mkdir()
    PackageManifest(
        runtime="python", model_name=model, model_format=ModelFormat(name="mlflow"), protocol_version="v2",
        source_flavor="sklearn", conversion="none",
        inputs=[TensorSpec(name="input_0", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="output_0", datatype="INT64", shape=[-1])],
        max_batch_size=max_batch_size, instance_kind=instance_kind,
        source=SourceRef(location=f"models:/{model}/{version}", lineage_digest=digest, registered_name=model,
                         registered_version=version, run_id=run_id),
        package_digest=digest,
    ).write(root)  # fmt: skip
    settings = {"model_name": model, "max_batch_size": max_batch_size, "max_latency_ms": 5, "protocol": "v2"}
    (root / WRAPPER_SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    return root
