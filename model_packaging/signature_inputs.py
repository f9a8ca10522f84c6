"""Inputs made from a signature, for models MLflow saved without an input example (a multi-input ``.pt2``)."""

from __future__ import annotations

import numpy as np

from mlflow_source.metadata import SignatureInfo
from model_packaging.dtypes import numpy_dtype_of_signature
from serving_core.errors import InvalidInputError

SIGNATURE_ROWS = 4
_SEED = 20261128


def inputs_from_signature(signature: SignatureInfo, *, model: str) -> dict[str, np.ndarray]:
    """Seeded inputs of ``SIGNATURE_ROWS`` rows: normal floats, zero integers (safe as indices), false bools.

    Raises:
        InvalidInputError: an input has a free dimension beyond the batch, or holds text.
    """
    rng = np.random.default_rng(_SEED)
    arrays = {}
    for entry in signature.inputs:
        dtype = numpy_dtype_of_signature(entry.dtype, where=f"input {entry.name!r}")
        if -1 in entry.shape[1:] or dtype.kind not in "biuf":
            raise InvalidInputError(
                f"model {model} has no input example, and input {entry.name!r} ({entry.dtype} {entry.shape}) "
                "cannot be made up from the signature",
                hint="log the model with input_example=..., or pass --samples FILE to verify",
            )
        shape = [SIGNATURE_ROWS if dim == -1 else dim for dim in entry.shape]
        values = rng.normal(size=shape) if dtype.kind == "f" else np.zeros(shape)
        arrays[entry.name] = values.astype(dtype)
    return arrays
