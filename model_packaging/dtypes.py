"""Packaging's view of the dtype table (:mod:`serving_core.dtypes`): what a package may hold and declare."""

from __future__ import annotations

from typing import Any

import numpy as np

from serving_core.dtypes import DTYPES, MLFLOW_COLUMN_TYPES, by_numpy, by_v2, mlflow_column_dtype
from serving_core.dtypes import by_numpy as mapping_for
from serving_core.errors import UnsupportedError

__all__ = ["mapping_for", "numpy_dtype_of_signature", "v2_to_numpy"]


def numpy_dtype_of_signature(dtype: str, *, where: str) -> np.dtype[Any]:
    """The numpy dtype of a signature entry: a tensor dtype (``float32``) or a column type (``double``).

    Raises:
        UnsupportedError: the type has no numpy equivalent a runtime can serve.
    """
    if dtype in MLFLOW_COLUMN_TYPES:
        resolved = mlflow_column_dtype(dtype, where=where)
    else:
        try:
            resolved = np.dtype(dtype)
        except TypeError as error:
            raise UnsupportedError(
                f"{where} has dtype {dtype!r}, which no serving runtime supports",
                hint=f"log the model with one of {', '.join(sorted(entry.numpy for entry in DTYPES))}",
            ) from error
    by_numpy(resolved, where=where)
    return resolved


def v2_to_numpy(datatype: str) -> np.dtype[Any]:
    """The numpy dtype for a V2 datatype name (``FP32`` → float32).

    Raises:
        UnsupportedError: ``datatype`` is not in the table.
    """
    return np.dtype(by_v2(datatype, where="a tensor").numpy)
