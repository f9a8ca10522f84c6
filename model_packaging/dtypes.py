"""One table that maps numpy dtypes to Triton config types, V2 datatypes and comparison tolerances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlflow.types.schema import DataType

from serving_core.errors import UnsupportedError


@dataclass(frozen=True)
class DtypeMapping:
    """How one numpy dtype is spelled by each runtime, and how closely two results must agree."""

    numpy: str
    triton: str
    v2: str
    rtol: float
    atol: float


def _exact(numpy_name: str, triton: str, v2: str) -> DtypeMapping:
    return DtypeMapping(numpy_name, triton, v2, rtol=0.0, atol=0.0)


# Float tolerances allow for a converted graph (ONNX, TorchScript) summing in another order.
_MAPPINGS = (
    _exact("bool", "TYPE_BOOL", "BOOL"),
    _exact("uint8", "TYPE_UINT8", "UINT8"),
    _exact("uint16", "TYPE_UINT16", "UINT16"),
    _exact("uint32", "TYPE_UINT32", "UINT32"),
    _exact("uint64", "TYPE_UINT64", "UINT64"),
    _exact("int8", "TYPE_INT8", "INT8"),
    _exact("int16", "TYPE_INT16", "INT16"),
    _exact("int32", "TYPE_INT32", "INT32"),
    _exact("int64", "TYPE_INT64", "INT64"),
    DtypeMapping("float16", "TYPE_FP16", "FP16", rtol=1e-2, atol=1e-3),
    DtypeMapping("float32", "TYPE_FP32", "FP32", rtol=1e-4, atol=1e-5),
    DtypeMapping("float64", "TYPE_FP64", "FP64", rtol=1e-7, atol=1e-9),
    _exact("object", "TYPE_STRING", "BYTES"),
)
BY_NUMPY = {mapping.numpy: mapping for mapping in _MAPPINGS}
BY_V2 = {mapping.v2: mapping for mapping in _MAPPINGS}


def mapping_for(dtype: np.dtype[np.generic] | str, *, where: str) -> DtypeMapping:
    """The mapping of a numpy dtype; strings and bytes map to BYTES.

    Raises:
        UnsupportedError: no runtime has a type for ``dtype`` (for example datetime64).
    """
    resolved = np.dtype(dtype)
    name = "object" if resolved.kind in ("U", "S", "O") else resolved.name
    if name not in BY_NUMPY:
        raise UnsupportedError(
            f"{where} has dtype {resolved.name}, which has no Triton/V2 type",
            hint=f"cast it to one of {', '.join(sorted(BY_NUMPY))} before logging the model",
        )
    return BY_NUMPY[name]


def numpy_dtype_of_signature(dtype: str, *, where: str) -> np.dtype[np.generic]:
    """The numpy dtype of a signature entry: a tensor dtype (``float32``) or a column type (``double``).

    Raises:
        UnsupportedError: the type has no numpy equivalent a runtime can serve.
    """
    if dtype in DataType.__members__:
        resolved: np.dtype[np.generic] = np.dtype(DataType[dtype].to_numpy())
    else:
        try:
            resolved = np.dtype(dtype)
        except TypeError as error:
            raise UnsupportedError(
                f"{where} has dtype {dtype!r}, which no serving runtime supports",
                hint=f"log the model with one of {', '.join(sorted(BY_NUMPY))}",
            ) from error
    mapping_for(resolved, where=where)
    return resolved


def v2_to_numpy(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype for a V2 datatype name (``FP32`` → float32)."""
    return np.dtype(BY_V2[datatype].numpy)
