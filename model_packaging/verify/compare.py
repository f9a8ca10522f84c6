"""Compare runtime outputs with MLflow's, with a tolerance that depends on the dtype."""

from __future__ import annotations

import numpy as np

from model_packaging.dtypes import mapping_for
from model_packaging.verify.report import CheckResult


def compare_output(name: str, expected: np.ndarray, actual: np.ndarray) -> CheckResult:
    """Equal for integers, bools and strings; close within the dtype's rtol/atol for floats.

    A shape that differs only by size-1 axes (``(n,)`` against ``(n, 1)``) is accepted.
    """
    check = f"output {name}"
    if expected.size != actual.size or np.squeeze(expected).shape != np.squeeze(actual).shape:
        return CheckResult(check, "failed", f"shape {list(actual.shape)} but MLflow gives {list(expected.shape)}")
    actual = actual.reshape(expected.shape)
    if expected.dtype.kind in "fc" or actual.dtype.kind in "fc":
        mapping = mapping_for(actual.dtype if actual.dtype.kind in "fc" else expected.dtype, where=check)
        difference = float(np.max(np.abs(expected.astype(np.float64) - actual.astype(np.float64)), initial=0.0))
        close = np.allclose(actual, expected, rtol=mapping.rtol, atol=mapping.atol)
        detail = f"max |diff| {difference:.3g} (rtol {mapping.rtol:g}, atol {mapping.atol:g}, {actual.dtype})"
        return CheckResult(check, "passed" if close else "failed", detail)
    equal = np.array_equal(expected.astype(actual.dtype) if expected.dtype != actual.dtype else expected, actual)
    mismatched = int(np.sum(expected.astype(str) != actual.astype(str)))
    detail = f"exact match of {actual.size} values ({actual.dtype})" if equal else f"{mismatched} values differ"
    return CheckResult(check, "passed" if equal else "failed", detail)
