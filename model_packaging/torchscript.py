"""Turn an MLflow pytorch model (``.pt2`` or pickled module) into TorchScript for Triton and TorchServe.

Three kinds of pytorch model are packaged:

- one tensor in (``forward(x)``), the shape MLflow's pyfunc feeds;
- several tensors in (``forward(user, item)``): MLflow 3 saves these as ``.pt2`` from a tuple input
  example and an explicit tensor signature, and gives them no pyfunc flavor;
- a column signature (logged from a DataFrame): MLflow's pyfunc stacks the columns into one float32
  matrix; the TorchScript takes one tensor per column and stacks them the same way, so clients send
  each column as its own named input, in its own dtype.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlflow_source.metadata import SignatureInfo
from model_packaging.dtypes import numpy_dtype_of_signature
from model_packaging.io_specs import require_signature, spec_from_array, specs_from_signature
from model_packaging.manifest import TensorSpec
from model_packaging.signature_inputs import inputs_from_signature
from model_packaging.source import SourceModel
from serving_core.errors import InvalidInputError, UnsupportedError

_LOG = logging.getLogger(__name__)
# MLflow 3's torch.export file; an exported graph has no data-dependent branches, so any input traces it.
EXPORTED_MODEL_FILE = "model.pt2"


@dataclass(frozen=True)
class TraceExample:
    """Example inputs: what the package takes (one array per input) and what ``forward()`` takes."""

    package: tuple[np.ndarray, ...]
    model: tuple[np.ndarray, ...]
    columns: bool
    source: str


def is_exported(source: SourceModel) -> bool:
    """Whether the model was saved as a torch.export ``.pt2`` graph (MLflow 3's default)."""
    data = str(source.flavors["pytorch"].get("model_data", "data"))
    return (source.path / data / EXPORTED_MODEL_FILE).is_file()


def _example_inputs(source: SourceModel, signature: SignatureInfo) -> tuple[tuple[np.ndarray, ...], str]:
    """The input example as one array per signature input, in signature order, and where it came from.

    Raises:
        InvalidInputError: no example (and the model is not an exported graph), or it lacks an input.
    """
    example = source.input_example()
    if example is None:
        if is_exported(source):
            made_up = inputs_from_signature(signature, model=source.reference.location)
            return tuple(made_up.values()), "inputs made from the signature"
        raise InvalidInputError(
            f"pytorch model {source.reference.location} has no input example; TorchScript tracing needs one",
            hint="log the model with input_example=<a batch of real inputs>",
        )
    names = [entry.name for entry in signature.inputs]
    if isinstance(example, (dict, pd.DataFrame)):
        missing = [name for name in names if name not in example]
        if missing:
            raise InvalidInputError(
                f"the input example of {source.reference.location} lacks input(s) {', '.join(missing)}",
                hint="log the model with an input example that holds every signature input",
            )
        arrays = tuple(
            np.asarray(example[name], dtype=numpy_dtype_of_signature(entry.dtype, where=f"input {name!r}"))
            for name, entry in zip(names, signature.inputs, strict=True)
        )
        return arrays, "the input example"
    return (np.asarray(example),), "the input example"


def _require_numeric_columns(source: SourceModel, signature: SignatureInfo) -> None:
    """MLflow's pytorch pyfunc casts every column to float32; a text column cannot be.

    Raises:
        UnsupportedError: a column is not a number or a boolean.
    """
    for entry in signature.inputs:
        if numpy_dtype_of_signature(entry.dtype, where=f"column {entry.name!r}").kind not in "biuf":
            raise UnsupportedError(
                f"pytorch model {source.reference.location} has column {entry.name!r} of type {entry.dtype}; "
                "MLflow's pytorch flavor casts every column to float32, which a non-numeric column cannot be",
                hint="encode the column as numbers before the model (or serve it with a pyfunc on --runtime python)",
            )


def trace_example(source: SourceModel, signature: SignatureInfo) -> TraceExample:
    """What to trace with; columns are stacked into the float32 matrix MLflow's pyfunc would build.

    Raises:
        InvalidInputError: no example to trace with.
        UnsupportedError: a column cannot be cast to float32.
    """
    columns = all(entry.kind == "column" for entry in signature.inputs)
    if columns:
        _require_numeric_columns(source, signature)
    inputs, origin = _example_inputs(source, signature)
    if columns:
        matrix = np.column_stack(inputs).astype(np.float32)
        return TraceExample(package=inputs, model=(matrix,), columns=True, source=origin)
    return TraceExample(package=inputs, model=inputs, columns=False, source=origin)


def _matches(converted: Any, module: Any, example: tuple[Any, ...]) -> bool:
    import torch

    with torch.no_grad():
        return bool(torch.allclose(converted(*example), module(*example), rtol=1e-4, atol=1e-5))


def _convert(module: Any, example: tuple[Any, ...], method: str) -> Any:
    import torch

    if method == "traced":
        return torch.jit.trace(module, example)  # type: ignore[no-untyped-call]
    return torch.jit.script(module)


def _convert_checked(module: Any, example: tuple[Any, ...], location: str) -> tuple[Any, str]:
    """Trace the module (script it when tracing fails or changes results).

    Raises:
        UnsupportedError: neither gives a module that predicts like the original.
    """
    import torch

    attempts: list[str] = []
    for method in ("traced", "scripted"):
        try:
            with torch.no_grad():
                converted = _convert(module, example, method)
            if _matches(converted, module, example):
                return converted, method
            attempts.append(f"{method}: results differ from the original module")
        except Exception as error:  # torch raises many kinds of errors from tracing and scripting
            _LOG.info("TorchScript %s failed: %s", method, error)
            attempts.append(f"{method}: {type(error).__name__}: {error}")
    raise UnsupportedError(
        f"pytorch model {location} cannot be converted to TorchScript ({'; '.join(attempts)})",
        hint="make forward() traceable (no data-dependent control flow) or scriptable, or use --runtime python",
    )


def write_torchscript(source: SourceModel, signature: SignatureInfo, out_file: Path) -> tuple[str, np.ndarray]:
    """Convert the model to TorchScript that takes one tensor per package input, and save it.

    Returns:
        How it was converted and the model's output on the example.

    Raises:
        UnsupportedError: the model cannot be converted, or returns something other than one tensor.
    """
    import mlflow.pytorch
    import torch

    module = mlflow.pytorch.load_model(str(source.path), map_location="cpu")
    with contextlib.suppress(NotImplementedError):  # torch.export modules refuse eval(); they are eval already
        module.eval()
    example = trace_example(source, signature)
    model_tensors = tuple(torch.from_numpy(array) for array in example.model)
    converted, method = _convert_checked(module, model_tensors, source.reference.location)
    with torch.no_grad():
        output = module(*model_tensors)
    if not isinstance(output, torch.Tensor):
        raise UnsupportedError(
            f"pytorch model returns {type(output).__name__}, not one tensor",
            hint="return a single tensor from forward()",
        )
    how = f"{method} with {example.source}"
    if example.columns:
        from model_packaging.torch_columns import ColumnsToMatrix

        column_tensors = tuple(torch.from_numpy(array) for array in example.package)
        with torch.no_grad():
            converted = torch.jit.trace(ColumnsToMatrix(converted), column_tensors)  # type: ignore[no-untyped-call]
        how += "; one input per column, stacked into float32 like MLflow's pyfunc"
    converted.save(str(out_file))
    return how, output.numpy()


def torchscript_package(source: SourceModel, target: Path) -> tuple[str, list[TensorSpec], list[TensorSpec]]:
    """Write TorchScript to ``target``; IO are named ``INPUT__n``/``OUTPUT__0`` as Triton's libtorch wants.

    Raises:
        InvalidInputError: no signature, or no example to trace with.
        UnsupportedError: the model cannot be converted, or an input dtype has no runtime type.
    """
    signature = require_signature(source.signature, model=source.reference.location, runtime="TorchScript")
    names = [f"INPUT__{index}" for index in range(len(signature.inputs))]
    inputs = specs_from_signature(signature.inputs, names, what="input")
    how, output = write_torchscript(source, signature, target)
    batched = all(spec.shape and spec.shape[0] == -1 for spec in inputs)
    # Several signature outputs (DataFrame columns) are all in the one output tensor: no single name fits.
    output_name = signature.outputs[0].name if len(signature.outputs) == 1 else None
    outputs = [spec_from_array("OUTPUT__0", output, batched=batched, mlflow_name=output_name)]
    return f"TorchScript ({how})", inputs, outputs
