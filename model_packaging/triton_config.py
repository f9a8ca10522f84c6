"""Triton's ``config.pbtxt`` as a typed object, rendered as text protobuf."""

from __future__ import annotations

from dataclasses import dataclass

from model_packaging.manifest import InstanceKind, TensorSpec
from serving_core.dtypes import by_v2
from serving_core.errors import InvalidInputError

DEFAULT_MAX_BATCH_SIZE = 8
_QUEUE_DELAY_US = 100


@dataclass(frozen=True)
class TritonTensor:
    """An input or output: ``dims`` leave out the batch dimension when batching is on."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    reshape_to_scalar: bool = False


@dataclass(frozen=True)
class TritonModelConfig:
    """The fields of ``ModelConfig`` we generate."""

    name: str
    platform: str
    max_batch_size: int
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    instance_kind: InstanceKind
    instance_count: int = 1

    def render(self) -> str:
        """The config as text protobuf, one field per line."""
        lines = [
            f'name: "{self.name}"',
            f'platform: "{self.platform}"',
            f"max_batch_size: {self.max_batch_size}",
            *_render_tensors("input", self.inputs),
            *_render_tensors("output", self.outputs),
        ]
        if self.max_batch_size > 0:
            lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {_QUEUE_DELAY_US} }}")
        kind = "KIND_GPU" if self.instance_kind == "gpu" else "KIND_CPU"
        lines.append(f"instance_group [ {{ count: {self.instance_count} kind: {kind} }} ]")
        return "\n".join(lines) + "\n"


def _render_tensors(field: str, tensors: tuple[TritonTensor, ...]) -> list[str]:
    entries = []
    for tensor in tensors:
        dims = ", ".join(str(dim) for dim in tensor.dims)
        reshape = " reshape { shape: [ ] }" if tensor.reshape_to_scalar else ""
        entries.append(f'  {{ name: "{tensor.name}" data_type: {tensor.data_type} dims: [ {dims} ]{reshape} }}')
    return [f"{field} [", ",\n".join(entries), "]"]


def has_batch_dimension(tensors: list[TensorSpec]) -> bool:
    """Whether every tensor's first dimension is the free batch dimension."""
    return all(tensor.shape and tensor.shape[0] == -1 for tensor in tensors)


def choose_max_batch_size(requested: int | None, tensors: list[TensorSpec]) -> int:
    """Batch when every input and output has a leading -1; honour an explicit request.

    Raises:
        InvalidInputError: batching was asked for a model without a batch dimension.
    """
    batchable = has_batch_dimension(tensors)
    if requested is None:
        return DEFAULT_MAX_BATCH_SIZE if batchable else 0
    if requested < 0:
        raise InvalidInputError(f"--max-batch-size {requested} is negative", hint="pass 0 (no batching) or more")
    if requested > 0 and not batchable:
        shapes = ", ".join(f"{tensor.name}{tensor.shape}" for tensor in tensors)
        raise InvalidInputError(
            f"--max-batch-size {requested} needs a leading -1 (batch) dimension on every input and output: {shapes}",
            hint="pass --max-batch-size 0, or log the model with a signature whose first dimension is -1",
        )
    return requested


def triton_tensors(tensors: list[TensorSpec], max_batch_size: int) -> tuple[TritonTensor, ...]:
    """Config tensors: drop the batch dimension when batching; a bare ``[-1]`` becomes ``[1]`` + reshape."""
    converted = []
    for tensor in tensors:
        dims = tuple(tensor.shape[1:]) if max_batch_size > 0 else tuple(tensor.shape)
        converted.append(
            TritonTensor(
                name=tensor.name,
                data_type=by_v2(tensor.datatype, where=f"tensor {tensor.name!r}").triton,
                dims=dims or (1,),
                reshape_to_scalar=not dims,
            )
        )
    return tuple(converted)
