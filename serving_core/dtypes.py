"""The one dtype table: how each tensor element type is spelled by numpy, KServe V2, Triton, ONNX and MLflow.

Packaging, verification and the Python wrapper all read it, so a Triton config, V2 metadata and a
verification tolerance cannot disagree about a type. Framework types are kept as names so that
importing this module needs only numpy; callers turn names into torch or TensorFlow objects themselves.
The TorchServe handler (``model_packaging/torchserve_handler.py``) runs inside a ``.mar`` without our
packages, so it keeps its own copy; ``tests/unit/test_dtype_table.py`` checks that copy against this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from serving_core.errors import UnsupportedError


@dataclass(frozen=True)
class Dtype:
    """One element type as each runtime spells it, and how closely two results of that type must agree.

    Attributes:
        numpy: the numpy dtype name; ``object`` stands for every string and bytes dtype.
        v2: the KServe V2 (open inference protocol) datatype.
        triton: the Triton model config ``data_type``.
        onnx: the element type as onnxruntime spells it inside ``tensor(...)``.
        torch: whether the TorchServe handler serves it; torch has no string tensors and
            only partial support for unsigned integers wider than 8 bits.
        rtol: relative tolerance when a runtime's result is compared with MLflow's.
        atol: absolute tolerance for the same comparison.
    """

    numpy: str
    v2: str
    triton: str
    onnx: str
    torch: bool
    rtol: float = 0.0
    atol: float = 0.0


# Float tolerances allow for a converted graph (ONNX, TorchScript) summing in another order.
DTYPES: tuple[Dtype, ...] = (
    Dtype("bool", "BOOL", "TYPE_BOOL", "bool", torch=True),
    Dtype("uint8", "UINT8", "TYPE_UINT8", "uint8", torch=True),
    Dtype("uint16", "UINT16", "TYPE_UINT16", "uint16", torch=False),
    Dtype("uint32", "UINT32", "TYPE_UINT32", "uint32", torch=False),
    Dtype("uint64", "UINT64", "TYPE_UINT64", "uint64", torch=False),
    Dtype("int8", "INT8", "TYPE_INT8", "int8", torch=True),
    Dtype("int16", "INT16", "TYPE_INT16", "int16", torch=True),
    Dtype("int32", "INT32", "TYPE_INT32", "int32", torch=True),
    Dtype("int64", "INT64", "TYPE_INT64", "int64", torch=True),
    Dtype("float16", "FP16", "TYPE_FP16", "float16", torch=True, rtol=1e-2, atol=1e-3),
    Dtype("float32", "FP32", "TYPE_FP32", "float", torch=True, rtol=1e-4, atol=1e-5),
    Dtype("float64", "FP64", "TYPE_FP64", "double", torch=True, rtol=1e-7, atol=1e-9),
    Dtype("object", "BYTES", "TYPE_STRING", "string", torch=False),
)

# MLflow column types (``DataType`` names) → the numpy dtype ``DataType.to_numpy()`` gives for each.
MLFLOW_COLUMN_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "boolean": "bool",
        "integer": "int32",
        "long": "int64",
        "float": "float32",
        "double": "float64",
        "string": "str",
        "binary": "bytes",
        "datetime": "datetime64[ns]",
    }
)

_BY_NUMPY = {dtype.numpy: dtype for dtype in DTYPES}
_BY_V2 = {dtype.v2: dtype for dtype in DTYPES}
_BY_ONNX = {dtype.onnx: dtype for dtype in DTYPES}


def _entry(table: Mapping[str, Dtype], key: str, *, problem: str, fix: str) -> Dtype:
    """``table[key]``, or an error that says ``problem`` and lists the keys in ``fix``."""
    if key not in table:
        raise UnsupportedError(problem, hint=f"{fix} {', '.join(sorted(table))}")
    return table[key]


def by_numpy(dtype: npt.DTypeLike, *, where: str) -> Dtype:
    """The table entry of a numpy dtype; every string, bytes and object dtype is ``object`` (``BYTES``).

    Args:
        dtype: a numpy dtype or anything ``np.dtype`` accepts.
        where: what has the dtype, for the error (``column 'age'``).

    Raises:
        UnsupportedError: no runtime has a type for ``dtype`` (datetime64, complex, ...).
    """
    resolved = np.dtype(dtype)
    name = "object" if resolved.kind in ("U", "S", "O") else resolved.name
    problem = f"{where} has dtype {resolved.name}, which has no Triton/V2 type"
    return _entry(_BY_NUMPY, name, problem=problem, fix="cast it to one of")


def by_v2(datatype: str, *, where: str) -> Dtype:
    """The table entry of a KServe V2 datatype (``FP32``).

    Args:
        datatype: the V2 datatype name.
        where: what has the datatype, for the error.

    Raises:
        UnsupportedError: ``datatype`` is not a V2 datatype that the runtimes serve (``BF16``, a typo).
    """
    problem = f"{where} has datatype {datatype!r}, which is not a V2 datatype the runtimes serve"
    return _entry(_BY_V2, datatype, problem=problem, fix="use one of")


def by_onnx(element_type: str, *, where: str) -> Dtype:
    """The table entry of an ONNX element type as onnxruntime spells it (``float`` in ``tensor(float)``).

    Args:
        element_type: the name inside onnxruntime's ``tensor(...)``.
        where: what has the type, for the error.

    Raises:
        UnsupportedError: no runtime has a type for ``element_type`` (complex64, bfloat16, ...).
    """
    problem = f"{where} has dtype {element_type}, which has no Triton/V2 type"
    return _entry(_BY_ONNX, element_type, problem=problem, fix="export the model with one of")


def mlflow_column_dtype(type_name: str, *, where: str) -> np.dtype[Any]:
    """The numpy dtype MLflow gives a column type: ``double`` → float64, ``string`` → ``<U0``.

    Args:
        type_name: the MLflow column type (a ``DataType`` name), or how a non-scalar type prints.
        where: the column, for the error.

    Raises:
        UnsupportedError: ``type_name`` is not a scalar MLflow column type (an array, object or map).
    """
    if type_name not in MLFLOW_COLUMN_TYPES:
        raise UnsupportedError(
            f"{where} has MLflow type {type_name}, which is not a scalar column type",
            hint=f"log the model with scalar column types ({', '.join(MLFLOW_COLUMN_TYPES)})",
        )
    return np.dtype(MLFLOW_COLUMN_TYPES[type_name])
