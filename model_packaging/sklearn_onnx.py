"""Convert an MLflow sklearn model to ONNX with skl2onnx, with tensor (not ZipMap) outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlflow_source.metadata import SignatureInfo
from model_packaging.manifest import TensorSpec
from model_packaging.source import SourceModel
from serving_core.errors import InvalidInputError, UnsupportedError

TARGET_OPSET = 17


def write_sklearn_onnx(source: SourceModel, out_file: Path) -> None:
    """Convert with ``zipmap=False`` so classifier probabilities stay a tensor Triton can serve.

    Raises:
        InvalidInputError: no input example to type the ONNX input with.
        UnsupportedError: skl2onnx has no converter for the estimator.
    """
    import mlflow.sklearn
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    example = source.input_example()
    if example is None:
        raise InvalidInputError(
            f"sklearn model {source.reference.location} has no input example; skl2onnx needs one to type inputs",
            hint="log the model with input_example=<a few rows>",
        )
    # A DataFrame becomes one feature matrix: the ONNX graph then has one input, X.
    features = example.to_numpy() if hasattr(example, "to_numpy") else np.asarray(example)
    model = mlflow.sklearn.load_model(str(source.path))
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    options = {type(final): {"zipmap": False}} if is_classifier(final) else None
    try:
        onnx_model = to_onnx(model, features[:1], options=options, target_opset=TARGET_OPSET)
    except Exception as error:  # skl2onnx raises plain RuntimeError/NotImplementedError
        raise UnsupportedError(
            f"skl2onnx cannot convert {type(model).__name__}: {error}",
            hint="use --runtime python to serve the sklearn model as is",
        ) from error
    out_file.write_bytes(onnx_model.SerializeToString())


def stack_columns(inputs: list[TensorSpec], signature: SignatureInfo | None) -> list[TensorSpec]:
    """Record that a column signature's columns feed the single ONNX input, in signature order."""
    if signature is None or len(inputs) != 1 or any(entry.kind != "column" for entry in signature.inputs):
        return inputs
    columns = [entry.name for entry in signature.inputs]
    return [inputs[0].model_copy(update={"mlflow_name": None, "mlflow_columns": columns})]
