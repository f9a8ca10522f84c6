"""Read a model's own tensors: weights from the model file, activations from a CPU forward pass or the graph.

Each reader imports its framework when called, so importing this module stays cheap. Sizes are dtype-aware:
bytes are element count times the element size the file records, never the file size, except for formats
that hold no tensors we can read (pickled sklearn models), where the file size is the best available figure.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class IoTensor:
    """One model input or output: numpy dtype name and shape, -1 for the batch or any free dimension."""

    name: str
    numpy_dtype: str
    shape: tuple[int, ...]

    def nbytes(self, batch: int) -> int:
        """Bytes of this tensor with every free dimension set to ``batch`` (strings count 64 bytes an element)."""
        elements = int(np.prod([batch if dim < 0 else dim for dim in self.shape], dtype=np.int64))
        itemsize = 64 if self.numpy_dtype == "object" else np.dtype(self.numpy_dtype).itemsize
        return elements * itemsize


@dataclass(frozen=True)
class Measurement:
    """A byte count and how it was obtained, for the estimate's table."""

    nbytes: int
    method: str


MODEL_SUFFIXES = (".onnx", ".pt", ".pt2", ".mar")


def find_model_file(root: Path) -> Path | None:
    """The model file in a package or MLflow model directory: ONNX, TorchScript/.pt2, .mar or a SavedModel."""
    candidates = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix in MODEL_SUFFIXES)
    saved_models = sorted(root.rglob("saved_model.pb"))
    if candidates:
        return candidates[0]
    return saved_models[0].parent if saved_models else None


def weights(model: Path | None, root: Path) -> Measurement:
    """Bytes of the model's parameters, read from its own tensors.

    Raises:
        InvalidInputError: the model file cannot be read by its framework.
    """
    if model is None:
        total = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
        return Measurement(total, "file sizes (no ONNX, TorchScript or SavedModel file found)")
    try:
        if model.suffix == ".onnx":
            return Measurement(_onnx_weights(model), "ONNX initializers, constants and operator attributes")
        if model.suffix == ".mar":
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(model) as archive:
                inner = [name for name in archive.namelist() if Path(name).suffix in (".pt", ".onnx")]
                if not inner:
                    return Measurement(model.stat().st_size, "archive size (no serialized model in the .mar)")
                return weights(Path(archive.extract(inner[0], tmp)), root)
        if model.suffix in (".pt", ".pt2"):
            return Measurement(_torch_weights(model), "TorchScript parameters and buffers")
        return Measurement(_savedmodel_weights(model), "SavedModel variables")
    except (OSError, ValueError, RuntimeError) as error:
        raise InvalidInputError(
            f"cannot read the tensors of {model}: {error}", hint="pass a package written by `aiserving package`"
        ) from error


def activations(model: Path | None, inputs: Sequence[IoTensor], outputs: Sequence[IoTensor], batch: int) -> Measurement:
    """Bytes of intermediate tensors for one batch of ``batch`` rows, beyond the inputs and outputs.

    TorchScript: the CPU memory the profiler sees allocated in a forward pass on zeros. ONNX: every
    intermediate tensor ONNX shape inference can size with the batch fixed (no reuse assumed, so an upper
    bound). Others: none known; the inputs and outputs are still counted by the caller.
    """
    if model is not None and model.suffix in (".pt", ".pt2") and inputs:
        return Measurement(_torch_forward_bytes(model, inputs, batch), "CPU forward pass (torch profiler)")
    if model is not None and model.suffix == ".mar" and inputs:
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(model) as archive:
            inner = [name for name in archive.namelist() if Path(name).suffix == ".pt"]
            if inner:
                return activations(Path(archive.extract(inner[0], tmp)), inputs, outputs, batch)
    if model is not None and model.suffix == ".onnx":
        return Measurement(_onnx_intermediate_bytes(model, batch), "ONNX shape inference at the batch size")
    return Measurement(0, "not measurable for this format: inputs and outputs only")


def _onnx_weights(path: Path) -> int:
    import onnx
    from onnx import helper

    graph = onnx.load(str(path), load_external_data=False).graph
    tensors = list(graph.initializer)
    tensors += [attr.t for node in graph.node for attr in node.attribute if attr.t.dims]
    tensor_bytes = sum(
        int(np.prod(tensor.dims, dtype=np.int64)) * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        for tensor in tensors
    )
    # ai.onnx.ml operators (skl2onnx's linear models, trees) keep their parameters as float and int64 attributes.
    attribute_bytes = sum(4 * len(attr.floats) + 8 * len(attr.ints) for node in graph.node for attr in node.attribute)
    return tensor_bytes + attribute_bytes


def _onnx_intermediate_bytes(path: Path, batch: int) -> int:
    import onnx
    from onnx import helper, shape_inference

    model = onnx.load(str(path), load_external_data=False)
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = batch
    inferred = shape_inference.infer_shapes(model).graph
    outputs = {value.name for value in inferred.output}
    total = 0
    for value in inferred.value_info:
        tensor = value.type.tensor_type
        dims = [dim.dim_value if dim.HasField("dim_value") else batch for dim in tensor.shape.dim]
        if value.name not in outputs and tensor.elem_type:
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).itemsize
            total += int(np.prod(dims, dtype=np.int64)) * itemsize
    return total


def _torch_module(path: Path) -> Any:
    import torch

    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()
    return torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]


def _torch_weights(path: Path) -> int:
    module = _torch_module(path)
    tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    return sum(int(t.numel()) * int(t.element_size()) for t in tensors.values())


def _torch_forward_bytes(path: Path, inputs: Sequence[IoTensor], batch: int) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    module = _torch_module(path)
    arguments = [
        torch.zeros(*[batch if dim < 0 else dim for dim in tensor.shape], dtype=getattr(torch, tensor.numpy_dtype))
        for tensor in inputs
    ]
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        module(*arguments)
    # Each op's own allocations; frees are negative and ignored, so this bounds the peak from above.
    return sum(max(int(event.self_cpu_memory_usage), 0) for event in prof.key_averages())


def _savedmodel_weights(path: Path) -> int:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    # The object graph is bookkeeping, not a tensor the model computes with.
    return sum(
        int(np.prod(shape, dtype=np.int64)) * dtypes[name].size
        for name, shape in shapes.items()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
