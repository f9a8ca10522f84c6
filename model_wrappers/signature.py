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

from serving_core.dtypes import by_numpy, mlflow_column_dtype

# Every response asks for its outputs' datatypes; the table lookup (dtype names) costs more than a 1-row encode.
_V2_DATATYPES: dict[np.dtype[Any], str] = {}


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name of a numpy dtype; text, bytes, objects and datetimes are ``BYTES``.

    Raises:
        UnsupportedError: the dtype has no V2 datatype (complex, timedelta, ...).
    """
    datatype = _V2_DATATYPES.get(dtype)
    if datatype is None:
        # The wrapper sends datetimes as ISO-8601 strings (see encode), so they need no entry of their own.
        datatype = "BYTES" if dtype.kind == "M" else by_numpy(dtype, where="the tensor").v2
        _V2_DATATYPES[dtype] = datatype
    return datatype


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
    # Scalar column types are DataType members; arrays, objects and maps have no name and print as themselves.
    type_name = getattr(spec.type, "name", None) or str(spec.type)
    dtype = mlflow_column_dtype(type_name, where=f"column {spec.name or position!r}")
    datatype = v2_datatype(dtype)
    named = spec.name is not None
    return FieldSpec(
        name=str(spec.name) if named else f"{prefix}_{position}",
        datatype=datatype,
        shape=(-1,),
        numpy_dtype=np.dtype("object") if dtype.kind in ("U", "S") else dtype,
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
