"""Read an ONNX graph's inputs and outputs: names, dtypes and shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from model_packaging.dtypes import mapping_for
from model_packaging.manifest import TensorSpec
from serving_core.errors import UnsupportedError


def _spec(value: Any, signature_names: list[str], index: int) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise UnsupportedError(
            f"ONNX graph value {value.name!r} is a {kind}, not a tensor; no runtime can serve it",
            hint="convert sklearn classifiers with skl2onnx options {'zipmap': False} so outputs are tensors",
        )
    tensor_type = value.type.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
    shape = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor_type.shape.dim]
    if value.name in signature_names:
        mlflow_name: str | None = value.name
    else:
        mlflow_name = signature_names[index] if index < len(signature_names) else None
    return TensorSpec(
        name=value.name,
        datatype=mapping_for(dtype, where=f"ONNX tensor {value.name!r}").v2,
        shape=shape,
        mlflow_name=mlflow_name,
    )


def onnx_graph_specs(
    model_file: Path, signature_inputs: list[str], signature_outputs: list[str]
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Graph inputs (without initializers) and outputs, matched to the MLflow signature names.

    Raises:
        UnsupportedError: a value is a sequence or map, or has a dtype no runtime serves.
    """
    graph = onnx.load(str(model_file), load_external_data=False).graph
    initializers = {initializer.name for initializer in graph.initializer}
    graph_inputs = [value for value in graph.input if value.name not in initializers]
    inputs = [_spec(value, signature_inputs, index) for index, value in enumerate(graph_inputs)]
    outputs = [_spec(value, signature_outputs, index) for index, value in enumerate(graph.output)]
    return inputs, outputs
