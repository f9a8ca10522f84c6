"""GPU memory estimate of a package or MLflow model, in parts, and the smallest GPU unit it fits.

The parts: the model's weights (its own tensors, dtype-aware), the inputs and outputs of the largest batch (from
the signature), the intermediate tensors of that batch (measured or inferred where the framework can tell), the
serving runtime's own overhead and the CUDA context. The total times the headroom is what must fit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from gpu_planning.catalog import CATALOG, GpuProduct
from gpu_planning.tensors import IoTensor, activations, find_model_file, weights
from serving_core.dtypes import by_v2, mlflow_column_dtype
from serving_core.errors import InvalidInputError

MIB = 1 << 20
HEADROOM = 0.10
"""Fraction added on top of the total: allocator rounding, fragmentation, CUDA library workspaces that grow
with the batch. gpu-and-manifests.md §9 sizes with x1.1."""

CUDA_CONTEXT_MIB = 512
"""One CUDA context per serving process: 0.3-0.5 GiB (gpu-and-manifests.md §9; NVIDIA's CUDA C++ Programming Guide,
'Lazy Loading', explains why it varies with the kernels loaded). We take the top of the range."""

RUNTIME_OVERHEAD_MIB: dict[str, tuple[int, str]] = {
    "triton": (
        384,
        "Triton's backend libraries: cuBLAS/cuDNN handles and workspaces (cuBLAS docs, cublasSetWorkspace: 32 MiB "
        "on Hopper) and the onnxruntime CUDA arena's power-of-two growth (onnxruntime CUDA EP docs, "
        "arena_extend_strategy)",
    ),
    "torchserve": (
        512,
        "one TorchServe worker: libtorch's CUDA caching allocator keeps freed blocks (PyTorch docs, 'CUDA memory "
        "management') plus cuBLAS workspaces (CUBLAS_WORKSPACE_CONFIG default :4096:8 = 32 MiB)",
    ),
    "tfserving": (
        384,
        "TF Serving's BFC allocator with TF_FORCE_GPU_ALLOW_GROWTH=true; without it TensorFlow takes almost the "
        "whole GPU (gpu-and-manifests.md §9), which no estimate can share",
    ),
    "python": (
        512,
        "the Python wrapper's framework (torch/onnxruntime/TF) allocator and library workspaces, as torchserve",
    ),
}

Unit = Literal["whole", "mig", "time-sliced", "none"]


class Part(BaseModel):
    """One part of the estimate."""

    model_config = ConfigDict(frozen=True)

    name: str
    mib: float
    source: str


class Recommendation(BaseModel):
    """The smallest unit of one GPU product the model fits in, with the headroom."""

    model_config = ConfigDict(frozen=True)

    product: str
    unit: Unit
    mig_profile: str | None = None
    shares_per_gpu: int | None = None
    unit_memory_mib: int = 0
    why: str


class MemoryEstimate(BaseModel):
    """The estimate, its parts and a recommendation on each catalog product."""

    model_config = ConfigDict(frozen=True)

    model: str
    runtime: str
    max_batch_size: int
    parts: list[Part]
    total_mib: float
    headroom: float
    need_mib: int
    recommendations: list[Recommendation]
    smallest: Recommendation | None

    def table(self) -> str:
        """The estimate as text: one line per part, then one per product."""
        lines = [f"{self.model} ({self.runtime}, batch {self.max_batch_size})"]
        lines += [f"  {part.name:<12} {part.mib:>10.1f} MiB  {part.source}" for part in self.parts]
        lines.append(
            f"  {'total':<12} {self.total_mib:>10.1f} MiB; with {self.headroom:.0%} headroom {self.need_mib} MiB"
        )
        for rec in self.recommendations:
            unit = rec.mig_profile or (f"1/{rec.shares_per_gpu} share" if rec.shares_per_gpu else rec.unit)
            lines.append(f"  {rec.product:<11} {unit:<16} {rec.why}")
        if self.smallest is not None:
            lines.append(f"smallest: {self.smallest.product} {self.smallest.mig_profile or self.smallest.unit}")
        return "\n".join(lines)


def recommend(product: GpuProduct, need_mib: int) -> Recommendation:
    """The smallest unit of ``product`` that holds ``need_mib``: a MIG profile, a time-sliced share or the GPU."""
    name = product.name
    if need_mib > product.memory_mib:
        return Recommendation(product=name, unit="none", why=f"needs {need_mib} MiB of {product.memory_mib} MiB")
    fitting = [p for p in product.mig_profiles if p.memory_mib >= need_mib and p.compute_slices < 7]
    if fitting:
        best = min(fitting, key=lambda p: (p.memory_mib, p.compute_slices))
        return Recommendation(
            product=name,
            unit="mig",
            mig_profile=best.name,
            unit_memory_mib=best.memory_mib,
            why=f"smallest MIG profile with >= {need_mib} MiB (isolated memory and faults)",
        )
    shares = min(product.max_time_slices, product.memory_mib // need_mib)
    if not product.mig_capable and shares >= 2:
        return Recommendation(
            product=name,
            unit="time-sliced",
            shares_per_gpu=shares,
            unit_memory_mib=product.memory_mib // shares,
            why=f"{shares} such models share one GPU (no memory isolation: each must cap its own memory)",
        )
    return Recommendation(product=name, unit="whole", unit_memory_mib=product.memory_mib, why="needs the whole GPU")


def read_io(root: Path) -> tuple[str, str, int, list[IoTensor], list[IoTensor]]:
    """Name, runtime, max batch size, inputs and outputs of a package (package.json) or an MLflow model (MLmodel).

    Raises:
        InvalidInputError: the directory holds neither.
    """
    manifest = root / "package.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))

        def tensors(specs: list[dict[str, object]]) -> list[IoTensor]:
            return [
                IoTensor(
                    str(s["name"]),
                    by_v2(str(s["datatype"]), where=str(manifest)).numpy,
                    tuple(s["shape"]),  # type: ignore[arg-type]
                )
                for s in specs
            ]

        return (
            data["model_name"],
            data["runtime"],
            int(data["max_batch_size"]),
            tensors(data["inputs"]),
            tensors(data["outputs"]),
        )
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        signature = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("signature") or {}
        return (
            root.name,
            "python",
            0,
            _mlflow_tensors(signature.get("inputs"), mlmodel),
            _mlflow_tensors(signature.get("outputs"), mlmodel),
        )
    raise InvalidInputError(
        f"{root} is neither a package (no package.json) nor an MLflow model (no MLmodel)",
        hint="pass a directory written by `aiserving package`, an MLflow model directory or a models:/ URI",
    )


def _mlflow_tensors(spec: str | None, where: Path) -> list[IoTensor]:
    if not spec:
        return []
    tensors = []
    for index, item in enumerate(json.loads(spec)):
        name = str(item.get("name", f"input_{index}"))
        if item.get("type") == "tensor":
            tensor = item["tensor-spec"]
            tensors.append(IoTensor(name, str(tensor["dtype"]), tuple(tensor["shape"])))
        else:
            dtype = mlflow_column_dtype(str(item["type"]), where=str(where))
            tensors.append(IoTensor(name, "object" if dtype.kind in "OSU" else dtype.name, (-1,)))
    return tensors


def estimate(root: Path, *, max_batch_size: int | None = None) -> MemoryEstimate:
    """Estimate the GPU memory the model in ``root`` needs at its largest batch, and where it fits.

    Raises:
        InvalidInputError: ``root`` is not a package or MLflow model, its tensors cannot be read, or
            ``max_batch_size`` is below 1.
    """
    if not root.is_dir():
        raise InvalidInputError(f"{root} is not a directory", hint="pass a package directory or a models:/ URI")
    if max_batch_size is not None and max_batch_size < 1:
        raise InvalidInputError(f"--max-batch-size {max_batch_size} is below 1", hint="pass 1 or more")
    name, runtime, package_batch, inputs, outputs = read_io(root)
    batch = max_batch_size or max(package_batch, 1)
    model = find_model_file(root)
    weight = weights(model, root)
    intermediate = activations(model, inputs, outputs, batch)
    io_bytes = sum(t.nbytes(batch) for t in [*inputs, *outputs])
    overhead, overhead_source = RUNTIME_OVERHEAD_MIB.get(runtime, RUNTIME_OVERHEAD_MIB["python"])
    parts = [
        Part(name="weights", mib=weight.nbytes / MIB, source=weight.method),
        Part(name="io", mib=io_bytes / MIB, source=f"signature inputs and outputs at batch {batch}"),
        Part(name="activations", mib=intermediate.nbytes / MIB, source=intermediate.method),
        Part(name="runtime", mib=float(overhead), source=overhead_source),
        Part(name="cuda_context", mib=float(CUDA_CONTEXT_MIB), source="0.3-0.5 GiB per process, top of the range"),
    ]
    total = sum(part.mib for part in parts)
    need = math.ceil(total * (1 + HEADROOM))
    recommendations = [recommend(product, need) for product in CATALOG.values()]
    fitting = [rec for rec in recommendations if rec.unit != "none"]
    return MemoryEstimate(
        model=name,
        runtime=runtime,
        max_batch_size=batch,
        parts=parts,
        total_mib=round(total, 3),
        headroom=HEADROOM,
        need_mib=need,
        recommendations=recommendations,
        smallest=min(fitting, key=lambda rec: rec.unit_memory_mib) if fitting else None,
    )
