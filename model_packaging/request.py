"""What the caller asks a package builder for, and what a builder reports back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from model_packaging.manifest import InstanceKind, ModelFormat, TensorSpec


@dataclass(frozen=True)
class PackageRequest:
    """Options of ``aiserving package`` that builders use."""

    name: str
    max_batch_size: int | None = None
    instance_kind: InstanceKind = "gpu"


@dataclass(frozen=True)
class BuiltPackage:
    """What a runtime builder wrote into the staging directory."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_batch_size: int
    model_format: ModelFormat
    protocol_version: Literal["v1", "v2"]
    conversion: str
