"""A Parquet file's rows stay Arrow columns: slices become dicts, feature columns one array and one request body."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pytest

from batch_jobs.readers import ParquetRows
from batch_jobs.schema import encoder_for, parse_metadata

PACKED = parse_metadata({"name": "m", "inputs": [{"name": "input_0", "datatype": "FP64", "shape": [-1, 3]}]})
TABLE = pa.table({"b": [1, 2, 3], "a": [0.5, -1.25, 1e-7], "c": [7, 8, 9]})


def test_rows_are_made_for_the_slices_asked_for() -> None:
    rows = ParquetRows(TABLE)
    assert len(rows) == 3
    assert rows[1:] == [{"b": 2, "a": -1.25, "c": 8}, {"b": 3, "a": 1e-7, "c": 9}]
    assert rows[-1] == {"b": 3, "a": 1e-7, "c": 9}
    assert rows[::2] == [{"b": 1, "a": 0.5, "c": 7}, {"b": 3, "a": 1e-7, "c": 9}]
    with pytest.raises(IndexError):
        rows[3]


def test_feature_columns_become_one_request_body_equal_to_the_rows_one() -> None:
    rows = ParquetRows(TABLE)
    encoder = encoder_for(PACKED, rows[:2], "in.parquet")
    matrix = rows.matrix(encoder.columns)
    assert matrix is not None
    assert matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, [[1, 0.5, 7], [2, -1.25, 8], [3, 1e-7, 9]])
    np.testing.assert_array_equal(rows.matrix(encoder.columns, 1, 2), [[2, -1.25, 8]])
    from_rows = encoder.request_of(rows[:])[0]
    from_matrix = orjson.loads(encoder.body_of(matrix))
    assert from_matrix == from_rows
    assert from_matrix["inputs"][0]["shape"] == [3, 3]


def test_rows_across_arrow_chunks_come_together() -> None:
    rows = ParquetRows(pa.concat_tables([TABLE, TABLE.slice(0, 2)]))
    assert rows.table.column("a").num_chunks == 2
    matrix = rows.matrix(("a", "b", "c"), 2, 5)
    np.testing.assert_array_equal(matrix, [[1e-7, 3, 9], [0.5, 1, 7], [-1.25, 2, 8]])
    empty = rows.matrix(("a", "b", "c"), 3, 3)
    assert empty is not None
    assert empty.shape == (0, 3)


def test_integer_columns_stay_integers() -> None:
    rows = ParquetRows(pa.table({"x": [1, 2], "y": [3, 4], "z": [5, 6]}))
    encoder = encoder_for(PACKED, rows[:], "in.parquet")
    matrix = rows.matrix(encoder.columns)
    assert matrix is not None
    assert matrix.dtype.kind == "i"
    assert encoder.body_of(matrix) == orjson.dumps(encoder.request_of(rows[:])[0])


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"x": [1.0, None], "y": [3.0, 4.0], "z": [5.0, 6.0]}),  # a null: that row becomes an error
        pa.table({"x": [True, False], "y": [3.0, 4.0], "z": [5.0, 6.0]}),  # booleans are sent as themselves
        pa.table({"x": ["1", "2"], "y": [3.0, 4.0], "z": [5.0, 6.0]}),
        pa.table(
            {"x": [2**63, 1], "y": [-1, 4], "z": [5, 6]},
            schema=pa.schema([("x", pa.uint64()), ("y", pa.int64()), ("z", pa.int64())]),
        ),  # would round in float64
    ],
)
def test_columns_that_cannot_go_as_one_array_give_no_matrix(table: pa.Table) -> None:
    assert ParquetRows(table).matrix(("x", "y", "z")) is None


def test_a_file_with_other_columns_gives_no_matrix() -> None:
    assert ParquetRows(TABLE).matrix(("a", "b")) is None


def test_an_encoder_of_named_inputs_refuses_an_array() -> None:
    named = parse_metadata({"name": "m", "inputs": [{"name": "a", "datatype": "FP64", "shape": [-1]}]})
    encoder = encoder_for(named, [{"a": 1.0}], "in.jsonl")
    with pytest.raises(ValueError, match=r"shape \(2, 1\) is not rows of the columns \[\]"):
        encoder.body_of(np.zeros((2, 1)))
