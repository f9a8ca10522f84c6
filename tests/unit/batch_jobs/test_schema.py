"""Rows against the model's V2 inputs: named or packed, mismatches named before any request."""

from __future__ import annotations

import pytest

from batch_jobs.client import Outcome, OutputColumn, output_columns
from batch_jobs.schema import ModelInput, ModelMetadata, encoder_for, parse_metadata
from serving_core.errors import InvalidInputError

TENSOR = parse_metadata({"name": "iris", "inputs": [{"name": "input_0", "datatype": "FP32", "shape": [-1, 3]}]})
COLUMNS = ModelMetadata(
    "city", (ModelInput("city", "BYTES", (-1,)), ModelInput("age", "INT64", (-1,)), ModelInput("income", "FP64", (-1,)))
)


def test_named_rows_become_one_tensor_per_input() -> None:
    encoder = encoder_for(COLUMNS, [{"city": "Oslo", "age": 30, "income": 1.5}], "in.jsonl")
    rows = [{"city": "Oslo", "age": 30, "income": 1.5}, {"income": 2.0, "age": 41, "city": "Lima"}]
    assert encoder.request_of(rows) == ({
        "inputs": [
            {"name": "city", "datatype": "BYTES", "shape": [2], "data": ["Oslo", "Lima"]},
            {"name": "age", "datatype": "INT64", "shape": [2], "data": [30, 41]},
            {"name": "income", "datatype": "FP64", "shape": [2], "data": [1.5, 2.0]},
        ]
    }, {})  # fmt: skip


def test_feature_columns_pack_into_a_single_tensor_input_in_column_order() -> None:
    encoder = encoder_for(TENSOR, [{"a": 1.0, "b": 2, "c": 3.5}], "in.csv")
    assert encoder.request_of([{"a": 1.0, "b": 2, "c": 3.5}, {"c": 6.0, "a": 4, "b": 5.0}]) == (
        {"inputs": [{"name": "input_0", "datatype": "FP32", "shape": [2, 3], "data": [1.0, 2, 3.5, 4, 5.0, 6.0]}]},
        {},
    )


def test_rows_that_do_not_fit_are_left_out_of_the_request_with_their_reason() -> None:
    encoder = encoder_for(TENSOR, [{"a": 1.0, "b": 2, "c": 3.5}], "in.csv")
    rows = [{"a": 1.0, "b": 2, "c": 3.5}, {"a": 1.0, "b": "x", "c": 3.5}, {"a": 1.0, "b": 2}, {"a": 7, "b": 8, "c": 9}]
    assert encoder.request_of(rows) == (
        {"inputs": [{"name": "input_0", "datatype": "FP32", "shape": [2, 3], "data": [1.0, 2, 3.5, 7, 8, 9]}]},
        {1: "input_0 is FP32 but the row holds 'x'", 2: "row has columns ['a', 'b'], expected ['a', 'b', 'c']"},
    )


def test_a_list_value_fills_a_tensor_input_by_name() -> None:
    encoder = encoder_for(TENSOR, [{"input_0": [1.0, 2.0, 3.0]}], "in.jsonl")
    assert encoder.values({"input_0": [4.0, 5.0, 6.0]}) == [[4.0, 5.0, 6.0]]


@pytest.mark.parametrize(
    ("metadata", "rows", "message"),
    [
        (TENSOR, [{"a": 1.0, "b": 2.0}],
         r"columns \['a', 'b'\] do not match model 'iris', whose inputs are input_0 \(FP32 \[-1, 3\]\)"),
        (TENSOR, [{"input_0": [1.0, 2.0, 3.0]}, {"input_0": [1.0, "x", 3.0]}],
         "row 2 does not match model 'iris': input_0 is FP32 but the row holds 'x'"),
        (TENSOR, [{"input_0": [1.0, 2.0]}], "row 1 .* input_0 needs 3 value"),
        (COLUMNS, [{"city": 7, "age": 30, "income": 1.0}], "city is BYTES \\(text\\) but the row holds 7"),
    ],
)  # fmt: skip
def test_rows_that_do_not_fit_the_signature_are_refused(
    metadata: ModelMetadata, rows: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        encoder_for(metadata, rows, "s3://jobs/in/a.jsonl")


def test_metadata_without_inputs_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="lists no inputs"):
        parse_metadata({"name": "nosig", "inputs": []})


def test_outputs_split_per_row() -> None:
    answer = {
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
            {"name": "proba", "datatype": "FP32", "shape": [2, 2], "data": [0.1, 0.9, 0.8, 0.2]},
        ]
    }
    columns = output_columns(answer, 2)
    assert columns == (
        OutputColumn("label", [1, 0], width=1, scalar=True),
        OutputColumn("proba", [0.1, 0.9, 0.8, 0.2], width=2, scalar=False),
    )
    outcome = Outcome(range(7, 9), columns)
    assert [outcome.outputs_of(position) for position in range(2)] == [
        {"label": 1, "proba": [0.1, 0.9]},
        {"label": 0, "proba": [0.8, 0.2]},
    ]
    with pytest.raises(ValueError, match="3 values for 2 rows"):
        output_columns({"outputs": [{"name": "y", "shape": [3], "data": [1, 2, 3]}]}, 2)
