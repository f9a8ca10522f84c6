"""Inputs to verify with: the MLflow input example or a samples file, by MLflow input name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model_packaging.dtypes import v2_to_numpy
from model_packaging.manifest import PackageManifest, TensorSpec
from serving_core.errors import InvalidInputError


def mlflow_name(spec: TensorSpec) -> str:
    """The name MLflow uses for a package tensor."""
    return spec.mlflow_name or spec.name


def mlflow_inputs(spec: TensorSpec) -> list[str]:
    """The MLflow inputs (one name, or the stacked columns) that make up a package input."""
    return spec.mlflow_columns or [mlflow_name(spec)]


def named_arrays(example: Any, manifest: PackageManifest) -> dict[str, np.ndarray]:
    """Turn an ndarray, a dict of arrays or a DataFrame into arrays keyed by MLflow input name.

    Raises:
        InvalidInputError: the example does not hold the package's inputs.
    """
    names = [name for spec in manifest.inputs for name in mlflow_inputs(spec)]
    if isinstance(example, pd.DataFrame):
        if set(names) <= set(example.columns):
            return {name: example[name].to_numpy() for name in names}
        example = example.to_numpy()
    if isinstance(example, dict):
        by_runtime: dict[str, str] = {spec.name: mlflow_name(spec) for spec in manifest.inputs}
        arrays = {by_runtime.get(str(key), str(key)): np.asarray(value) for key, value in example.items()}
        missing = sorted(set(names) - set(arrays))
        if missing:
            raise InvalidInputError(
                f"samples lack input(s) {', '.join(missing)}; they have {', '.join(sorted(arrays))}",
                hint=f"give every input of the model: {', '.join(names)}",
            )
        return {name: arrays[name] for name in names}
    if len(names) != 1:
        raise InvalidInputError(
            f"samples are one array but the model has inputs {', '.join(names)}",
            hint='give a JSON object {"<input name>": [[...]], ...} or an .npz with one array per input',
        )
    return {names[0]: np.asarray(example)}


def read_samples(path: Path) -> Any:
    """Read a samples file: JSON (an object of arrays, or one array) or ``.npz``.

    Raises:
        InvalidInputError: the file is missing or not JSON/npz.
    """
    if not path.is_file():
        raise InvalidInputError(f"samples file {path} does not exist", hint="pass an existing .json or .npz file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidInputError(
            f"samples file {path} is not valid JSON: {error}",
            hint='write {"<input name>": [[...]]} or a plain nested list for a single input',
        ) from error


def runtime_inputs(arrays: dict[str, np.ndarray], manifest: PackageManifest) -> dict[str, np.ndarray]:
    """The same arrays keyed by the runtime's input names, columns stacked, cast to the declared dtype."""
    inputs = {}
    for spec in manifest.inputs:
        if spec.mlflow_columns:
            array = np.column_stack([arrays[column] for column in spec.mlflow_columns])
        else:
            array = np.asarray(arrays[mlflow_name(spec)])
        inputs[spec.name] = array.astype(v2_to_numpy(spec.datatype), copy=False)
    return inputs
