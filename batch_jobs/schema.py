"""Match input rows to the model's V2 inputs (from ``GET /v2/models/NAME``) and build request tensors.

A row maps onto the model's inputs in one of two ways, chosen once from the first rows:

- ``named``: the row has a key per model input (columns of a column signature, or named tensors);
- ``packed``: the model has one tensor input of shape ``[-1, k]`` and each row holds ``k`` scalar columns
  (a CSV or Parquet row of features), packed in column order.

Each later row is checked the same way; a row that does not fit becomes a per-item error.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from serving_core.errors import InvalidInputError

_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


@dataclass(frozen=True)
class ModelInput:
    """One V2 input of the model."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def row_width(self) -> int:
        """Values per row: the product of the dimensions after the row dimension (1 for a column)."""
        return math.prod(dim for dim in self.shape[1:]) if len(self.shape) > 1 else 1


@dataclass(frozen=True)
class ModelMetadata:
    """The model's name and inputs as its V2 metadata lists them."""

    name: str
    inputs: tuple[ModelInput, ...]


def parse_metadata(document: dict[str, Any]) -> ModelMetadata:
    """Read the V2 metadata document.

    Raises:
        InvalidInputError: the document lists no inputs (the model has no signature to check rows against).
    """
    inputs = tuple(
        ModelInput(str(entry["name"]), str(entry["datatype"]), tuple(int(dim) for dim in entry.get("shape", [-1])))
        for entry in document.get("inputs") or []
    )
    if not inputs:
        raise InvalidInputError(
            f"model {document.get('name')!r} lists no inputs in its V2 metadata",
            hint="serve the model with a signature (log it with infer_signature) so rows can be checked",
        )
    return ModelMetadata(str(document.get("name", "")), inputs)


def _describe(metadata: ModelMetadata) -> str:
    return ", ".join(f"{field.name} ({field.datatype} {list(field.shape)})" for field in metadata.inputs)


_NUMBER_TYPES = frozenset({int, float, bool})
_TEXT_TYPES = frozenset({str})


class _FieldCheck:
    """The checks of one model input, worked out once: they run for every item of a job."""

    def __init__(self, field: ModelInput) -> None:
        self.field = field
        self.width = field.row_width
        numeric = field.datatype in _NUMERIC
        self.allowed = _NUMBER_TYPES if numeric else _TEXT_TYPES
        self.kind = field.datatype if numeric else f"{field.datatype} (text)"

    def __call__(self, value: Any) -> list[Any]:
        """The row's values for the input as a flat list, or ``ValueError`` naming what is wrong.

        The checks are set operations on the values' exact types.
        """
        flat = value if type(value) is list else [value]
        types = set(map(type, flat))
        if list in types:
            # Nested lists (a [-1, 2, 2] input written as rows of rows) are flattened.
            flat = _flatten(flat)
            types = set(map(type, flat))
        if len(flat) != self.width:
            raise ValueError(f"{self.field.name} needs {self.width} value(s) per row, got {len(flat)}")
        if not types <= self.allowed:
            bad = next(item for item in flat if type(item) not in self.allowed)
            raise ValueError(f"{self.field.name} is {self.kind} but the row holds {bad!r}")
        return flat


def _flatten(values: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in values:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


class RowEncoder:
    """Turns rows into V2 request tensors for one model."""

    def __init__(self, metadata: ModelMetadata, mode: str, columns: tuple[str, ...]) -> None:
        """Use ``mode`` (named or packed); ``columns`` are the packed columns in order (two or more)."""
        self.metadata = metadata
        self.mode = mode
        self.columns = columns
        self._pick = operator.itemgetter(*columns) if len(columns) > 1 else None
        self._checks = tuple(_FieldCheck(field) for field in metadata.inputs)

    def values(self, row: dict[str, Any]) -> list[list[Any]]:
        """The row's flat values per model input.

        Raises:
            ValueError: the row does not fit the model's inputs (the message says how).
        """
        if self._pick is not None:
            try:
                picked = self._pick(row)
            except KeyError:
                picked = ()
            if len(picked) != len(self.columns) or len(row) != len(self.columns):
                raise ValueError(f"row has columns {sorted(row)}, expected {list(self.columns)}")
            return [self._checks[0](list(picked))]
        missing = [field.name for field in self.metadata.inputs if field.name not in row]
        if missing:
            raise ValueError(f"row lacks input(s) {missing}")
        return [check(row[check.field.name]) for check in self._checks]

    def request_of(self, rows: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[int, str]]:
        """A V2 infer request body for the rows that fit the model's inputs, and why each other row does not.

        Returns:
            The request (its tensors hold the fitting rows in order) and ``{position in rows: reason}``.
        """
        if self._pick is not None:
            packed = self._packed(self._pick, rows)
            if packed is not None:
                return self._request(packed, len(rows)), {}
        data: list[list[Any]] = [[] for _ in self._checks]
        bad: dict[int, str] = {}
        for position, row in enumerate(rows):
            try:
                values = self.values(row)
            except ValueError as error:
                bad[position] = str(error)
                continue
            for tensor, row_values in zip(data, values, strict=True):
                tensor.extend(row_values)
        return self._request(data, len(rows) - len(bad)), bad

    def _packed(
        self, pick: Callable[[dict[str, Any]], tuple[Any, ...]], rows: Sequence[dict[str, Any]]
    ) -> list[list[Any]] | None:
        """The one tensor's data of rows of feature columns, all checked at once; ``None`` when one does not fit.

        The common case of a CSV or Parquet job, where checking and copying each row in Python would cost
        the client as much as the request itself. A row that does not fit sends the batch row by row.
        """
        if set(map(len, rows)) - {len(self.columns)}:
            return None
        try:
            picked = list(map(pick, rows))
        except KeyError:
            return None
        data = list(itertools.chain.from_iterable(picked))
        if not set(map(type, data)) <= self._checks[0].allowed:
            return None
        return [data]

    def body_of(self, matrix: np.ndarray) -> bytes:
        """The request body for rows of the packed columns given as one array (rows x columns).

        The array goes to ``orjson`` whole, so no Python object is made per value: a Parquet job's common case.

        Raises:
            ValueError: the encoder does not pack columns, or the array is not one row per item of them.
        """
        if self.mode != "packed" or matrix.ndim != 2 or matrix.shape[1] != len(self.columns):
            raise ValueError(f"an array of shape {matrix.shape} is not rows of the columns {list(self.columns)}")
        request = self._request([matrix.reshape(-1)], len(matrix))
        return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)

    def _request(self, data: Sequence[Any], rows: int) -> dict[str, Any]:
        tensors = [
            {"name": field.name, "datatype": field.datatype, "data": values,
             "shape": [rows, *field.shape[1:]] if len(field.shape) > 1 else [rows]}
            for field, values in zip(self.metadata.inputs, data, strict=True)
        ]  # fmt: skip
        return {"inputs": tensors}


def encoder_for(metadata: ModelMetadata, first_rows: Sequence[dict[str, Any]], where: str) -> RowEncoder:
    """Choose how rows map onto the model's inputs and check the first rows against it.

    Raises:
        InvalidInputError: the rows' columns or values do not match the model's signature; the message
            names the columns, the model's inputs and the first row that does not fit.
    """
    if not first_rows:
        raise InvalidInputError(f"{where} has no rows to check", hint="check the input")
    columns = tuple(first_rows[0])
    names = {field.name for field in metadata.inputs}
    if names <= set(columns):
        encoder = RowEncoder(metadata, "named", ())
    elif len(metadata.inputs) == 1 and metadata.inputs[0].row_width == len(columns) > 1:
        encoder = RowEncoder(metadata, "packed", columns)
    else:
        raise InvalidInputError(
            f"{where}: the rows' columns {list(columns)} do not match model {metadata.name!r}, "
            f"whose inputs are {_describe(metadata)}",
            hint="name each column after a model input, or give one column per feature of a single tensor input",
        )
    for number, row in enumerate(first_rows, start=1):
        try:
            encoder.values(row)
        except ValueError as error:
            raise InvalidInputError(
                f"{where} row {number} does not match model {metadata.name!r}: {error}",
                hint=f"the model's inputs: {_describe(metadata)}",
            ) from error
    return encoder
