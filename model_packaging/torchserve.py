"""TorchServe layout for KServe: ``config/config.properties`` and ``model-store/<name>.mar``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from model_packaging.manifest import ModelFormat
from model_packaging.request import BuiltPackage, PackageRequest
from model_packaging.source import SourceModel
from model_packaging.support import Conversion
from model_packaging.torchscript import torchscript_package
from model_packaging.triton_config import choose_max_batch_size
from serving_core.errors import RemoteServiceError

MODEL_STORE = "model-store"
CONFIG_FILE = "config/config.properties"
MAR_VERSION = "1.0"
# Shipped inside each .mar; TorchServe imports it, we never do.
HANDLER_FILE = Path(__file__).with_name("torchserve_handler.py")
_MAX_BATCH_DELAY_MS = 10


def archiver_command() -> str:
    """``torch-model-archiver`` next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "torch-model-archiver"
    return str(beside) if beside.exists() else (shutil.which("torch-model-archiver") or "torch-model-archiver")


def kserve_properties(name: str, max_batch_size: int) -> dict[str, str]:
    """``config.properties`` as KServe's torchserve runtime expects (8085 is mandatory for its wrapper)."""
    snapshot = {
        "name": "startup.cfg",
        "modelCount": 1,
        "models": {
            name: {
                MAR_VERSION: {
                    "defaultVersion": True,
                    "marName": f"{name}.mar",
                    "minWorkers": 1,
                    "maxWorkers": 1,
                    "batchSize": max(max_batch_size, 1),
                    "maxBatchDelay": _MAX_BATCH_DELAY_MS,
                    "responseTimeout": 120,
                }
            }
        },
    }
    return {
        "inference_address": "http://0.0.0.0:8085",
        "management_address": "http://0.0.0.0:8085",
        "metrics_address": "http://0.0.0.0:8082",
        "grpc_inference_port": "7070",
        "grpc_management_port": "7071",
        "enable_metrics_api": "true",
        "metrics_mode": "prometheus",
        "enable_envvars_config": "true",
        "install_py_dep_per_model": "false",
        "model_store": f"/mnt/models/{MODEL_STORE}",
        "model_snapshot": json.dumps(snapshot, separators=(",", ":")),
    }


def render_properties(properties: dict[str, str]) -> str:
    """Java properties text, one ``key=value`` per line."""
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def archive(name: str, work: Path, export_dir: Path) -> Path:
    """Run torch-model-archiver on ``work/model.pt`` + handler + ``io.json``.

    Raises:
        RemoteServiceError: the archiver failed.
    """
    handler = work / "handler.py"
    shutil.copyfile(HANDLER_FILE, handler)
    command = [
        archiver_command(),
        "--model-name", name,
        "--version", MAR_VERSION,
        "--serialized-file", str(work / "model.pt"),
        "--handler", str(handler),
        "--extra-files", str(work / "io.json"),
        "--export-path", str(export_dir),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RemoteServiceError(
            f"torch-model-archiver failed with exit code {result.returncode}: {result.stderr.strip()[-2000:]}",
            hint="check that torch-model-archiver 0.12 is installed (pip install torch-model-archiver)",
        )
    return export_dir / f"{name}.mar"


def build_torchserve(source: SourceModel, pair: Conversion, request: PackageRequest, staging: Path) -> BuiltPackage:
    """Write ``model-store/<name>.mar`` and ``config/config.properties`` into ``staging``."""
    with tempfile.TemporaryDirectory(prefix="aiserving-mar-") as scratch:
        work = Path(scratch)
        conversion, inputs, outputs = torchscript_package(source, work / "model.pt")
        max_batch_size = choose_max_batch_size(request.max_batch_size, inputs + outputs)
        io = {
            "inputs": [spec.model_dump() for spec in inputs],
            "outputs": [spec.model_dump() for spec in outputs],
        }
        (work / "io.json").write_text(json.dumps(io, indent=2), encoding="utf-8")
        (staging / MODEL_STORE).mkdir()
        archive(request.name, work, staging / MODEL_STORE)
    config = staging / CONFIG_FILE
    config.parent.mkdir()
    config.write_text(render_properties(kserve_properties(request.name, max_batch_size)), encoding="utf-8")
    return BuiltPackage(
        inputs=inputs,
        outputs=outputs,
        max_batch_size=max_batch_size,
        model_format=ModelFormat(name="pytorch", version="1"),
        protocol_version="v2",
        conversion=f"{conversion} + KServe V2 handler, archived with torch-model-archiver",
    )
