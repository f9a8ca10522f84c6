"""The one dtype table: its lookups, its agreement with MLflow and onnxruntime, and the TorchServe handler's copy."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from serving_core.dtypes import DTYPES, MLFLOW_COLUMN_TYPES, by_numpy, by_onnx, by_v2, mlflow_column_dtype
from serving_core.errors import UnsupportedError

HANDLER = Path(__file__).parents[2] / "model_packaging" / "torchserve_handler.py"


def _handler_table(source: str) -> dict[str, str]:
    """The handler's ``_NUMPY`` literal, read without importing the handler (it imports torch)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "_NUMPY" for target in node.targets
        ):
            table = ast.literal_eval(node.value)
            assert isinstance(table, dict)
            return table
    raise AssertionError("the handler has no _NUMPY table")


TORCH_ENTRIES = {dtype.v2: dtype.numpy for dtype in DTYPES if dtype.torch}


def test_torchserve_handler_copy_matches_the_table() -> None:
    assert _handler_table(HANDLER.read_text(encoding="utf-8")) == TORCH_ENTRIES


def test_a_drifted_handler_copy_is_caught() -> None:
    source = HANDLER.read_text(encoding="utf-8")
    drifted = source.replace('"FP16": "float16"', '"FP16": "float32"')
    assert drifted != source
    assert _handler_table(drifted) != TORCH_ENTRIES


@pytest.mark.parametrize("field", ["numpy", "v2", "triton", "onnx"])
def test_every_spelling_names_one_entry(field: str) -> None:
    names = [getattr(dtype, field) for dtype in DTYPES]
    assert len(set(names)) == len(names)


def test_mlflow_column_types_are_what_mlflow_gives() -> None:
    from mlflow.types.schema import DataType

    assert {member.name: np.dtype(member.to_numpy()) for member in DataType} == {
        name: mlflow_column_dtype(name, where="c") for name in MLFLOW_COLUMN_TYPES
    }


def test_onnx_names_are_what_onnxruntime_reports() -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    values = [
        helper.make_tensor_value_info(f"x_{dtype.onnx}", getattr(TensorProto, dtype.onnx.upper()), [1])
        for dtype in DTYPES
    ]
    graph = helper.make_graph([], "types", values, values)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reported = {arg.name.removeprefix("x_"): arg.type for arg in session.get_inputs()}
    assert reported == {dtype.onnx: f"tensor({dtype.onnx})" for dtype in DTYPES}
    for dtype in DTYPES:
        numpy_dtype = helper.tensor_dtype_to_np_dtype(getattr(TensorProto, dtype.onnx.upper()))
        assert by_numpy(numpy_dtype, where="x") is dtype


@pytest.mark.parametrize(
    ("given", "numpy_name"),
    [(np.float32, "float32"), ("<i8", "int64"), (">f8", "float64"), ("<U5", "object"), ("S3", "object"),
     (np.dtype("O"), "object"), (bool, "bool")],
)  # fmt: skip
def test_by_numpy_folds_byte_order_and_text(given: npt.DTypeLike, numpy_name: str) -> None:
    assert by_numpy(given, where="x").numpy == numpy_name


def test_lookups_round_trip() -> None:
    for dtype in DTYPES:
        assert by_numpy(dtype.numpy, where="x") is dtype
        assert by_v2(dtype.v2, where="x") is dtype
        assert by_onnx(dtype.onnx, where="x") is dtype


@pytest.mark.parametrize(
    ("lookup", "value", "message", "supported"),
    [(by_numpy, "complex128", "x has dtype complex128, which has no Triton/V2 type", "float32"),
     (by_v2, "BF16", "x has datatype 'BF16', which is not a V2 datatype", "FP32"),
     (by_onnx, "bfloat16", "x has dtype bfloat16, which has no Triton/V2 type", "double"),
     (mlflow_column_dtype, "Array(long)", "x has MLflow type Array(long), which is not a scalar", "double")],
)  # fmt: skip
def test_errors_name_the_value_and_the_supported_ones(
    lookup: Callable[..., object], value: str, message: str, supported: str
) -> None:
    with pytest.raises(UnsupportedError) as caught:
        lookup(value, where="x")
    assert caught.value.message.startswith(message)
    assert caught.value.hint is not None
    assert supported in caught.value.hint


def test_importing_the_table_loads_no_framework() -> None:
    frameworks = ["torch", "tensorflow", "onnx", "onnxruntime", "mlflow", "pandas"]
    script = f"import sys, serving_core.dtypes; print(sorted(set({frameworks!r}) & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
