"""TensorFlow SavedModels from the tensorflow and keras flavors, and their serving signature."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from model_packaging.dtypes import mapping_for
from model_packaging.manifest import TensorSpec
from model_packaging.source import SourceModel
from serving_core.errors import InvalidInputError, UnsupportedError

SERVING_SIGNATURE = "serving_default"


def _keras_file(source: SourceModel, flavor: str) -> Path:
    data_dir = source.path / str(source.flavors[flavor].get("data", "data"))
    found = sorted(data_dir.rglob("*.keras")) if data_dir.is_dir() else []
    if not found:
        raise InvalidInputError(
            f"{flavor} model {source.reference.location} has no .keras file under {data_dir}",
            hint="re-log the model with mlflow.tensorflow.log_model(keras_model, ...)",
        )
    return found[0]


def write_savedmodel(source: SourceModel, flavor: str, out_dir: Path) -> str:
    """Write a SavedModel with a ``serving_default`` signature into ``out_dir`` (which must not exist).

    Returns:
        How the SavedModel was made.

    Raises:
        UnsupportedError: the flavor configuration is neither a SavedModel nor a Keras model.
    """
    config = source.flavors[flavor]
    saved_model_dir = config.get("saved_model_dir")
    if flavor == "tensorflow" and saved_model_dir:
        shutil.copytree(source.path / str(saved_model_dir), out_dir)
        return f"SavedModel {saved_model_dir}/ copied"
    if flavor == "keras" or config.get("model_type") == "keras":
        import keras  # type: ignore[import-untyped]

        keras_file = _keras_file(source, flavor)
        model = keras.saving.load_model(str(keras_file), compile=False)
        model.export(str(out_dir), format="tf_saved_model", verbose=False)
        return f"Keras model {keras_file.relative_to(source.path)} exported as SavedModel"
    raise UnsupportedError(
        f"{flavor} flavor of {source.reference.location} is neither a SavedModel nor a Keras model ({config})",
        hint="log TensorFlow models with mlflow.tensorflow.log_model",
    )


def _spec(name: str, tensor: Any, mlflow_names: list[str], index: int) -> TensorSpec:
    if name in mlflow_names:
        mlflow_name: str | None = name
    else:
        mlflow_name = mlflow_names[index] if index < len(mlflow_names) else None
    return TensorSpec(
        name=name,
        datatype=mapping_for(tensor.dtype.as_numpy_dtype, where=f"SavedModel tensor {name!r}").v2,
        shape=[-1 if dim is None else int(dim) for dim in tensor.shape.as_list()],
        mlflow_name=mlflow_name,
    )


def savedmodel_specs(
    saved_model: Path, signature_inputs: list[str], signature_outputs: list[str]
) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of the ``serving_default`` signature, in a stable order.

    Raises:
        UnsupportedError: the SavedModel has no ``serving_default`` signature.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model))
    if SERVING_SIGNATURE not in loaded.signatures:
        raise UnsupportedError(
            f"SavedModel {saved_model} has no {SERVING_SIGNATURE!r} signature (has {list(loaded.signatures)})",
            hint="export the model with a serving_default signature",
        )
    function = loaded.signatures[SERVING_SIGNATURE]
    input_specs = function.structured_input_signature[1]
    inputs = [_spec(name, input_specs[name], signature_inputs, index) for index, name in enumerate(sorted(input_specs))]
    output_specs = function.structured_outputs
    outputs = [
        _spec(name, output_specs[name], signature_outputs, index) for index, name in enumerate(sorted(output_specs))
    ]
    return inputs, outputs
