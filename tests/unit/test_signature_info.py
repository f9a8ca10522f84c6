"""What a model declares about its inputs and outputs, read from real MLflow signatures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from mlflow_source.metadata import SignatureInfo, TensorInfo, signature_info


def test_column_signature_with_integer_output_names() -> None:
    """A pyfunc returning a DataFrame logs outputs named 0, 1: they become the strings "0", "1"."""
    frame = pd.DataFrame({"age": np.array([31, 45], dtype=np.int64), "income": [52.5, 81.0]})
    prediction = pd.DataFrame(np.zeros((2, 2), dtype=np.float32))
    assert signature_info(infer_signature(frame, prediction)) == SignatureInfo(
        inputs=[
            TensorInfo(name="age", dtype="long", shape=[-1], kind="column"),
            TensorInfo(name="income", dtype="double", shape=[-1], kind="column"),
        ],
        outputs=[
            TensorInfo(name="0", dtype="float", shape=[-1], kind="column"),
            TensorInfo(name="1", dtype="float", shape=[-1], kind="column"),
        ],
    )


def test_unnamed_tensors_get_positional_names() -> None:
    signature = infer_signature(np.zeros((2, 4), dtype=np.float32), np.zeros((2,), dtype=np.int64))
    assert signature_info(signature) == SignatureInfo(
        inputs=[TensorInfo(name="input_0", dtype="float32", shape=[-1, 4], kind="tensor")],
        outputs=[TensorInfo(name="output_0", dtype="int64", shape=[-1], kind="tensor")],
    )
