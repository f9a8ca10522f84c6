"""Request bodies (V1 JSON, V2 REST and gRPC) → named numpy arrays checked against the signature.

Every request becomes ``{field name: array}`` with rows on axis 0, so requests from several
callers can be stacked into one batch before the pyfunc sees them. A request that does not
match the signature raises :class:`InvalidInputError` naming the field and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from kserve.protocol.infer_type import InferInput, InferRequest

from model_wrappers.signature import FieldSpec, InputKind, ModelIO
from serving_core.errors import InvalidInputError

Arrays = dict[str, np.ndarray[Any, Any]]


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(dim) for dim in shape) + "]"


def _check_shape(field: FieldSpec, shape: Sequence[int]) -> None:
    expected = field.shape
    # A column may come as [N] or [N, 1].
    if len(expected) == 1 and len(shape) == 2 and shape[1] == 1:
        return
    fits = len(shape) == len(expected) and all(want in (-1, got) for want, got in zip(expected, shape, strict=True))
    if not fits:
        raise InvalidInputError(
            f"input {field.name!r} has shape {_shape_text(shape)}, expected {_shape_text(expected)} (-1 = any size)",
            hint="send the shape from GET /v2/models/NAME",
        )


def _convert_text(field: FieldSpec, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Strings as ``str``, binary as ``bytes``, datetimes parsed: what the pyfunc's schema enforcement wants."""
    if field.text_kind == "datetime":
        try:
            return np.asarray(array, dtype="datetime64[ns]")
        except ValueError as error:
            raise InvalidInputError(
                f"input {field.name!r} holds a value that is not an ISO-8601 datetime: {error}"
            ) from error
    if field.text_kind == "string":
        convert: Any = lambda item: item.decode("utf-8") if isinstance(item, bytes) else str(item)  # noqa: E731
    elif field.text_kind == "binary":
        convert = lambda item: item if isinstance(item, bytes) else str(item).encode("utf-8")  # noqa: E731
    else:
        return array
    converted = np.empty(array.shape, dtype=object)
    converted.flat[:] = [convert(item) for item in array.flat]
    return converted


def _typed(field: FieldSpec, values: Any) -> np.ndarray[Any, Any]:
    """Values given without a datatype (V1 JSON) as an array of the field's dtype."""
    dtype = np.dtype("object") if field.datatype == "BYTES" else field.numpy_dtype
    try:
        array = np.asarray(values, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"input {field.name!r} holds values that are not {field.datatype}: {error}",
            hint=f"send {field.datatype} values shaped {_shape_text(field.shape)}",
        ) from error
    _check_shape(field, array.shape)
    return _convert_text(field, array)


@dataclass(frozen=True)
class V2Tensor:
    """One V2 input as received (REST JSON or gRPC), its data turned into an array only on demand."""

    name: str
    datatype: str
    shape: list[int]
    to_numpy: Callable[[], np.ndarray[Any, Any]]

    @classmethod
    def from_infer_input(cls, infer_input: InferInput) -> V2Tensor:
        """Wrap KServe's decoded input (REST via KServe's router, or gRPC)."""
        return cls(infer_input.name, infer_input.datatype, list(infer_input.shape), infer_input.as_numpy)


def _v2_array(tensor: V2Tensor) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(tensor.to_numpy())
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"input {tensor.name!r}: its data does not fit shape {_shape_text(tensor.shape)} "
            f"and datatype {tensor.datatype}: {error}"
        ) from error


def _check_rows(arrays: Arrays) -> Arrays:
    counts = {name: (array.shape[0] if array.ndim else 1) for name, array in arrays.items()}
    if len(set(counts.values())) > 1:
        raise InvalidInputError(
            f"inputs disagree on the number of rows: {counts}", hint="send the same number of rows in every input"
        )
    return arrays


def _check_names(io: ModelIO, names: Sequence[str]) -> None:
    def expected() -> str:  # only for the message: this check runs on every request
        return ", ".join(field.name for field in io.inputs)

    for name in names:
        if io.input_named(name) is None:
            raise InvalidInputError(f"input {name!r} is not in the model signature; expected inputs: {expected()}")
    if len(set(names)) != len(names):
        duplicates = {name for name in names if list(names).count(name) > 1}
        raise InvalidInputError(f"input {sorted(duplicates)[0]!r} is given more than once")
    for field in io.inputs:
        if field.required and field.name not in names:
            raise InvalidInputError(f"input {field.name!r} is missing; expected inputs: {expected()}")


def decode_v2(request: InferRequest, io: ModelIO) -> Arrays:
    """Check a V2 request decoded by KServe (REST or gRPC) against the signature and return its arrays.

    Raises:
        InvalidInputError: see :func:`decode_v2_tensors`.
    """
    return decode_v2_tensors([V2Tensor.from_infer_input(item) for item in request.inputs], io)


def decode_v2_tensors(tensors: Sequence[V2Tensor], io: ModelIO) -> Arrays:
    """Check V2 inputs against the signature and return their arrays.

    Raises:
        InvalidInputError: an unknown or missing input, a wrong datatype or shape, or data that does not fit.
    """
    if not tensors:
        raise InvalidInputError("the request has no inputs", hint="send at least one entry in 'inputs'")
    if io.kind is InputKind.UNSPECIFIED:
        return _check_rows({tensor.name: _v2_array(tensor) for tensor in tensors})
    _check_names(io, [tensor.name for tensor in tensors])
    arrays: Arrays = {}
    for tensor in tensors:
        field = io.input_named(tensor.name)
        assert field is not None  # _check_names saw to it
        if tensor.datatype != field.datatype:
            raise InvalidInputError(
                f"input {field.name!r} has datatype {tensor.datatype}, expected {field.datatype}",
                hint="send the datatype from GET /v2/models/NAME",
            )
        _check_shape(field, tensor.shape)
        array = _v2_array(tensor)
        if len(field.shape) == 1 and array.ndim == 2:
            array = array.reshape(-1)
        arrays[field.name] = _convert_text(field, array)
    return _check_rows(arrays)


def _records_to_columns(io: ModelIO, records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    names = sorted({key for record in records for key in record})
    _check_names(io, names)
    columns: dict[str, list[Any]] = {}
    for field in io.inputs:
        present = [field.name in record for record in records]
        if any(present) and not all(present):
            raise InvalidInputError(f"input {field.name!r} is missing from instance {present.index(False)}")
        if all(present):
            columns[field.name] = [record[field.name] for record in records]
    return columns


def _v1_columns(io: ModelIO, instances: Any) -> dict[str, Any]:
    """V1 ``instances`` (rows) or ``inputs`` (columns) → values per input name."""
    if isinstance(instances, Mapping):
        _check_names(io, list(instances))
        return dict(instances)
    if not isinstance(instances, list) or not instances:
        raise InvalidInputError("'instances' must be a non-empty list of rows")
    if io.kind in (InputKind.COLUMNS, InputKind.NAMED_TENSORS) and all(isinstance(row, Mapping) for row in instances):
        return _records_to_columns(io, instances)
    if io.kind is InputKind.COLUMNS:
        width = len(io.inputs)
        if not all(isinstance(row, list) and len(row) == width for row in instances):
            raise InvalidInputError(
                f"each instance must be an object keyed by column or a list of {width} values "
                f"({', '.join(field.name for field in io.inputs)})"
            )
        return {field.name: [row[index] for row in instances] for index, field in enumerate(io.inputs)}
    if io.kind is InputKind.NAMED_TENSORS:
        raise InvalidInputError(
            "each instance must be an object keyed by input name: " + ", ".join(field.name for field in io.inputs)
        )
    name = io.inputs[0].name if io.inputs else "input_0"
    return {name: instances}


def decode_v1(body: Any, io: ModelIO) -> Arrays:
    """Check a V1 body (``{"instances": [...]}`` or ``{"inputs": ...}``) and return its arrays.

    Raises:
        InvalidInputError: the body lacks instances, or a value does not fit its input.
    """
    if not isinstance(body, Mapping) or not ("instances" in body or "inputs" in body):
        raise InvalidInputError("a V1 request needs a JSON object with 'instances' (rows) or 'inputs' (columns)")
    values = _v1_columns(io, body["instances"] if "instances" in body else body["inputs"])
    if io.kind is InputKind.UNSPECIFIED:
        arrays: Arrays = {}
        for name, column in values.items():
            try:
                arrays[name] = np.asarray(column)
            except ValueError as error:
                raise InvalidInputError(f"input {name!r} is ragged: {error}") from error
        return _check_rows(arrays)
    typed: Arrays = {}
    for field in io.inputs:
        if field.name in values:
            array = _typed(field, values[field.name])
            typed[field.name] = array.reshape(-1) if len(field.shape) == 1 and array.ndim == 2 else array
    return _check_rows(typed)


def row_count(arrays: Arrays) -> int:
    """Rows in a decoded request (axis 0 of any input)."""
    first = next(iter(arrays.values()))
    return int(first.shape[0]) if first.ndim else 1


def stack(parts: Sequence[Arrays]) -> Arrays:
    """Concatenate several callers' arrays along the row axis (same names, dtypes and trailing shapes)."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}


def model_input(io: ModelIO, arrays: Arrays) -> Any:
    """The Python object the pyfunc takes: a DataFrame, one array or a dict of arrays."""
    if io.kind is InputKind.COLUMNS:
        columns = {field.column: arrays[field.name] for field in io.inputs if field.name in arrays}
        return pd.DataFrame(columns)
    if io.kind is InputKind.TENSOR:
        return arrays[io.inputs[0].name]
    if io.kind is InputKind.NAMED_TENSORS:
        return arrays
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    return pd.DataFrame(arrays)
