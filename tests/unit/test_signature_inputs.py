"""Inputs made up from a signature for models saved without an input example."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_source.metadata import SignatureInfo, TensorInfo
from model_packaging.signature_inputs import inputs_from_signature
from serving_core.errors import InvalidInputError


def signature(*inputs: TensorInfo) -> SignatureInfo:
    return SignatureInfo(inputs=list(inputs), outputs=[])


def test_rows_follow_the_signature_in_order_dtype_and_shape() -> None:
    made_up = inputs_from_signature(
        signature(
            TensorInfo(name="user", dtype="float32", shape=[-1, 3], kind="tensor"),
            TensorInfo(name="item_id", dtype="int64", shape=[-1], kind="tensor"),
            TensorInfo(name="flag", dtype="boolean", shape=[-1], kind="column"),
        ),
        model="m",
    )
    assert list(made_up) == ["user", "item_id", "flag"]
    assert [(array.dtype.name, array.shape) for array in made_up.values()] == [
        ("float32", (4, 3)),
        ("int64", (4,)),
        ("bool", (4,)),
    ]
    assert np.array_equal(made_up["item_id"], np.zeros(4, dtype=np.int64))
    assert not made_up["flag"].any()
    assert len(np.unique(made_up["user"])) == 12  # floats vary, so swapped inputs would show in a comparison


def test_the_same_rows_every_time() -> None:
    entry = TensorInfo(name="x", dtype="float64", shape=[-1, 2], kind="tensor")
    first = inputs_from_signature(signature(entry), model="m")["x"]
    assert np.array_equal(first, inputs_from_signature(signature(entry), model="m")["x"])


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        (TensorInfo(name="tokens", dtype="int64", shape=[-1, -1], kind="tensor"), "input 'tokens' (int64 [-1, -1])"),
        (TensorInfo(name="city", dtype="string", shape=[-1], kind="column"), "input 'city' (string [-1])"),
    ],
)
def test_inputs_that_cannot_be_made_up_ask_for_samples(entry: TensorInfo, shown: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        inputs_from_signature(signature(entry), model="models:/ranker/3")
    assert caught.value.message == (
        f"model models:/ranker/3 has no input example, and {shown} cannot be made up from the signature"
    )
    assert caught.value.hint == "log the model with input_example=..., or pass --samples FILE to verify"
