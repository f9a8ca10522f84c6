"""Load the MLflow pyfunc from the model directory on the chosen device, with its warm-up input."""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from model_wrappers.signature import FieldSpec, InputKind, ModelIO, model_io_from_signature
from serving_core.errors import InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

# Flavors whose pyfunc can run on a GPU, and how each is told (the rest run on CPU).
_CUDA_FLAVORS = ("pytorch", "tensorflow", "keras", "transformers", "onnx")


@dataclass(frozen=True)
class DeviceChoice:
    """Where the model runs, and why (logged at start)."""

    device: str
    reason: str


def _cuda_device_count() -> int:
    # Only import torch when it is installed: it is the one framework-neutral CUDA probe we have.
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def read_flavors(model_dir: Path) -> list[str]:
    """The flavors listed in ``MLmodel``.

    Raises:
        NotFoundError: the directory has no ``MLmodel``.
        InvalidInputError: ``MLmodel`` is not a YAML mapping with a ``python_function`` flavor.
    """
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise NotFoundError(
            f"{model_dir} holds no MLmodel file",
            hint="point --model-dir at the directory that contains MLmodel (the model's root, /mnt/models on KServe)",
        )
    document = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    flavors = document.get("flavors") if isinstance(document, dict) else None
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        raise InvalidInputError(
            f"{mlmodel} has no python_function flavor, so it cannot be served as a pyfunc",
            hint="log the model with an MLflow flavor that includes python_function",
        )
    return list(flavors)


def select_device(flavors: list[str]) -> DeviceChoice:
    """CUDA when a GPU is visible and a flavor can use it, else CPU."""
    gpu_flavor = next((flavor for flavor in flavors if flavor in _CUDA_FLAVORS), None)
    if gpu_flavor is None:
        return DeviceChoice("cpu", f"no flavor of {flavors} runs on a GPU")
    gpus = _cuda_device_count()
    if gpus == 0:
        return DeviceChoice("cpu", f"flavor {gpu_flavor} can use CUDA but no GPU is visible")
    return DeviceChoice("cuda", f"flavor {gpu_flavor} on {gpus} visible GPU(s)")


@dataclass(frozen=True)
class LoadedModel:
    """The pyfunc, its inputs and outputs, the warm-up input and the device it runs on."""

    pyfunc: Any
    io: ModelIO
    warmup_input: Any
    device: DeviceChoice


def _synthetic_value(field: FieldSpec) -> Any:
    if field.text_kind == "binary":
        return b""
    if field.text_kind == "datetime":
        return np.datetime64("1970-01-01", "ns")
    if field.text_kind == "string":
        return ""
    return field.numpy_dtype.type(0)


def _synthetic_input(io: ModelIO) -> Any:
    """One row of zeros (or empty strings) shaped by the signature, when the model has no input example."""
    if io.kind is InputKind.UNSPECIFIED:
        return None
    arrays = {}
    for field in io.inputs:
        shape = tuple(1 if dim == -1 else dim for dim in field.shape)
        arrays[field.column if io.kind is InputKind.COLUMNS else field.name] = np.full(
            shape, _synthetic_value(field), dtype=field.numpy_dtype
        )
    if io.kind is InputKind.COLUMNS:
        return pd.DataFrame({column: array.reshape(-1) for column, array in arrays.items()})
    if io.kind is InputKind.TENSOR:
        return next(iter(arrays.values()))
    return arrays


def may_use_torch(model_dir: Path, flavors: list[str]) -> bool:
    """Whether loading the model can import torch: a flavor that runs on a GPU, or torch among its requirements."""
    if any(flavor in _CUDA_FLAVORS for flavor in flavors):
        return True  # select_device probes CUDA through torch
    requirements = model_dir / "requirements.txt"
    if not requirements.is_file():
        return False
    names = (
        re.split(r"[\s<>=!~\[;@]", line.strip(), maxsplit=1)[0]
        for line in requirements.read_text(encoding="utf-8").splitlines()
    )
    return any(name.lower() == "torch" for name in names)


def import_frameworks(model_dir: Path) -> None:
    """Import MLflow, the model's flavor modules and, when the model may use it, torch on the calling (main) thread.

    CPython 3.11 keeps the ``ast`` module's recursion bookkeeping in global state, and torch and
    MLflow parse source while they import. Importing them in the loader thread while the server
    starts in the main thread failed now and then with "AST constructor recursion depth
    mismatch"; importing them first, on one thread, removes the overlap.

    torch is imported only for models that may load it (:func:`may_use_torch`): its import adds
    two regex warning filters to the whole process, and scikit-learn rebuilds the process's
    filter list (one ``filterwarnings`` call per filter) for every tree of a forest, so a
    RandomForest predict ran 7-8 % slower in a process that had imported torch
    (docs/performance.md, "Batching off, fourth pass").

    Raises:
        NotFoundError: no ``MLmodel`` in ``model_dir``.
    """
    import mlflow.pyfunc  # noqa: F401 - imported for its side effect

    flavors = read_flavors(model_dir)
    for flavor in flavors:
        module = f"mlflow.{flavor}"
        if flavor != "python_function" and importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    if may_use_torch(model_dir, flavors) and importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401 - imported for its side effect


def load_model(model_dir: Path) -> LoadedModel:
    """Load the pyfunc in ``model_dir`` on the selected device.

    Raises:
        NotFoundError: no ``MLmodel`` in ``model_dir``.
        InvalidInputError: ``MLmodel`` has no ``python_function`` flavor.
        UnsupportedError: the signature has column types the wrapper cannot decode.
    """
    import mlflow.pyfunc

    flavors = read_flavors(model_dir)
    device = select_device(flavors)
    logger.info("serving %s on %s: %s", model_dir, device.device, device.reason)
    model_config = {"device": device.device} if "pytorch" in flavors else None
    pyfunc = mlflow.pyfunc.load_model(str(model_dir), model_config=model_config)
    io = model_io_from_signature(pyfunc.metadata.signature)
    example = pyfunc.metadata.load_input_example(str(model_dir))
    if example is None:
        example = _synthetic_input(io)
        logger.info("no input example in %s; warming up on one synthetic row from the signature", model_dir)
    return LoadedModel(pyfunc=pyfunc, io=io, warmup_input=example, device=device)
