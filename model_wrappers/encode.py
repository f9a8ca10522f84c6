"""Model predictions → named arrays split per caller → V1 or V2 responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from model_wrappers.decode import Arrays
from model_wrappers.signature import ModelIO, v2_datatype
from serving_core.errors import RemoteServiceError


def _output_name(io: ModelIO, position: int) -> str:
    return io.outputs[position].name if position < len(io.outputs) else f"output_{position}"


def _as_array(values: Any) -> np.ndarray[Any, Any]:
    array = np.asarray(values)
    # Fixed-width numpy strings have no V2 encoding; object arrays of str do.
    return array.astype(object) if array.dtype.kind in ("U", "S") else array


def prediction_arrays(prediction: Any, io: ModelIO, rows: int) -> Arrays:
    """Name the model's output (array, DataFrame, Series, list or dict) and check it has one row per input row.

    Raises:
        RemoteServiceError: the model returned a different number of rows than it was given.
    """
    if isinstance(prediction, pd.DataFrame):
        arrays = {str(column): _as_array(prediction[column].to_numpy()) for column in prediction.columns}
    elif isinstance(prediction, pd.Series):
        arrays = {_output_name(io, 0): _as_array(prediction.to_numpy())}
    elif isinstance(prediction, Mapping):
        arrays = {str(name): _as_array(values) for name, values in prediction.items()}
    else:
        arrays = {_output_name(io, 0): _as_array(prediction)}
    for name, array in arrays.items():
        if array.ndim == 0 or array.shape[0] != rows:
            got = array.shape[0] if array.ndim else "a scalar"
            raise RemoteServiceError(
                f"the model returned {got} rows in output {name!r} for {rows} input rows",
                hint="a pyfunc served with batching must return one prediction per input row",
            )
    return arrays


def slice_rows(arrays: Arrays, start: int, stop: int) -> Arrays:
    """One caller's rows of a batch's outputs."""
    return {name: array[start:stop] for name, array in arrays.items()}


def _json_ready(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if array.dtype.kind == "M":
        return np.datetime_as_string(array).astype(object)
    return array


def v2_response(arrays: Arrays, model_name: str, request: InferRequest) -> InferResponse:
    """A V2 response; binary tensor data when the caller asked for it (gRPC raw outputs, REST binary)."""
    binary = request.use_binary_outputs
    outputs = []
    for name, raw in arrays.items():
        array = _json_ready(raw)
        output = InferOutput(name=name, shape=list(array.shape), datatype=v2_datatype(array.dtype))
        output.set_data_from_numpy(array, binary_data=binary)
        outputs.append(output)
    return InferResponse(
        response_id=request.id or "",
        model_name=model_name,
        infer_outputs=outputs,
        from_grpc=request.from_grpc,
        use_binary_outputs=binary,
    )


def v1_response(arrays: Arrays) -> dict[str, Any]:
    """A V1 response: ``predictions`` is a list per row; with several outputs, one object per row."""
    lists = {name: _json_ready(array).tolist() for name, array in arrays.items()}
    if len(lists) == 1:
        return {"predictions": next(iter(lists.values()))}
    rows = len(next(iter(lists.values())))
    return {"predictions": [{name: values[index] for name, values in lists.items()} for index in range(rows)]}
