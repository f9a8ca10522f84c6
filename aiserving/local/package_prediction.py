"""Serve a Python-wrapper package locally and predict its input example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.models import Model

from model_packaging.manifest import PackageManifest
from model_packaging.verify.samples import named_arrays, runtime_inputs
from model_packaging.verify.v2_client import v2_infer
from model_packaging.verify.wrapper_server import WrapperServer
from serving_core.errors import InvalidInputError, UnsupportedError


def predict_input_example(package_dir: Path, log_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the wrapper server on the package, send the input example, stop it.

    Returns:
        The inputs sent and the outputs received, as lists keyed by tensor name.

    Raises:
        UnsupportedError: the package is not for the Python wrapper runtime.
        InvalidInputError: the model has no input example.
    """
    manifest = PackageManifest.read(package_dir)
    if manifest.runtime != "python":
        raise UnsupportedError(
            f"local serving here covers python-runtime packages; this one is for {manifest.runtime}",
            hint="aiserving verify DIR runs the other runtimes",
        )
    example = Model.load(str(package_dir / "MLmodel")).load_input_example(str(package_dir))
    if example is None:
        raise InvalidInputError(f"{package_dir} has no input example", hint="log the model with input_example=")
    inputs = runtime_inputs(named_arrays(example, manifest), manifest)
    log_dir.mkdir(parents=True, exist_ok=True)
    with WrapperServer(package_dir, manifest.model_name, log_dir / "wrapper-server.log") as server:
        outputs = v2_infer(server.infer_url, inputs)
    return (
        {name: array.tolist() for name, array in inputs.items()},
        {name: array.tolist() for name, array in outputs.items()},
    )
