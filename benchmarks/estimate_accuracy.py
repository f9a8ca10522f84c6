"""Estimate-accuracy benchmark: `aiserving size`'s model-dependent parts against the memory onnxruntime really takes.

No GPU is needed: the proxy is CPU memory. For each of 10 ONNX MLPs (1.5 to 196 MiB of float32 weights), saved
as MLflow ONNX models, the estimate's weights + io + activations at the batch size (the parts that depend on the
model; the runtime and CUDA-context constants cannot be checked on a CPU) is compared with how much a fresh
process's RSS grows (current or peak, the larger) when onnxruntime (CPU provider, default arena) loads the model
and runs one batch. libtorch is not measured yet.

    .venv/bin/python -m benchmarks.estimate_accuracy [--batch 64]
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


def measure(model_file: Path, baseline_file: Path, batch: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(model_file), str(batch), "256", str(baseline_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", help="write every row here")
    args = parser.parse_args()
    import onnx

    rows = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = root / "baseline.onnx"
        onnx.save(mlp(8, 1, 0), str(baseline))
        for index, (width, layers) in enumerate(SIZES):
            directory = save_mlflow(mlp(width, layers, index), root / f"mlp-{width}x{layers}")
            result = estimate(directory, max_batch_size=args.batch)
            parts = {part.name: part.mib for part in result.parts}
            estimated = parts["weights"] + parts["io"] + parts["activations"]
            measured = measure(directory / "model.onnx", baseline, args.batch)
            row = {
                "model": f"{width}x{layers}",
                "weights_mib": round(parts["weights"], 1),
                "estimated_mib": round(estimated, 1),
                "measured_rss_mib": round(measured, 1),
                "estimated_over_measured": round(estimated / measured, 3),
            }
            rows.append(row)
            ratios.append(estimated / measured)
            print(json.dumps(row), flush=True)
    ratios.sort()
    low, median, high = ratios[0], ratios[len(ratios) // 2], ratios[-1]
    print(f"estimate / measured RSS growth: min {low:.3f}, median {median:.3f}, max {high:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
