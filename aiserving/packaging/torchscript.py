"""Turn an MLflow pytorch model (``.pt2`` or pickled module) into TorchScript for Triton and TorchServe."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from aiserving.errors import InvalidInputError, UnsupportedError
from aiserving.packaging.io_specs import require_signature, spec_from_array, specs_from_signature
from aiserving.packaging.manifest import TensorSpec
from aiserving.packaging.source import SourceModel

_LOG = logging.getLogger(__name__)


def example_tensor(source: SourceModel) -> np.ndarray:
    """The input example as one array: the pytorch flavor takes exactly one tensor.

    Raises:
        InvalidInputError: the model was logged without an input example.
    """
    example = source.input_example()
    if example is None:
        raise InvalidInputError(
            f"pytorch model {source.reference.location} has no input example; TorchScript tracing needs one",
            hint="log the model with input_example=<a batch of real inputs>",
        )
    return np.asarray(example)


def _matches(scripted: Any, module: Any, example: Any) -> bool:
    import torch

    with torch.no_grad():
        return bool(torch.allclose(scripted(example), module(example), rtol=1e-4, atol=1e-5))


def _convert(module: Any, example: Any, method: str) -> Any:
    import torch

    if method == "traced":
        return torch.jit.trace(module, example)  # type: ignore[no-untyped-call]
    return torch.jit.script(module)


def write_torchscript(source: SourceModel, out_file: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """Trace the model with its input example (script it when tracing changes results) and save it.

    Returns:
        How it was converted ("traced" or "scripted"), the example input and the model's output on it.

    Raises:
        UnsupportedError: neither tracing nor scripting gives a module that predicts like the original.
    """
    import mlflow.pytorch
    import torch

    module = mlflow.pytorch.load_model(str(source.path), map_location="cpu")
    with contextlib.suppress(NotImplementedError):  # torch.export modules refuse eval(); they are eval already
        module.eval()
    example = example_tensor(source)
    tensor = torch.from_numpy(example)
    attempts: list[str] = []
    for method in ("traced", "scripted"):
        try:
            with torch.no_grad():
                converted = _convert(module, tensor, method)
            if _matches(converted, module, tensor):
                converted.save(str(out_file))
                with torch.no_grad():
                    output = module(tensor)
                if not isinstance(output, torch.Tensor):
                    raise UnsupportedError(
                        f"pytorch model returns {type(output).__name__}, not one tensor",
                        hint="return a single tensor from forward()",
                    )
                return method, example, output.numpy()
            attempts.append(f"{method}: results differ from the original module")
        except UnsupportedError:
            raise
        except Exception as error:  # torch raises many kinds of errors from tracing and scripting
            _LOG.info("TorchScript %s failed: %s", method, error)
            attempts.append(f"{method}: {type(error).__name__}: {error}")
    raise UnsupportedError(
        f"pytorch model {source.reference.location} cannot be converted to TorchScript ({'; '.join(attempts)})",
        hint="make forward() traceable (no data-dependent control flow) or scriptable, or use --runtime python",
    )


def torchscript_package(source: SourceModel, target: Path) -> tuple[str, list[TensorSpec], list[TensorSpec]]:
    """Write TorchScript to ``target``; IO are named ``INPUT__0``/``OUTPUT__0`` as Triton's libtorch wants.

    Raises:
        InvalidInputError: no signature, or more than one input.
    """
    signature = require_signature(source.signature, model=source.reference.location, runtime="TorchScript")
    if len(signature.inputs) != 1:
        raise InvalidInputError(
            f"pytorch model {source.reference.location} declares {len(signature.inputs)} inputs; "
            "the MLflow pytorch flavor feeds exactly one tensor",
            hint="log a model whose forward() takes one tensor, or export it to ONNX",
        )
    method, _, output = write_torchscript(source, target)
    inputs = specs_from_signature(signature.inputs, ["INPUT__0"], what="input")
    batched = bool(inputs[0].shape) and inputs[0].shape[0] == -1
    output_name = signature.outputs[0].name if signature.outputs else None
    outputs = [spec_from_array("OUTPUT__0", output, batched=batched, mlflow_name=output_name)]
    return f"TorchScript ({method} with the input example)", inputs, outputs
