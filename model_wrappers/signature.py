"""The model's inputs and outputs, read once from its MLflow signature.

V2 (open inference protocol) names every tensor, so unnamed MLflow tensors and
columns get stable positional names (``input_0``, ``output_0``). Every field's
first dimension is the row (batch) dimension, ``-1`` when it is free.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving_core.errors import UnsupportedError

# MLflow column types → (V2 datatype, numpy dtype the model expects).
_COLUMN_TYPES: dict[str, tuple[str, np.dtype[Any]]] = {
    "boolean": ("BOOL", np.dtype("bool")),
    "integer": ("INT32", np.dtype("int32")),
    "long": ("INT64", np.dtype("int64")),
    "float": ("FP32", np.dtype("float32")),
    "double": ("FP64", np.dtype("float64")),
    "string": ("BYTES", np.dtype("object")),
    "binary": ("BYTES", np.dtype("object")),
    "datetime": ("BYTES", np.dtype("datetime64[ns]")),
}

_NUMPY_TO_V2: dict[str, str] = {
    "b": "BOOL",
    "i1": "INT8",
    "i2": "INT16",
    "i4": "INT32",
    "i8": "INT64",
    "u1": "UINT8",
    "u2": "UINT16",
    "u4": "UINT32",
    "u8": "UINT64",
    "f2": "FP16",
    "f4": "FP32",
    "f8": "FP64",
}


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name of a numpy dtype; text, bytes and objects are ``BYTES``."""
    if dtype.kind in ("O", "U", "S", "M"):
        return "BYTES"
    key = "b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}"
    try:
        return _NUMPY_TO_V2[key]
    except KeyError as error:
        raise UnsupportedError(
            f"numpy dtype {dtype} has no V2 datatype", hint="convert the model output to a numeric or string array"
        ) from error


class InputKind(enum.Enum):
    """How the pyfunc wants its input: this decides the Python object we build."""

    COLUMNS = "columns"  # a pandas DataFrame, one V2 input per column
    TENSOR = "tensor"  # one unnamed tensor: a numpy array
    NAMED_TENSORS = "named_tensors"  # a dict of numpy arrays
    UNSPECIFIED = "unspecified"  # no signature: whatever the request holds


@dataclass(frozen=True)
class FieldSpec:
    """One V2 input or output: name, datatype, shape and what the model expects.

    Attributes:
        name: the V2 tensor name.
        datatype: the V2 datatype (``FP64``, ``BYTES``, ...).
        shape: the V2 shape; dimension 0 counts rows, ``-1`` is free.
        numpy_dtype: the dtype handed to the model.
        text_kind: for ``BYTES`` fields: ``string``, ``binary`` or ``datetime``; empty otherwise.
        required: whether a request must carry it.
        column: the DataFrame column key (the name, or the position for unnamed columns).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    numpy_dtype: np.dtype[Any]
    text_kind: str = ""
    required: bool = True
    column: str | int = ""

    def metadata(self) -> dict[str, Any]:
        """The V2 metadata entry (``GET /v2/models/NAME``)."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelIO:
    """The model's inputs and outputs and the input form its pyfunc takes."""

    kind: InputKind
    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...]

    @property
    def batchable(self) -> bool:
        """Requests can be stacked into one predict when every input has a free row dimension."""
        return all(field.shape and field.shape[0] == -1 for field in self.inputs)

    def input_named(self, name: str) -> FieldSpec | None:
        """The input field called ``name``, if the signature has one."""
        return next((field for field in self.inputs if field.name == name), None)


def _column_field(spec: Any, position: int, prefix: str) -> FieldSpec:
    type_name = getattr(spec.type, "name", None)
    if type_name not in _COLUMN_TYPES:
        raise UnsupportedError(
            f"column {spec.name or position!r} has MLflow type {spec.type}, which the wrapper cannot serve",
            hint="log the model with scalar column types (boolean, integer, long, float, double, string, binary)",
        )
    datatype, dtype = _COLUMN_TYPES[type_name]
    named = spec.name is not None
    return FieldSpec(
        name=str(spec.name) if named else f"{prefix}_{position}",
        datatype=datatype,
        shape=(-1,),
        numpy_dtype=dtype,
        text_kind=type_name if datatype == "BYTES" else "",
        required=bool(getattr(spec, "required", True)),
        column=str(spec.name) if named else position,
    )


def _tensor_field(spec: Any, position: int, prefix: str) -> FieldSpec:
    dtype = np.dtype(spec.type)
    text_kind = {"U": "string", "O": "string", "S": "binary"}.get(dtype.kind, "")
    return FieldSpec(
        name=str(spec.name) if spec.name is not None else f"{prefix}_{position}",
        datatype=v2_datatype(dtype),
        shape=tuple(int(dim) for dim in spec.shape),
        numpy_dtype=np.dtype("object") if text_kind else dtype,
        text_kind=text_kind,
        column=str(spec.name) if spec.name is not None else position,
    )


def _fields(schema: Any, prefix: str) -> tuple[FieldSpec, ...]:
    make = _tensor_field if schema.is_tensor_spec() else _column_field
    return tuple(make(spec, position, prefix) for position, spec in enumerate(schema.inputs))


def model_io_from_signature(signature: Any) -> ModelIO:
    """Read inputs, outputs and the input form from an MLflow ``ModelSignature`` (or ``None``).

    Raises:
        UnsupportedError: a column type the wrapper cannot decode (arrays, objects, maps).
    """
    if signature is None or signature.inputs is None:
        outputs = () if signature is None or signature.outputs is None else _fields(signature.outputs, "output")
        return ModelIO(kind=InputKind.UNSPECIFIED, inputs=(), outputs=outputs)
    inputs = _fields(signature.inputs, "input")
    outputs = () if signature.outputs is None else _fields(signature.outputs, "output")
    if not signature.inputs.is_tensor_spec():
        kind = InputKind.COLUMNS
    elif len(inputs) == 1 and not signature.inputs.has_input_names():
        kind = InputKind.TENSOR
    else:
        kind = InputKind.NAMED_TENSORS
    return ModelIO(kind=kind, inputs=inputs, outputs=outputs)
