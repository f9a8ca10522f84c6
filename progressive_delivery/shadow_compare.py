"""Compare a canary's answer with the one stable gave to the same request (V1 or V2 inference JSON).

Classes (integers, booleans, strings; V2 ``INT*``, ``UINT*``, ``BOOL``, ``BYTES``) must be equal; numbers
(floats; V2 ``FP*``) may differ by ``tolerance`` relative to the larger magnitude (at least 1). A request
agrees when every output value does. Answers that are not inference JSON, or whose outputs differ in names or
shapes, are ``incomparable`` (shapes differing is reported as a disagreement: same input, different answer).
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

_CLASS_DATATYPES = ("INT", "UINT", "BOOL", "BYTES")


class Comparison(StrEnum):
    """How one replayed request came out."""

    AGREE = "agree"
    DISAGREE = "disagree"
    CANARY_ERROR = "canary_error"  # the canary failed a request stable answered with 200
    INCOMPARABLE = "incomparable"  # stable's logged answer is not inference JSON


def inference_protocol(body: bytes) -> str | None:
    """``v2`` for an Open Inference Protocol request (``inputs`` with ``datatype``), else ``v1`` (``instances``).

    ``None`` when the body is not a JSON object of either kind.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    inputs = document.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(item, dict) and "datatype" in item for item in inputs):
        return "v2"
    if "instances" in document or "inputs" in document:
        return "v1"
    return None


def _outputs(document: Any) -> dict[str, tuple[list[Any], bool | None]] | None:
    """Output name → (flat values, whether they are classes; ``None`` = decide by value), or ``None``."""
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("outputs"), list):
        outputs: dict[str, tuple[list[Any], bool | None]] = {}
        for output in document["outputs"]:
            if not isinstance(output, dict) or "name" not in output:
                return None
            datatype = str(output.get("datatype", ""))
            outputs[str(output["name"])] = (_flatten(output.get("data")), datatype.startswith(_CLASS_DATATYPES))
        return outputs
    if "predictions" in document:
        return {"predictions": (_flatten(document["predictions"]), None)}
    return None


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    if isinstance(value, dict):
        return [item for key in sorted(value) for item in _flatten(value[key])]
    return [value]


def _values_agree(stable: Any, canary: Any, is_class: bool | None, tolerance: float) -> bool:
    numeric = (int, float)
    as_class = is_class if is_class is not None else not (isinstance(stable, float) or isinstance(canary, float))
    if as_class or isinstance(stable, bool) or not isinstance(stable, numeric) or not isinstance(canary, numeric):
        return bool(stable == canary)
    if math.isnan(stable) or math.isnan(canary):
        return math.isnan(stable) and math.isnan(canary)
    return abs(stable - canary) <= tolerance * max(1.0, abs(stable), abs(canary))


def compare_answers(stable_body: bytes, canary_body: bytes, *, tolerance: float) -> Comparison:
    """Whether the canary's answer agrees with stable's (see the module docstring)."""
    try:
        stable = _outputs(json.loads(stable_body))
    except (ValueError, UnicodeDecodeError):
        return Comparison.INCOMPARABLE
    if stable is None:
        return Comparison.INCOMPARABLE
    try:
        canary = _outputs(json.loads(canary_body))
    except (ValueError, UnicodeDecodeError):
        return Comparison.DISAGREE
    if canary is None or set(canary) != set(stable):
        return Comparison.DISAGREE
    for name, (stable_values, is_class) in stable.items():
        canary_values = canary[name][0]
        if len(stable_values) != len(canary_values):
            return Comparison.DISAGREE
        if not all(
            _values_agree(left, right, is_class, tolerance)
            for left, right in zip(stable_values, canary_values, strict=True)
        ):
            return Comparison.DISAGREE
    return Comparison.AGREE
