"""Bad inputs fail with clear errors and write nothing; verify catches mismatches and broken configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_packaging import PackageManifest, package_model
from model_packaging.digest import package_digest
from model_packaging.verify import triton_validator
from serving_core.errors import InvalidInputError, UnsupportedError
from tests.conftest import REPO_ROOT
from tests.support.tools import skip_or_fail


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "aiserving", *args], capture_output=True, text=True, env=environment, timeout=600
    )


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def reseal(package: Path) -> None:
    """Record the current content's digest, as if the package had been made like this."""
    manifest = PackageManifest.read(package)
    manifest.model_copy(update={"package_digest": package_digest(package)}).write(package)


def require_triton() -> None:
    if triton_validator.find_tritonserver() is None:
        skip_or_fail(triton_validator.missing_reason())


@pytest.mark.parametrize(
    ("model_key", "runtime", "error", "message"),
    [
        ("pytorch-nosig", "triton", InvalidInputError, r"has no signature; the TorchScript package needs input names"),
        ("pytorch-nosig", "torchserve", InvalidInputError, r"has no signature"),
        ("pyfunc-datetime", "python", UnsupportedError, r"input 'when' has dtype datetime64\[ns\]"),
        ("onnx-regressor", "tfserving", UnsupportedError, r"runtime 'tfserving' cannot serve .* flavor\(s\) onnx"),
        ("keras-sequential", "torchserve", UnsupportedError, r"runtime 'torchserve' cannot serve .* flavor\(s\) keras"),
        ("sklearn-iris", "triton", UnsupportedError, r"sklearn model goes to Triton only through an ONNX conversion"),
        ("pytorch-text-column", "torchserve", UnsupportedError, r"column 'city' of type string; MLflow's pytorch"),
        ("pytorch-two-inputs", "python", UnsupportedError, r"runtime 'python' cannot serve .* flavor\(s\) pytorch"),
    ],
)
def test_bad_models_fail_before_writing(
    model_key: str, runtime: str, error: type[Exception], message: str, packaging_models: dict[str, Path], tmp_path
) -> None:
    out = tmp_path / "package"
    with pytest.raises(error, match=message) as caught:
        package_model(str(packaging_models[model_key]), runtime, out)
    assert caught.value.hint  # type: ignore[attr-defined]
    assert_nothing_written(out)


def test_wrong_flavor_error_lists_supported_pairs(packaging_models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError) as caught:
        package_model(str(packaging_models["onnx-regressor"]), "torchserve", tmp_path / "out")
    assert "onnx→triton" in caught.value.hint
    assert "pytorch→torchserve" in caught.value.hint


def test_directory_without_mlmodel_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "not-a-model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\0")
    with pytest.raises(InvalidInputError, match=r"has no MLmodel file"):
        package_model(str(model), "triton", tmp_path / "out")
    assert_nothing_written(tmp_path / "out")


def test_non_empty_output_directory_is_left_alone(packaging_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match=r"output directory .* exists and is not empty"):
        package_model(str(packaging_models["onnx-regressor"]), "triton", out)
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".out.partial-*"))


def test_cli_invalid_name_exits_2_and_writes_nothing(packaging_models, tmp_path: Path) -> None:
    result = run_cli(
        "package", str(packaging_models["pytorch-mlp"]), "--runtime", "triton", "--out", str(tmp_path / "o"),
        "--name", "Bad Name",
    )  # fmt: skip
    assert result.returncode == 2
    assert "model name 'Bad Name' is not valid for every runtime" in result.stderr
    assert_nothing_written(tmp_path / "o")


def test_cli_unsupported_pair_exits_8_and_writes_nothing(packaging_models, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = run_cli("package", str(packaging_models["keras-sequential"]), "--runtime", "torchserve", "--out", str(out))
    assert result.returncode == 8
    assert "error: runtime 'torchserve' cannot serve a model with flavor(s) keras" in result.stderr
    assert "Hint: supported flavor→runtime pairs: onnx→triton" in result.stderr
    assert_nothing_written(out)


def test_verify_fails_when_predictions_differ(packaging_models, tmp_path: Path) -> None:
    """Swap in a graph with other weights (and reseal the digest): only the comparison can catch it."""
    require_triton()
    out = tmp_path / "pkg"
    package_model(str(packaging_models["onnx-regressor"]), "triton", out)
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    features = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    other = LinearRegression().fit(features, features.sum(axis=1))
    (out / "onnx-regressor" / "1" / "model.onnx").write_bytes(
        to_onnx(other, features[:1], target_opset=17).SerializeToString()
    )
    reseal(out)
    result = run_cli("verify", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"package {out} (triton): FAILED"
    assert any(line.startswith("output variable") and " FAILED " in line for line in lines), result.stdout
    assert any(line.startswith("package digest") and " PASSED " in line for line in lines)


def test_verify_fails_on_a_config_tritonserver_cannot_parse(packaging_models, tmp_path: Path) -> None:
    require_triton()
    out = tmp_path / "pkg"
    package_model(str(packaging_models["onnx-two-inputs"]), "triton", out, instance_kind="cpu")
    config = out / "onnx-two-inputs" / "config.pbtxt"
    config.write_text(config.read_text().replace("data_type: TYPE_FP32", "datatype: TYPE_FP32", 1))
    reseal(out)
    result = run_cli("verify", str(out))
    assert result.returncode == 1
    parse_row = next(line for line in result.stdout.splitlines() if line.startswith("config.pbtxt parsed"))
    assert " FAILED " in parse_row
    assert "failed to poll from model repository" in parse_row


def test_verify_fails_on_a_changed_package(packaging_models, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    package_model(str(packaging_models["onnx-regressor"]), "triton", out)
    (out / "onnx-regressor" / "1" / "extra.txt").write_text("added after packaging")
    result = run_cli("verify", str(out))
    assert result.returncode == 1
    digest_row = next(line for line in result.stdout.splitlines() if line.startswith("package digest"))
    assert " FAILED " in digest_row
    assert "but package.json says sha256:" in digest_row


def test_verify_with_samples_file(packaging_models, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    package_model(str(packaging_models["onnx-two-inputs"]), "triton", out)
    samples = tmp_path / "samples.json"
    rng = np.random.default_rng(5)
    samples.write_text(json.dumps({"a": rng.normal(size=(7, 3)).tolist(), "b": rng.normal(size=(7, 3)).tolist()}))
    result = run_cli("verify", str(out), "--samples", str(samples))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 rows from samples samples.json" in result.stdout
    assert any(line.startswith("output y") and " PASSED " in line for line in result.stdout.splitlines())


def test_verify_samples_missing_an_input(packaging_models, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    package_model(str(packaging_models["onnx-two-inputs"]), "triton", out)
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps({"a": [[1.0, 2.0, 3.0]]}))
    result = run_cli("verify", str(out), "--samples", str(samples))
    assert result.returncode == 2
    assert "samples lack input(s) b" in result.stderr


def test_verify_of_a_model_without_input_example_predicts_on_inputs_from_its_signature(
    packaging_models, tmp_path: Path
) -> None:
    """MLflow saves no input example for a multi-input .pt2: verify makes rows up from the signature."""
    out = tmp_path / "pkg"
    package_model(str(packaging_models["pytorch-two-inputs"]), "triton", out, instance_kind="cpu")
    result = run_cli("verify", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    reference = next(line for line in result.stdout.splitlines() if line.startswith("MLflow pytorch flavor reference"))
    assert reference.split(None, 5)[4:] == ["PASSED", "4 rows from inputs made from the signature (no input example)"]
