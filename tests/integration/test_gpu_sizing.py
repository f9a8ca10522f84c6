from __future__ import annotations

from pathlib import Path

import pytest

from aiserving.cli.main import main
from aiserving.steps.gpu_sizing import size_model
from gpu_planning.estimate import CUDA_CONTEXT_MIB, MIB, RUNTIME_OVERHEAD_MIB, Part, Recommendation
from model_packaging import package_model
from serving_core.errors import InvalidInputError, UnsupportedError
from tests.support.packaging_models import save_onnx_regressor, save_pytorch_cnn


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sizing")
    onnx_model, cnn = save_onnx_regressor(root / "onnx-model"), save_pytorch_cnn(root / "cnn-model")
    package_model(str(onnx_model), "triton", root / "triton-onnx")
    package_model(str(cnn), "triton", root / "triton-cnn", max_batch_size=4)
    package_model(str(cnn), "torchserve", root / "torchserve-cnn", max_batch_size=4)
    return {path.name: path for path in root.iterdir()}


def test_onnx_weights_are_the_initializers_and_io_follows_the_signature(packages: dict[str, Path]) -> None:
    result = size_model(str(packages["triton-onnx"]), max_batch_size=1000, gpu="L4")

    # LinearRegression on 3 features: 3 float32 coefficients and 1 intercept; X (1000 x 3) and y (1000 x 1).
    assert result.parts[:2] == [
        Part(name="weights", mib=16 / MIB, source="ONNX initializers, constants and operator attributes"),
        Part(name="io", mib=1000 * 4 * 4 / MIB, source="signature inputs and outputs at batch 1000"),
    ]
    assert result.parts[3:] == [
        Part(name="runtime", mib=RUNTIME_OVERHEAD_MIB["triton"][0], source=RUNTIME_OVERHEAD_MIB["triton"][1]),
        Part(name="cuda_context", mib=CUDA_CONTEXT_MIB, source="0.3-0.5 GiB per process, top of the range"),
    ]
    assert result.recommendations == [
        Recommendation(
            product="L4",
            unit="time-sliced",
            shares_per_gpu=4,
            unit_memory_mib=23034 // 4,
            why="4 such models share one GPU (no memory isolation: each must cap its own memory)",
        )
    ]


@pytest.mark.parametrize("package", ["triton-cnn", "torchserve-cnn"])
def test_torchscript_weights_and_a_measured_forward_pass(packages: dict[str, Path], package: str) -> None:
    result = size_model(str(packages[package]), max_batch_size=None, gpu=None)
    parts = {part.name: part for part in result.parts}

    # Conv2d(1, 4, 3): 36 + 4; Linear(144, 2): 288 + 2; all float32.
    assert parts["weights"] == Part(name="weights", mib=330 * 4 / MIB, source="TorchScript parameters and buffers")
    assert parts["io"] == Part(name="io", mib=4 * (64 + 2) * 4 / MIB, source="signature inputs and outputs at batch 4")
    assert parts["activations"].source == "CPU forward pass (torch profiler)"
    # The conv output alone is 4 x 4 x 6 x 6 float32 values.
    assert parts["activations"].mib >= 4 * 4 * 36 * 4 / MIB
    # Under 1 GiB with the runtime and CUDA context: a quarter of a T4 is the smallest unit in the catalog.
    assert result.smallest == Recommendation(
        product="T4",
        unit="time-sliced",
        shares_per_gpu=4,
        unit_memory_mib=3840,
        why="4 such models share one GPU (no memory isolation: each must cap its own memory)",
    )
    assert result.recommendations[3] == Recommendation(
        product="A100-40GB",
        unit="mig",
        mig_profile="1g.5gb",
        unit_memory_mib=5120,
        why=f"smallest MIG profile with >= {result.need_mib} MiB (isolated memory and faults)",
    )


def test_bad_inputs_are_refused_with_the_value_and_the_fix(packages: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown GPU product 'K80'"):
        size_model(str(packages["triton-onnx"]), max_batch_size=None, gpu="K80")
    with pytest.raises(InvalidInputError, match=r"--max-batch-size 0 is below 1"):
        size_model(str(packages["triton-onnx"]), max_batch_size=0, gpu=None)
    with pytest.raises(InvalidInputError, match=r"is neither a package \(no package.json\) nor an MLflow model"):
        size_model(str(tmp_path), max_batch_size=None, gpu=None)
    # 2 billion rows of X and y do not fit a T4.
    with pytest.raises(UnsupportedError, match=r"more than T4 has"):
        size_model(str(packages["triton-onnx"]), max_batch_size=2_000_000_000, gpu="T4")


def test_the_cli_prints_the_table_and_exits_8_when_nothing_fits(
    packages: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["size", str(packages["triton-cnn"]), "--gpu", "H100-80GB"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("(triton, batch 4)")
    assert "H100-80GB   1g.10gb" in out
    assert main(["size", str(packages["triton-onnx"]), "--max-batch-size", "2000000000", "--gpu", "T4"]) == 8
