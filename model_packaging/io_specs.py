"""Inputs and outputs of a package, taken from the MLflow signature or from example arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlflow_source.metadata import SignatureInfo, TensorInfo
from model_packaging.dtypes import mapping_for, numpy_dtype_of_signature
from model_packaging.manifest import TensorSpec
from serving_core.errors import InvalidInputError


def require_signature(signature: SignatureInfo | None, *, model: str, runtime: str) -> SignatureInfo:
    """The signature, or an error that says how to add one.

    Raises:
        InvalidInputError: the model has no signature or no inputs in it.
    """
    if signature is None or not signature.inputs:
        raise InvalidInputError(
            f"model {model} has no signature; the {runtime} package needs input names, dtypes and shapes",
            hint="log the model with input_example= or signature=mlflow.models.infer_signature(...)",
        )
    return signature


def spec_from_signature(entry: TensorInfo, runtime_name: str, *, where: str) -> TensorSpec:
    """A package tensor from one signature entry, under the name the runtime uses."""
    dtype = numpy_dtype_of_signature(entry.dtype, where=where)
    return TensorSpec(
        name=runtime_name,
        datatype=mapping_for(dtype, where=where).v2,
        shape=list(entry.shape),
        mlflow_name=entry.name,
    )


def specs_from_signature(
    entries: list[TensorInfo], runtime_names: Sequence[str] | None = None, *, what: str
) -> list[TensorSpec]:
    """Package tensors for signature entries; ``runtime_names`` renames them by position."""
    names = list(runtime_names) if runtime_names is not None else [entry.name for entry in entries]
    return [
        spec_from_signature(entry, name, where=f"{what} {entry.name!r}")
        for entry, name in zip(entries, names, strict=True)
    ]


def spec_from_array(name: str, array: np.ndarray, *, batched: bool, mlflow_name: str | None = None) -> TensorSpec:
    """A package tensor described by an example array; the first dimension is free when batched."""
    shape = [int(dim) for dim in array.shape]
    if batched and shape:
        shape[0] = -1
    return TensorSpec(
        name=name,
        datatype=mapping_for(array.dtype, where=f"tensor {name!r}").v2,
        shape=shape,
        mlflow_name=mlflow_name,
    )
