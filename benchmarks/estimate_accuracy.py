"""Estimate-accuracy benchmark: `aiserving size`'s model-dependent parts against the memory the runtime really takes.

No GPU is needed: the proxy is CPU memory. The same 10 MLPs (1.5 to 196 MiB of float32 weights) are built twice:
as MLflow ONNX models run by onnxruntime (CPU provider, default arena), and as TorchScript files in a package
directory (package.json + model.pt) run by libtorch (``torch.jit.load``, one forward pass under
``torch.inference_mode``). For each, the estimate's weights + io + activations at the batch size (the parts that
depend on the model; the runtime and CUDA-context constants cannot be checked on a CPU) is compared with how much
a fresh process's RSS grows (current or peak, the larger) when the runtime loads the model and runs one batch,
after a tiny model of the same kind has warmed the runtime up.

    .venv/bin/python -m benchmarks.estimate_accuracy [--batch 64] [--runtimes onnxruntime libtorch]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gpu_planning.estimate import estimate

SIZES = [(512, 2), (1024, 2), (1024, 3), (2048, 2), (2048, 3), (3072, 2), (3072, 3), (4096, 2), (4096, 3), (4096, 4)]
"""(hidden width, hidden layers) of the 10 MLPs; each has 256 inputs and 16 outputs."""

# Runs in a fresh interpreter, so that the libraries' own memory is in the baseline and the model's is not.
MEASURE = """
import resource, sys, numpy as np, onnxruntime as ort
def rss_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
path, batch, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
warm = ort.InferenceSession(sys.argv[4], providers=["CPUExecutionProvider"])
warm.run(None, {"x": np.zeros((1, features), np.float32)})
rss, peak = rss_kib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
session.run(None, {"x": np.ones((batch, features), np.float32)})
grown = max(rss_kib() - rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak)
print(grown / 1024)
"""


MEASURE_TORCH = """
import resource, sys, torch
torch.set_num_threads(1)
def rss_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
path, batch, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with torch.inference_mode():
    torch.jit.load(sys.argv[4], map_location="cpu")(torch.zeros(1, features))
    rss, peak = rss_kib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    module = torch.jit.load(path, map_location="cpu")
    module(torch.ones(batch, features))
grown = max(rss_kib() - rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak)
print(grown / 1024)
"""


def mlp(width: int, layers: int, seed: int) -> Any:
    """An ONNX MLP: MatMul + Add + Relu per layer, float32, the batch dimension free."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    dims = [256, *[width] * layers, 16]
    nodes, initializers, current = [], [], "x"
    for index, (rows, cols) in enumerate(itertools.pairwise(dims)):
        weight, bias = f"w{index}", f"b{index}"
        initializers += [
            numpy_helper.from_array(rng.standard_normal((rows, cols)).astype(np.float32) * 0.01, weight),
            numpy_helper.from_array(np.zeros(cols, np.float32), bias),
        ]
        last = index == len(dims) - 2
        nodes += [
            helper.make_node("MatMul", [current, weight], [f"mm{index}"]),
            helper.make_node("Add", [f"mm{index}", bias], ["y" if last else f"add{index}"]),
        ]
        if not last:
            nodes.append(helper.make_node("Relu", [f"add{index}"], [f"relu{index}"]))
            current = f"relu{index}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def save_mlflow(model: Any, where: Path) -> Path:
    import mlflow.onnx
    from mlflow.models import infer_signature

    signature = infer_signature(np.zeros((2, 256), np.float32), np.zeros((2, 16), np.float32))
    mlflow.onnx.save_model(model, str(where), signature=signature)
    return where


def torch_mlp(width: int, layers: int, seed: int) -> Any:
    """The same MLP as a scripted torch module (Linear + ReLU per layer, float32)."""
    import torch

    torch.manual_seed(seed)
    dims = [256, *[width] * layers, 16]
    blocks: list[torch.nn.Module] = []
    for index, (rows, cols) in enumerate(itertools.pairwise(dims)):
        blocks.append(torch.nn.Linear(rows, cols))
        if index < len(dims) - 2:
            blocks.append(torch.nn.ReLU())
    return torch.jit.script(torch.nn.Sequential(*blocks).eval())


def save_torch_package(module: Any, where: Path) -> Path:
    """A package directory as `aiserving package` lays out a TorchScript model: package.json + model.pt."""
    from model_packaging.manifest import ModelFormat, PackageManifest, SourceRef, TensorSpec

    (where / "model_repository" / "mlp" / "1").mkdir(parents=True)
    module.save(str(where / "model_repository" / "mlp" / "1" / "model.pt"))
    PackageManifest(
        runtime="triton", model_name="mlp", model_format=ModelFormat(name="pytorch"), protocol_version="v2",
        source_flavor="pytorch", conversion="torchscript",
        inputs=[TensorSpec(name="x", datatype="FP32", shape=[-1, 256])],
        outputs=[TensorSpec(name="y", datatype="FP32", shape=[-1, 16])],
        max_batch_size=64, instance_kind="gpu",
        source=SourceRef(location="models:/mlp/1", lineage_digest="sha256:" + "0" * 64),
        package_digest="sha256:" + "0" * 64,
    ).write(where)  # fmt: skip
    return where


def measure(script: str, model_file: Path, baseline_file: Path, batch: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", script, str(model_file), str(batch), "256", str(baseline_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--runtimes", nargs="+", choices=["onnxruntime", "libtorch"], default=["onnxruntime", "libtorch"]
    )
    parser.add_argument("--json", help="write every row here")
    args = parser.parse_args()
    import onnx

    rows = []
    ratios: dict[str, list[float]] = {runtime: [] for runtime in args.runtimes}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = root / "baseline.onnx"
        onnx.save(mlp(8, 1, 0), str(baseline))
        torch_baseline = root / "baseline.pt"
        if "libtorch" in args.runtimes:
            torch_mlp(8, 1, 0).save(str(torch_baseline))
        for index, (width, layers) in enumerate(SIZES):
            for runtime in args.runtimes:
                if runtime == "onnxruntime":
                    directory = save_mlflow(mlp(width, layers, index), root / f"mlp-{width}x{layers}")
                    script, model_file, warm = MEASURE, directory / "model.onnx", baseline
                else:
                    directory = save_torch_package(torch_mlp(width, layers, index), root / f"pt-{width}x{layers}")
                    script, warm = MEASURE_TORCH, torch_baseline
                    model_file = directory / "model_repository" / "mlp" / "1" / "model.pt"
                result = estimate(directory, max_batch_size=args.batch)
                parts = {part.name: part.mib for part in result.parts}
                estimated = parts["weights"] + parts["io"] + parts["activations"]
                measured = measure(script, model_file, warm, args.batch)
                row = {
                    "runtime": runtime,
                    "model": f"{width}x{layers}",
                    "weights_mib": round(parts["weights"], 1),
                    "activations_mib": round(parts["activations"], 1),
                    "estimated_mib": round(estimated, 1),
                    "measured_rss_mib": round(measured, 1),
                    "estimated_over_measured": round(estimated / measured, 3),
                }
                rows.append(row)
                ratios[runtime].append(estimated / measured)
                print(json.dumps(row), flush=True)
    for runtime, values in ratios.items():
        values.sort()
        low, median, high = values[0], values[len(values) // 2], values[-1]
        print(f"{runtime}: estimate / measured RSS growth: min {low:.3f}, median {median:.3f}, max {high:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
