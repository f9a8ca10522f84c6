"""Read what a model declares about itself in its ``MLmodel`` file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from mlflow.models import Model
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, DataType, ParamSchema, Schema, TensorSpec
from pydantic import BaseModel, ConfigDict

from serving_core.errors import InvalidInputError


class TensorInfo(BaseModel):
    """One input or output: name, dtype and shape (-1 for a free dimension)."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    shape: list[int]
    kind: Literal["tensor", "column"]


class SignatureInfo(BaseModel):
    """The model's declared inputs and outputs."""

    model_config = ConfigDict(frozen=True)

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


def _spec_info(index: int, spec: TensorSpec | ColSpec | Any, prefix: str) -> TensorInfo:
    if isinstance(spec, TensorSpec):
        return TensorInfo(
            name=spec.name or f"{prefix}_{index}",
            dtype=str(spec.type),
            shape=[int(dim) for dim in spec.shape],
            kind="tensor",
        )
    if isinstance(spec, ColSpec):
        # A column is a vector with one value per row.
        dtype = spec.type.name if isinstance(spec.type, DataType) else str(spec.type)
        # pyfunc outputs logged from a DataFrame have integer column names.
        name = f"{prefix}_{index}" if spec.name is None else str(spec.name)
        return TensorInfo(name=name, dtype=dtype, shape=[-1], kind="column")
    raise InvalidInputError(
        f"signature entry {spec!r} is neither a tensor nor a column",
        hint="log the model with a tensor or column based signature (mlflow.models.infer_signature)",
    )


def _schema_infos(schema: Schema | ParamSchema | None, prefix: str) -> list[TensorInfo]:
    # Unnamed tensors get stable positional names: input_0, output_0, ...
    if not isinstance(schema, Schema):
        return []
    return [_spec_info(index, spec, prefix) for index, spec in enumerate(schema.inputs)]


def signature_info(signature: ModelSignature | None) -> SignatureInfo | None:
    """Summarize an MLflow signature, or ``None`` when the model has none."""
    if signature is None:
        return None
    return SignatureInfo(
        inputs=_schema_infos(signature.inputs, "input"), outputs=_schema_infos(signature.outputs, "output")
    )


def load_mlmodel(path: Path) -> Model:
    """Load an ``MLmodel`` file, or the one inside a model directory.

    Raises:
        InvalidInputError: there is no readable MLmodel file at ``path``.
    """
    mlmodel = path / "MLmodel" if path.is_dir() else path
    if not mlmodel.is_file():
        raise InvalidInputError(
            f"{path} has no MLmodel file",
            hint="pass an MLflow model directory (the one holding MLmodel) or a models:/ URI",
        )
    try:
        return Model.load(str(mlmodel))
    except Exception as error:  # MLflow raises plain exceptions for malformed YAML
        raise InvalidInputError(
            f"{mlmodel} is not a valid MLmodel file: {error}",
            hint="re-log the model with mlflow.<flavor>.log_model",
        ) from error


def json_safe_flavors(model: Model) -> dict[str, dict[str, Any]]:
    """Return the flavor configurations, dropping values JSON cannot hold."""
    safe: dict[str, dict[str, Any]] = {}
    for flavor, config in model.flavors.items():
        safe[flavor] = json.loads(json.dumps(config, default=str))
    return safe
