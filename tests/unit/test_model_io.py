"""Signature → V2 fields, request decoding and response encoding, without a server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kserve.protocol.infer_type import InferInput, InferRequest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema, TensorSpec
from mlflow.types.schema import Array

from model_wrappers.decode import decode_v1, decode_v2, decode_v2_tensors, model_input, row_count, stack
from model_wrappers.encode import prediction_arrays, slice_rows, v1_response, v2_response
from model_wrappers.signature import FieldSpec, InputKind, ModelIO, model_io_from_signature
from serving_core.errors import InvalidInputError, RemoteServiceError, UnsupportedError

TENSOR_SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))]),
    outputs=Schema([TensorSpec(np.dtype("int64"), (-1,))]),
)
COLUMN_SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(DataType.string, "city"),
            ColSpec(DataType.long, "age"),
            ColSpec(DataType.double, "income", required=False),
        ]
    ),
    outputs=Schema([ColSpec(DataType.string)]),
)


def v2_request(*inputs: InferInput) -> InferRequest:
    return InferRequest(model_name="m", infer_inputs=list(inputs))


def test_unnamed_tensor_signature_gets_stable_names() -> None:
    assert model_io_from_signature(TENSOR_SIGNATURE) == ModelIO(
        kind=InputKind.TENSOR,
        inputs=(FieldSpec("input_0", "FP32", (-1, 4), np.dtype("float32"), column=0),),
        outputs=(FieldSpec("output_0", "INT64", (-1,), np.dtype("int64"), column=0),),
    )


def test_column_signature_maps_types_and_optional_columns() -> None:
    io = model_io_from_signature(COLUMN_SIGNATURE)
    assert io == ModelIO(
        kind=InputKind.COLUMNS,
        inputs=(
            FieldSpec("city", "BYTES", (-1,), np.dtype("object"), text_kind="string", column="city"),
            FieldSpec("age", "INT64", (-1,), np.dtype("int64"), column="age"),
            FieldSpec("income", "FP64", (-1,), np.dtype("float64"), required=False, column="income"),
        ),
        outputs=(FieldSpec("output_0", "BYTES", (-1,), np.dtype("object"), text_kind="string", column=0),),
    )
    assert io.batchable


def test_no_signature_is_unspecified() -> None:
    assert model_io_from_signature(None) == ModelIO(kind=InputKind.UNSPECIFIED, inputs=(), outputs=())


def test_array_columns_are_unsupported() -> None:
    signature = ModelSignature(inputs=Schema([ColSpec(Array(DataType.double), "values")]))
    with pytest.raises(UnsupportedError, match="column 'values' has MLflow type"):
        model_io_from_signature(signature)


def test_fixed_batch_dimension_is_not_batchable() -> None:
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (1, 4), "x")]))
    io = model_io_from_signature(signature)
    assert io.kind is InputKind.NAMED_TENSORS
    assert not io.batchable


def test_decode_v2_tensor() -> None:
    io = model_io_from_signature(TENSOR_SIGNATURE)
    arrays = decode_v2(v2_request(InferInput("input_0", [2, 4], "FP32", list(range(8)))), io)
    np.testing.assert_array_equal(arrays["input_0"], np.arange(8, dtype=np.float32).reshape(2, 4))
    assert arrays["input_0"].dtype == np.float32
    assert row_count(arrays) == 2


@pytest.mark.parametrize(
    ("infer_input", "message"),
    [
        (InferInput("x", [1, 4], "FP32", [1, 2, 3, 4]), "input 'x' is not in the model signature"),
        (InferInput("input_0", [1, 4], "INT32", [1, 2, 3, 4]), "has datatype INT32, expected FP32"),
        (InferInput("input_0", [4], "FP32", [1, 2, 3, 4]), "has shape [4], expected [-1, 4]"),
        (InferInput("input_0", [2, 4], "FP32", [1, 2, 3, 4]), "its data does not fit shape [2, 4]"),
    ],
)
def test_decode_v2_mismatches_name_the_field(infer_input: InferInput, message: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        decode_v2(v2_request(infer_input), model_io_from_signature(TENSOR_SIGNATURE))
    assert message in raised.value.message


def test_decode_v2_columns_turn_grpc_bytes_into_str_and_skip_optional() -> None:
    io = model_io_from_signature(COLUMN_SIGNATURE)
    arrays = decode_v2(
        v2_request(InferInput("city", [2], "BYTES", [b"Oslo", b"Lima"]), InferInput("age", [2, 1], "INT64", [3, 4])),
        io,
    )
    assert arrays["city"].tolist() == ["Oslo", "Lima"]
    assert arrays["age"].shape == (2,)
    frame = model_input(io, arrays)
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"city": ["Oslo", "Lima"], "age": np.array([3, 4])}))


def test_decode_v2_rejects_rows_that_disagree() -> None:
    io = model_io_from_signature(COLUMN_SIGNATURE)
    with pytest.raises(InvalidInputError, match="inputs disagree on the number of rows"):
        decode_v2(v2_request(InferInput("city", [1], "BYTES", ["a"]), InferInput("age", [2], "INT64", [1, 2])), io)


def test_decode_v1_records_and_lists() -> None:
    io = model_io_from_signature(COLUMN_SIGNATURE)
    records = decode_v1({"instances": [{"city": "Oslo", "age": 3, "income": 1.5}]}, io)
    lists = decode_v1({"instances": [["Oslo", 3, 1.5]]}, io)
    for arrays in (records, lists):
        assert {name: array.tolist() for name, array in arrays.items()} == {
            "city": ["Oslo"],
            "age": [3],
            "income": [1.5],
        }


def test_decode_v1_names_a_missing_column_and_bad_values() -> None:
    io = model_io_from_signature(COLUMN_SIGNATURE)
    with pytest.raises(InvalidInputError, match="input 'age' is missing from instance 1"):
        decode_v1({"instances": [{"city": "a", "age": 1}, {"city": "b"}]}, io)
    with pytest.raises(InvalidInputError, match="input 'age' holds values that are not INT64"):
        decode_v1({"instances": [{"city": "a", "age": "old"}]}, io)
    with pytest.raises(InvalidInputError, match="'instances' \\(rows\\) or 'inputs' \\(columns\\)"):
        decode_v1({"rows": []}, io)


def test_stack_and_slice_round_trip() -> None:
    parts = [{"x": np.array([[1.0], [2.0]])}, {"x": np.array([[3.0]])}]
    stacked = stack(parts)
    assert stacked["x"].tolist() == [[1.0], [2.0], [3.0]]
    assert slice_rows(stacked, 2, 3)["x"].tolist() == [[3.0]]


def test_prediction_arrays_names_outputs_and_checks_rows() -> None:
    io = model_io_from_signature(TENSOR_SIGNATURE)
    assert prediction_arrays(np.array([1, 2]), io, 2)["output_0"].tolist() == [1, 2]
    frame = prediction_arrays(pd.DataFrame({"label": ["a", "b"], "score": [0.5, 0.25]}), io, 2)
    assert {name: array.tolist() for name, array in frame.items()} == {"label": ["a", "b"], "score": [0.5, 0.25]}
    with pytest.raises(RemoteServiceError, match="returned 1 rows in output 'output_0' for 2 input rows"):
        prediction_arrays(np.array([1]), io, 2)


def test_v2_and_v1_responses() -> None:
    arrays = {"label": np.array(["a", "b"], dtype=object), "score": np.array([0.5, 0.25])}
    response = v2_response(arrays, "m", InferRequest(model_name="m", infer_inputs=[], request_id="r"))
    rest, _ = response.to_rest()
    assert rest == {
        "id": "r",
        "model_name": "m",
        "model_version": None,
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.5, 0.25]},
        ],
    }
    assert v1_response(arrays) == {"predictions": [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.25}]}
    assert v1_response({"y": np.array([1, 2])}) == {"predictions": [1, 2]}


def test_lean_route_response_matches_kserve_encoding() -> None:
    from model_wrappers.fast_path import v2_json_response

    arrays = {
        "label": np.array(["a", "b"], dtype=object),
        "score": np.array([[0.5], [0.25]], dtype=np.float32),
        "flag": np.array([True, False]),
    }
    kserve_body, _ = v2_response(arrays, "m", InferRequest(model_name="m", infer_inputs=[], request_id="r")).to_rest()
    lean_body = v2_json_response(arrays, "m", "r")
    for output in lean_body["outputs"]:
        assert output.pop("parameters") is None  # pydantic adds it on KServe's route
    assert lean_body.pop("parameters") is None
    assert lean_body == kserve_body


def test_lean_route_json_inputs_decode_like_kserve() -> None:
    from model_wrappers.fast_path import _json_tensor

    io = model_io_from_signature(TENSOR_SIGNATURE)
    item = {"name": "input_0", "shape": [2, 4], "datatype": "FP32", "data": list(range(8))}
    lean = decode_v2_tensors([_json_tensor(item, 0)], io)
    kserve = decode_v2(v2_request(InferInput("input_0", [2, 4], "FP32", list(range(8)))), io)
    assert lean["input_0"].dtype == kserve["input_0"].dtype
    np.testing.assert_array_equal(lean["input_0"], kserve["input_0"])
    with pytest.raises(InvalidInputError, match="input 'input_0' has unknown datatype 'FLOAT'"):
        _json_tensor({**item, "datatype": "FLOAT"}, 0)
    with pytest.raises(InvalidInputError, match="'shape' must be a list of integers"):
        _json_tensor({**item, "shape": "2x4"}, 0)
