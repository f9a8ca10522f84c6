"""Load a package's model file in the library its runtime uses (onnxruntime, libtorch, TensorFlow) and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_packaging.manifest import PackageManifest, TensorSpec
from serving_core.dtypes import by_onnx
from serving_core.errors import InvalidInputError


def _declared(specs: list[TensorSpec]) -> list[tuple[str, str, list[int]]]:
    return [(spec.name, spec.datatype, spec.shape) for spec in specs]


def _onnx_dtype(type_name: str) -> str:
    # onnxruntime spells types "tensor(float)"; the table knows the name inside the brackets.
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    return by_onnx(inner, where=f"ONNX type {type_name}").v2


def run_onnx(model_file: Path, manifest: PackageManifest, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check the session's names, types and dims against package.json, then predict.

    Raises:
        InvalidInputError: onnxruntime sees other inputs or outputs than package.json declares.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    found_inputs = [
        (arg.name, _onnx_dtype(arg.type), [dim if isinstance(dim, int) else -1 for dim in arg.shape])
        for arg in session.get_inputs()
    ]
    found_outputs = [
        (arg.name, _onnx_dtype(arg.type), [dim if isinstance(dim, int) else -1 for dim in arg.shape])
        for arg in session.get_outputs()
    ]
    if found_inputs != _declared(manifest.inputs) or found_outputs != _declared(manifest.outputs):
        raise InvalidInputError(
            f"onnxruntime sees inputs {found_inputs} and outputs {found_outputs}, but package.json declares "
            f"{_declared(manifest.inputs)} and {_declared(manifest.outputs)}",
            hint="re-create the package; its model file and package.json disagree",
        )
    results = session.run(None, inputs)
    return {spec.name: np.asarray(value) for spec, value in zip(manifest.outputs, results, strict=True)}


def run_torchscript(
    model_file: Path, manifest: PackageManifest, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Load TorchScript with ``torch.jit.load`` (what Triton's libtorch backend does) and predict."""
    import torch

    module = torch.jit.load(str(model_file), map_location="cpu")  # type: ignore[no-untyped-call]
    with torch.no_grad():
        result = module(*[torch.from_numpy(inputs[spec.name]) for spec in manifest.inputs])
    results = result if isinstance(result, (tuple, list)) else [result]
    return {spec.name: value.numpy() for spec, value in zip(manifest.outputs, results, strict=True)}


def run_savedmodel(
    saved_model: Path, manifest: PackageManifest, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Load the SavedModel in TensorFlow and call its ``serving_default`` signature."""
    import tensorflow as tf

    function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    results = function(**{name: tf.constant(value) for name, value in inputs.items()})
    return {spec.name: results[spec.name].numpy() for spec in manifest.outputs}
