"""Read a job's input: JSONL, CSV or Parquet files, one file or a folder of them, as rows (dicts).

A Parquet file stays in Arrow columns (:class:`ParquetRows`): rows are made only for the slices asked for,
and feature columns go into requests as one array, without a Python object per value.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from batch_jobs.uris import Storage, StoredObject
from serving_core.errors import AiServingError, InvalidInputError, NotFoundError

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}

if TYPE_CHECKING:
    import pyarrow as pa

Row = dict[str, Any]
Rows = Sequence[Row]


@dataclass(frozen=True)
class InputFile:
    """One input file and the format it is read in."""

    key: str
    size: int
    version: str
    format: str


def _format_of(key: str, requested: str) -> str | None:
    if requested != "auto":
        return requested
    suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return _SUFFIXES.get(suffix)


def _hidden(key: str) -> bool:
    # Markers (_SUCCESS), temporaries (.name.partial) and checksum files sit beside data files.
    return any(part.startswith(("_", ".")) for part in key.split("/"))


def input_files(storage: Storage, input_format: str = "auto") -> list[InputFile]:
    """The data files of an input location, sorted by key (so the same input always gives the same order).

    Raises:
        InvalidInputError: an unknown format, or files whose format cannot be told from their suffix.
        NotFoundError: nothing is stored at the location.
    """
    if input_format not in ("auto", *FORMATS):
        raise InvalidInputError(f"input format {input_format!r} is not known", hint=f"use auto or one of {FORMATS}")
    stored: list[StoredObject] = [entry for entry in storage.list() if not _hidden(entry.key)]
    if not stored:
        raise NotFoundError(
            f"input {storage.uri} holds no files", hint="check the input URI: a file, or a folder/prefix of files"
        )
    files, unknown = [], []
    for entry in stored:
        found = _format_of(entry.key, input_format)
        if found is None:
            unknown.append(entry.key)
        else:
            files.append(InputFile(entry.key, entry.size, entry.version, found))
    if unknown:
        raise InvalidInputError(
            f"input {storage.uri} holds files of no known format: {', '.join(unknown[:5])}",
            hint="name files *.jsonl, *.csv or *.parquet, or pass the input format",
        )
    return files


def _jsonl_rows(data: bytes, key: str) -> list[Row]:
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInputError(
                f"{key} line {number} is not JSON: {error}", hint="one JSON object per line"
            ) from error
        if not isinstance(value, dict):
            raise InvalidInputError(
                f"{key} line {number} is a {type(value).__name__}, not a JSON object",
                hint='write each item as an object of input values, e.g. {"input_0": [1.0, 2.0]}',
            )
        rows.append(value)
    return rows


def _csv_value(text: str) -> Any:
    """Numbers as numbers: CSV has no types, and a numeric model input must not receive text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def _csv_rows(data: bytes) -> list[Row]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    return [{column: _csv_value(value) for column, value in row.items()} for row in reader]


class ParquetRows(Sequence[Row]):
    """The rows of a Parquet file, kept as its Arrow table."""

    def __init__(self, table: pa.Table) -> None:
        """Hold ``table``; rows are made from it when asked for."""
        self.table = table
        self._columns: dict[tuple[str, ...], list[_ColumnChunks] | None] = {}

    def __len__(self) -> int:
        """The number of rows."""
        return int(self.table.num_rows)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        """One row, or the rows of a slice, as dicts."""
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            rows: list[Row] = self.table.slice(start, max(0, stop - start)).to_pylist()
            return rows[::step]
        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        row: Row = self.table.slice(index % len(self), 1).to_pylist()[0]
        return row

    def matrix(self, columns: tuple[str, ...], start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Rows ``start:stop`` of ``columns`` side by side as one array, or None when rows cannot go as one.

        None when the file has other columns as well, when a column is not integer or floating point (a
        boolean or text value is sent as itself), or when a column holds a null (the row is a per-item error).
        Integer columns stay integers; with any floating-point column all become float64, the values that
        Python floats of the rows would hold. The columns are checked and converted once per file; each call
        copies only its rows (converting the whole file at once held the first request back by 75-165 ms).
        """
        if columns not in self._columns:
            self._columns[columns] = self._numeric_columns(columns)
        chosen = self._columns[columns]
        if chosen is None:
            return None
        stop = len(self) if stop is None else stop
        block = np.column_stack([_rows_of_column(column, start, stop) for column in chosen])
        return block.astype(np.float64, copy=False) if block.dtype.kind == "f" else block

    def _numeric_columns(self, columns: tuple[str, ...]) -> list[_ColumnChunks] | None:
        import pyarrow as pa

        if sorted(self.table.column_names) != sorted(columns):
            return None
        chosen = [self.table.column(name) for name in columns]
        if any(not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)) for column in chosen):
            return None
        if any(column.null_count for column in chosen):
            return None
        dtypes = [column.type.to_pandas_dtype() for column in chosen]
        # Signed and unsigned 64-bit integers together promote to float64, which would round large integers.
        if np.result_type(*dtypes).kind == "f" and not any(np.dtype(dtype).kind == "f" for dtype in dtypes):
            return None
        return [_ColumnChunks(column) for column in chosen]


class _ColumnChunks:
    """An Arrow column's chunks as numpy arrays without a copy (numeric, no nulls), and where each starts."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.arrays: list[np.ndarray] = [chunk.to_numpy(zero_copy_only=True) for chunk in column.chunks if len(chunk)]
        self.starts = np.cumsum([0, *map(len, self.arrays)])[:-1].tolist()
        self.dtype: np.dtype[Any] = np.dtype(column.type.to_pandas_dtype())


def _rows_of_column(column: _ColumnChunks, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of one column: a view when they lie in one chunk (the common case)."""
    first = bisect.bisect_right(column.starts, start) - 1
    pieces: list[np.ndarray] = []
    while start < stop:
        array, offset = column.arrays[first], column.starts[first]
        piece = array[start - offset : stop - offset]
        pieces.append(piece)
        start += len(piece)
        first += 1
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=column.dtype)


def _parquet_rows(data: bytes) -> ParquetRows:
    import pyarrow.parquet as pq

    return ParquetRows(pq.read_table(io.BytesIO(data)))


def read_rows(storage: Storage, file: InputFile) -> Rows:
    """Every row of one input file, in file order.

    Raises:
        InvalidInputError: the file does not parse as its format.
        NotFoundError, PermissionDeniedError, UnreachableError: the storage could not give the file.
    """
    data = storage.read(file.key)
    try:
        if file.format == "jsonl":
            return _jsonl_rows(data, file.key)
        if file.format == "csv":
            return _csv_rows(data)
        return _parquet_rows(data)
    except AiServingError:
        raise
    except Exception as error:  # pyarrow, csv and codec errors: all mean "not this format"
        raise InvalidInputError(
            f"{storage.uri} {file.key} is not readable as {file.format}: {error}",
            hint="check the file or pass the right input format",
        ) from error


class RowCache:
    """The rows of the input file read last: consecutive shards mostly read the same file."""

    def __init__(self, storage: Storage) -> None:
        """Read from ``storage``."""
        self.storage = storage
        self.key: str | None = None
        self.rows: Rows = []

    def rows_of(self, file: InputFile) -> Rows:
        """Every row of ``file`` (read again only when another file was read since)."""
        if self.key != file.key:
            self.rows, self.key = read_rows(self.storage, file), file.key
        return self.rows
