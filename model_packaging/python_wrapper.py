"""Python-wrapper layout: the MLflow model directory (MLmodel at the root) plus ``wrapper-settings.json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model_packaging.io_specs import require_signature, specs_from_signature
from model_packaging.manifest import WRAPPER_SETTINGS_FILE, ModelFormat
from model_packaging.request import BuiltPackage, PackageRequest
from model_packaging.source import SourceModel
from model_packaging.support import Conversion
from model_packaging.triton_config import choose_max_batch_size

SETTINGS_FILE = WRAPPER_SETTINGS_FILE
_MAX_LATENCY_MS = 5


def build_python(source: SourceModel, pair: Conversion, request: PackageRequest, staging: Path) -> BuiltPackage:
    """Copy the MLflow model as is and record the wrapper's settings next to it."""
    signature = require_signature(source.signature, model=source.reference.location, runtime="Python wrapper")
    inputs = specs_from_signature(signature.inputs, what="input")
    outputs = specs_from_signature(signature.outputs, what="output")
    max_batch_size = choose_max_batch_size(request.max_batch_size, inputs)
    shutil.copytree(source.path, staging, dirs_exist_ok=True)
    settings = {
        "model_name": request.name,
        "device": "cuda" if request.instance_kind == "gpu" else "cpu",
        "max_batch_size": max_batch_size,
        "max_latency_ms": _MAX_LATENCY_MS,
        "protocol": "v2",
    }
    (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return BuiltPackage(
        inputs=inputs,
        outputs=outputs,
        max_batch_size=max_batch_size,
        # KServe lists mlflow only as 1/2; an MLflow 3 model must omit the version.
        model_format=ModelFormat(name="mlflow"),
        protocol_version="v2",
        conversion=pair.how,
    )
