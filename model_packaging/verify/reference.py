"""MLflow's own predictions of the model a package was made from, checked against its lineage digest."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import Model
from mlflow.pyfunc import FLAVOR_NAME as PYFUNC_FLAVOR

from mlflow_source import Lineage, RegistryConnection, content_digest, download_model
from mlflow_source.lineage import LINEAGE_FILE
from model_packaging.dtypes import numpy_dtype_of_signature
from model_packaging.manifest import PackageManifest
from model_packaging.source import is_registry_uri
from model_packaging.verify.samples import mlflow_name
from serving_core.errors import ConflictError, InvalidInputError, UnsupportedError


def _directory_digest(directory: Path) -> str:
    if (directory / LINEAGE_FILE).is_file():
        return Lineage.read(directory).content_digest
    return content_digest(directory)


def check_reference(directory: Path, manifest: PackageManifest) -> None:
    """The reference model must be the one the package was made from.

    Raises:
        ConflictError: its content digest differs from the package's lineage digest.
    """
    digest = _directory_digest(directory)
    if digest != manifest.source.lineage_digest:
        raise ConflictError(
            f"reference model {directory} has digest {digest}, but the package was made from "
            f"{manifest.source.lineage_digest}",
            hint="pass --model with the exact model version the package was made from",
        )


def pyfunc_input(arrays: dict[str, np.ndarray], mlmodel: Model) -> Any:
    """What ``pyfunc.predict`` takes: a DataFrame for columns, a dict for named tensors, else one array."""
    signature = mlmodel.signature
    if signature is None:
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays
    schema = signature.inputs
    if not schema.is_tensor_spec():
        return pd.DataFrame(arrays)
    typed = {
        name: array.astype(numpy_dtype_of_signature(str(spec.type), where=f"input {name!r}"), copy=False)
        for (name, array), spec in zip(arrays.items(), schema.inputs, strict=True)
    }
    return typed if schema.has_input_names() else next(iter(typed.values()))


def named_predictions(prediction: Any, manifest: PackageManifest) -> dict[str, np.ndarray]:
    """MLflow's prediction keyed by the runtime's output names (one unnamed result is the first output)."""
    by_mlflow = {mlflow_name(spec): spec.name for spec in manifest.outputs}
    if isinstance(prediction, dict):
        return {by_mlflow.get(str(key), str(key)): np.asarray(value) for key, value in prediction.items()}
    if isinstance(prediction, pd.DataFrame) and len(prediction.columns) > 1:
        names = [str(column) for column in prediction.columns]
        if set(names) <= set(by_mlflow):
            return {by_mlflow[name]: prediction[name].to_numpy() for name in names}
    return {manifest.outputs[0].name: np.asarray(prediction)}


def _predict_with_pytorch_flavor(model_dir: Path, arrays: dict[str, np.ndarray], mlmodel: Model) -> Any:
    """Call the module MLflow's pytorch flavor loads with one tensor per signature input, in order."""
    import mlflow.pytorch
    import torch

    module = mlflow.pytorch.load_model(str(model_dir), map_location="cpu")
    typed = pyfunc_input(arrays, mlmodel)
    ordered = list(typed.values()) if isinstance(typed, dict) else [typed]
    tensors = [torch.from_numpy(np.asarray(array)) for array in ordered]
    with torch.no_grad():
        return module(*tensors).numpy()


def predict_with_mlflow(
    model_dir: Path, arrays: dict[str, np.ndarray], manifest: PackageManifest
) -> tuple[dict[str, np.ndarray], str]:
    """Predict on ``arrays`` with MLflow: pyfunc, or the pytorch flavor for models MLflow gives no pyfunc.

    Returns:
        The predictions by runtime output name, and which MLflow loader made them.

    Raises:
        UnsupportedError: the model has neither a pyfunc nor a pytorch flavor.
    """
    import mlflow.pyfunc

    mlmodel = Model.load(str(model_dir / "MLmodel"))
    if PYFUNC_FLAVOR in mlmodel.flavors:
        prediction = mlflow.pyfunc.load_model(str(model_dir)).predict(pyfunc_input(arrays, mlmodel))
        return named_predictions(prediction, manifest), "MLflow pyfunc reference"
    if "pytorch" in mlmodel.flavors:
        # MLflow saves a multi-input .pt2 without a pyfunc flavor; its own pytorch loader is the reference.
        prediction = _predict_with_pytorch_flavor(model_dir, arrays, mlmodel)
        return named_predictions(prediction, manifest), "MLflow pytorch flavor reference"
    raise UnsupportedError(
        f"model {model_dir} has flavor(s) {', '.join(sorted(mlmodel.flavors))}; MLflow predicts only through "
        f"{PYFUNC_FLAVOR} or pytorch, so there is no reference prediction",
        hint="log the model with a flavor MLflow can load as pyfunc",
    )


@contextmanager
def reference_model(
    package: Path, manifest: PackageManifest, model: str | None, connection: RegistryConnection | None
) -> Iterator[Path]:
    """A local copy of the model the package was made from (or ``model``), checked against the lineage digest.

    Raises:
        InvalidInputError: the source model is gone and no other location was given.
        ConflictError: the model found differs from the one packaged.
    """
    if manifest.runtime == "python" and model is None:
        yield package
        return
    location = model or manifest.source.location
    if not is_registry_uri(location):
        directory = Path(location)
        if not (directory / "MLmodel").is_file():
            raise InvalidInputError(
                f"the package's source model {location} is not there to predict with",
                hint="pass --model with the MLflow model directory or models:/ URI the package was made from",
            )
        check_reference(directory, manifest)
        yield directory
        return
    if connection is None:
        raise InvalidInputError(
            f"the package's source model is {location}, but no MLflow registry was given",
            hint="pass --tracking-uri (or set MLFLOW_TRACKING_URI), or --model with a local model directory",
        )
    with tempfile.TemporaryDirectory(prefix="aiserving-reference-") as scratch:
        directory = Path(scratch) / "model"
        download_model(location, directory, connection)
        check_reference(directory, manifest)
        yield directory
