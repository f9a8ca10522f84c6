"""Comparing the canary's answer with stable's, and the class-distribution check."""

from __future__ import annotations

import json

import pytest

from progressive_delivery.distribution import DistributionTest, compare_distributions, js_divergence
from progressive_delivery.shadow_compare import Comparison, compare_answers, inference_protocol
from progressive_delivery.statistics import Outcome


def v2(data: list[object], datatype: str, name: str = "output_0") -> bytes:
    return json.dumps(
        {"model_name": "m", "outputs": [{"name": name, "shape": [len(data)], "datatype": datatype, "data": data}]}
    ).encode()


def v1(predictions: list[object]) -> bytes:
    return json.dumps({"predictions": predictions}).encode()


@pytest.mark.parametrize(
    ("stable", "canary", "expected"),
    [
        (v2([0, 2, 1], "INT64"), v2([0, 2, 1], "INT64"), Comparison.AGREE),
        (v2([0, 2, 1], "INT64"), v2([0, 1, 1], "INT64"), Comparison.DISAGREE),
        (v2([0.5, 1.25], "FP32"), v2([0.5000001, 1.25], "FP32"), Comparison.AGREE),
        (v2([0.5, 1.25], "FP32"), v2([0.51, 1.25], "FP32"), Comparison.DISAGREE),
        (v2(["a", "b"], "BYTES"), v2(["a", "b"], "BYTES"), Comparison.AGREE),
        (v2([1, 2], "INT64"), v2([1, 2], "INT64", name="other"), Comparison.DISAGREE),
        (v2([1, 2], "INT64"), v2([1, 2, 3], "INT64"), Comparison.DISAGREE),
        (v1([1, 0, 2]), v1([1, 0, 2]), Comparison.AGREE),
        (v1([[0.1, 0.9]]), v1([[0.1, 0.9000000001]]), Comparison.AGREE),
        (v1(["cat"]), v1(["dog"]), Comparison.DISAGREE),
        (b"not json", v1([1]), Comparison.INCOMPARABLE),
        (v1([1]), b"<html>oops</html>", Comparison.DISAGREE),
    ],
)
def test_compare_answers(stable: bytes, canary: bytes, expected: Comparison) -> None:
    assert compare_answers(stable, canary, tolerance=1e-6) is expected


def test_inference_protocol_from_the_request_body() -> None:
    assert inference_protocol(b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}') == "v2"
    assert inference_protocol(b'{"instances": [[1, 2]]}') == "v1"
    assert inference_protocol(b'{"inputs": [[1, 2]]}') == "v1"
    assert inference_protocol(b"[1, 2]") is None
    assert inference_protocol(b"\xff") is None


def test_js_divergence() -> None:
    assert js_divergence({"a": 5, "b": 5}, {"a": 1, "b": 1}) == 0.0
    assert js_divergence({"a": 5}, {"b": 5}) == 1.0
    assert js_divergence({"a": 3, "b": 1}, {"a": 1, "b": 3}) == pytest.approx(0.18872, abs=1e-5)


def test_compare_distributions() -> None:
    stable = {"0": 100.0, "1": 100.0}
    shifted = {"0": 180.0, "1": 20.0}
    assert compare_distributions(shifted, stable, max_divergence=0.05, min_predictions=100) == DistributionTest(
        Outcome.FAIL,
        "prediction distribution: JS divergence 0.1468 bits (limit 0.05): the canary predicts different classes",
        pytest.approx(0.146793, abs=1e-6),
        shifted,
        stable,
    )
    assert compare_distributions(shifted, stable, max_divergence=0.05, min_predictions=100, warn_only=True).outcome is (
        Outcome.PASS
    )
    assert compare_distributions(stable, stable, max_divergence=0.05, min_predictions=100).outcome is Outcome.PASS
    assert compare_distributions(stable, stable, max_divergence=0.05, min_predictions=500).outcome is (
        Outcome.INCONCLUSIVE
    )
