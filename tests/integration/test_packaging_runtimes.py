"""Package real MLflow models for every runtime and verify them in the real runtimes on this machine."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_packaging import PackageManifest, package_model
from model_packaging.verify import (
    RuntimeServices,
    torchserve_server,
    triton_validator,
    verify_package,
    wrapper_server,
)
from tests.support.packaging_models import two_input_samples
from tests.support.tools import skip_or_fail


def require(reason: str | None) -> None:
    """Skip when a runtime is missing here; in CI a missing runtime is a failure."""
    if reason is not None:
        skip_or_fail(reason)


def missing_runtime(runtime: str) -> str | None:
    if runtime == "triton":
        return None if triton_validator.find_tritonserver() else triton_validator.missing_reason()
    if runtime == "torchserve":
        return torchserve_server.missing_reason()
    if runtime == "python":
        return wrapper_server.missing_reason()
    return None


def io(specs: list[Any]) -> list[tuple[str, str, list[int]]]:
    return [(spec.name, spec.datatype, spec.shape) for spec in specs]


def files(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


# id: (model, runtime, package options, inputs, outputs, check that loads the model in its runtime)
CASES: dict[str, tuple[str, str, dict[str, Any], list[Any], list[Any], str]] = {
    "triton-onnx-batch": (
        "onnx-regressor", "triton", {},
        [("X", "FP32", [-1, 3])], [("variable", "FP32", [-1, 1])],
        "names, types, dims and predictions in onnxruntime",
    ),
    "triton-onnx-two-inputs": (
        "onnx-two-inputs", "triton", {"instance_kind": "cpu", "max_batch_size": 16},
        [("a", "FP32", [-1, 3]), ("b", "FP32", [-1, 3])], [("y", "FP32", [-1, 3])],
        "names, types, dims and predictions in onnxruntime",
    ),
    "triton-sklearn-to-onnx": (
        "sklearn-iris", "triton", {"sklearn_to_onnx": True},
        [("X", "FP32", [-1, 4])], [("label", "INT64", [-1]), ("probabilities", "FP32", [-1, 3])],
        "names, types, dims and predictions in onnxruntime",
    ),
    "triton-sklearn-dataframe-columns": (
        "sklearn-dataframe", "triton", {"sklearn_to_onnx": True},
        [("X", "FP64", [-1, 2])], [("variable", "FP64", [-1, 1])],
        "names, types, dims and predictions in onnxruntime",
    ),
    "triton-pytorch-torchscript": (
        "pytorch-mlp", "triton", {},
        [("INPUT__0", "FP32", [-1, 4])], [("OUTPUT__0", "FP32", [-1, 3])],
        "TorchScript loaded by libtorch",
    ),
    "triton-pytorch-two-inputs": (
        "pytorch-two-inputs", "triton", {},
        [("INPUT__0", "FP32", [-1, 3]), ("INPUT__1", "FP32", [-1, 2])], [("OUTPUT__0", "FP32", [-1, 2])],
        "TorchScript loaded by libtorch",
    ),
    "triton-pytorch-dataframe-columns": (
        "pytorch-columns", "triton", {},
        [("INPUT__0", "INT64", [-1]), ("INPUT__1", "FP64", [-1]), ("INPUT__2", "FP32", [-1])],
        [("OUTPUT__0", "FP32", [-1, 2])],
        "TorchScript loaded by libtorch",
    ),
    "triton-keras-savedmodel-two-inputs": (
        "keras-two-inputs", "triton", {},
        [("a", "FP32", [-1, 3]), ("b", "FP32", [-1, 2])], [("output_0", "FP32", [-1, 2])],
        "SavedModel loaded by TensorFlow",
    ),
    "torchserve-mlp": (
        "pytorch-mlp", "torchserve", {},
        [("INPUT__0", "FP32", [-1, 4])], [("OUTPUT__0", "FP32", [-1, 3])],
        "served by TorchServe",
    ),
    "torchserve-two-inputs": (
        "pytorch-two-inputs", "torchserve", {},
        [("INPUT__0", "FP32", [-1, 3]), ("INPUT__1", "FP32", [-1, 2])], [("OUTPUT__0", "FP32", [-1, 2])],
        "served by TorchServe",
    ),
    "torchserve-dataframe-columns": (
        "pytorch-columns", "torchserve", {},
        [("INPUT__0", "INT64", [-1]), ("INPUT__1", "FP64", [-1]), ("INPUT__2", "FP32", [-1])],
        [("OUTPUT__0", "FP32", [-1, 2])],
        "served by TorchServe",
    ),
    "torchserve-cnn-images": (
        "pytorch-cnn", "torchserve", {"max_batch_size": 4},
        [("INPUT__0", "FP32", [-1, 1, 8, 8])], [("OUTPUT__0", "FP32", [-1, 2])],
        "served by TorchServe",
    ),
    "tfserving-keras-two-inputs": (
        "keras-two-inputs", "tfserving", {},
        [("a", "FP32", [-1, 3]), ("b", "FP32", [-1, 2])], [("output_0", "FP32", [-1, 2])],
        "SavedModel 1/ loaded by TensorFlow",
    ),
    "tfserving-keras-sequential": (
        "keras-sequential", "tfserving", {},
        [("input_layer", "FP32", [-1, 5])], [("output_0", "FP32", [-1, 1])],
        "SavedModel 1/ loaded by TensorFlow",
    ),
    "tfserving-tf-module": (
        "tf-module", "tfserving", {},
        [("x", "FP32", [-1, 3])], [("output_0", "FP32", [-1, 1])],
        "SavedModel 1/ loaded by TensorFlow",
    ),
    "python-sklearn": (
        "sklearn-iris", "python", {},
        [("input_0", "FP32", [-1, 4])], [("output_0", "INT64", [-1])],
        "served by model_wrappers (KServe ModelServer)",
    ),
    "python-pyfunc": (
        "pyfunc-scaled-sum", "python", {"instance_kind": "cpu"},
        [("input_0", "FP64", [-1, 3])], [("output_0", "FP64", [-1])],
        "served by model_wrappers (KServe ModelServer)",
    ),
    "python-onnx-two-inputs": (
        "onnx-two-inputs", "python", {},
        [("a", "FP32", [-1, 3]), ("b", "FP32", [-1, 3])], [("y", "FP32", [-1, 3])],
        "served by model_wrappers (KServe ModelServer)",
    ),
}  # fmt: skip

MODEL_FORMATS = {
    "triton-onnx-batch": ("onnx", "1"),
    "triton-pytorch-torchscript": ("pytorch", "1"),
    "triton-pytorch-two-inputs": ("pytorch", "1"),
    "torchserve-dataframe-columns": ("pytorch", "1"),
    "triton-keras-savedmodel-two-inputs": ("tensorflow", "2"),
    "torchserve-mlp": ("pytorch", "1"),
    "tfserving-keras-sequential": ("tensorflow", "2"),
    "tfserving-keras-two-inputs": ("tensorflow", "2"),
    "tfserving-tf-module": ("tensorflow", "2"),
    "python-pyfunc": ("mlflow", None),
}


SOURCE_FLAVORS = {
    "onnx-regressor": "onnx",
    "onnx-two-inputs": "onnx",
    "sklearn-iris": "sklearn",
    "sklearn-dataframe": "sklearn",
    "pytorch-mlp": "pytorch",
    "pytorch-cnn": "pytorch",
    "pytorch-two-inputs": "pytorch",
    "pytorch-columns": "pytorch",
    "keras-two-inputs": "tensorflow",
    "keras-sequential": "keras",
    "tf-module": "tensorflow",
}


# Models MLflow saves without an input example are verified on samples; the rest on their example.
SAMPLES = {"pytorch-two-inputs": two_input_samples}
# MLflow gives a multi-input .pt2 no pyfunc flavor: its pytorch loader is the reference there.
REFERENCE_CHECKS = {"pytorch-two-inputs": "MLflow pytorch flavor reference"}


def check_layout(case: str, runtime: str, out: Path, manifest: PackageManifest) -> None:
    found = files(out)
    name = manifest.model_name
    if runtime == "triton":
        assert f"{name}/config.pbtxt" in found
        model_file = {"onnx": "model.onnx", "sklearn": "model.onnx", "pytorch": "model.pt"}.get(
            manifest.source_flavor, "model.savedmodel/saved_model.pb"
        )
        assert f"{name}/1/{model_file}" in found
        assert all(path == "package.json" or path.startswith(f"{name}/") for path in found)
    elif runtime == "torchserve":
        assert found == {"package.json", "config/config.properties", f"model-store/{name}.mar"}
        with zipfile.ZipFile(out / "model-store" / f"{name}.mar") as archive:
            assert {"MAR-INF/MANIFEST.json", "model.pt", "handler.py", "io.json"} <= set(archive.namelist())
    elif runtime == "tfserving":
        assert "1/saved_model.pb" in found
        assert any(path.startswith("1/variables/") for path in found)
        assert all(path == "package.json" or path.startswith("1/") for path in found)
    else:
        assert {"MLmodel", "package.json", "wrapper-settings.json"} <= found


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_package_and_verify_in_the_real_runtime(
    case: str, packaging_models: dict[str, Path], runtime_services: RuntimeServices, tmp_path: Path
) -> None:
    model_key, runtime, options, inputs, outputs, runtime_check = CASES[case]
    require(missing_runtime(runtime))
    out = tmp_path / "package"
    manifest = package_model(str(packaging_models[model_key]), runtime, out, **options)

    assert manifest.runtime == runtime
    assert manifest.source_flavor == ("python_function" if runtime == "python" else SOURCE_FLAVORS[model_key])
    assert (io(manifest.inputs), io(manifest.outputs)) == (inputs, outputs)
    assert manifest.max_batch_size == options.get("max_batch_size", 8)
    assert manifest.model_name == model_key
    assert manifest.source.location == str(packaging_models[model_key])
    assert manifest.source.lineage_digest.startswith("sha256:")
    assert PackageManifest.read(out) == manifest
    if case in MODEL_FORMATS:
        assert (manifest.model_format.name, manifest.model_format.version) == MODEL_FORMATS[case]
    check_layout(case, runtime, out, manifest)

    samples = None
    if model_key in SAMPLES:
        samples = tmp_path / "samples.json"
        samples.write_text(json.dumps(SAMPLES[model_key]()))
    report = verify_package(out, runtime_services, samples=samples)
    statuses = {check.check: check.status for check in report.checks}
    assert report.passed, report.table()
    assert statuses["package digest"] == "passed"
    assert statuses[REFERENCE_CHECKS.get(model_key, "MLflow pyfunc reference")] == "passed", report.table()
    assert statuses[runtime_check] == "passed", report.table()
    compared = [check for check in report.checks if check.check.startswith("output ")]
    assert compared, report.table()
    assert all(check.status == "passed" for check in compared), report.table()
    if runtime == "triton":
        assert statuses["config.pbtxt parsed by tritonserver"] == "passed", report.table()
    if model_key == "sklearn-dataframe":
        assert manifest.inputs[0].mlflow_columns == ["age", "income"]


@pytest.mark.slow
def test_torchscript_serves_other_batch_sizes_than_the_traced_example(
    packaging_models: dict[str, Path], runtime_services: RuntimeServices, tmp_path: Path
) -> None:
    """Tracing must not freeze the example's batch size: TorchServe predicts 5 rows like MLflow (example: 3)."""
    require(missing_runtime("torchserve"))
    out = tmp_path / "package"
    package_model(str(packaging_models["pytorch-mlp"]), "torchserve", out, name="mlp-five-rows")
    samples = tmp_path / "rows.npz"
    np.savez(samples, input_0=np.random.default_rng(11).normal(size=(5, 4)).astype(np.float32))
    report = verify_package(out, runtime_services, samples=samples)
    assert report.passed, report.table()
    assert [check.check for check in report.checks] == [
        "package digest", "MLflow pyfunc reference", "served by TorchServe", "output OUTPUT__0"
    ]  # fmt: skip
    assert report.checks[1].detail == "5 rows from samples rows.npz"


def test_dataframe_columns_reach_libtorch_as_one_value_per_row(
    packaging_models: dict[str, Path], tmp_path: Path
) -> None:
    """Each column is its own batched input of one value per row, in its own dtype."""
    out = tmp_path / "package"
    package_model(str(packaging_models["pytorch-columns"]), "triton", out, name="columns", instance_kind="cpu")
    assert (out / "columns" / "config.pbtxt").read_text() == (
        'name: "columns"\n'
        'platform: "pytorch_libtorch"\n'
        "max_batch_size: 8\n"
        "input [\n"
        '  { name: "INPUT__0" data_type: TYPE_INT64 dims: [ 1 ] reshape { shape: [ ] } },\n'
        '  { name: "INPUT__1" data_type: TYPE_FP64 dims: [ 1 ] reshape { shape: [ ] } },\n'
        '  { name: "INPUT__2" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } }\n'
        "]\n"
        "output [\n"
        '  { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 2 ] }\n'
        "]\n"
        "dynamic_batching { max_queue_delay_microseconds: 100 }\n"
        "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
    )
    assert [spec.mlflow_name for spec in PackageManifest.read(out).inputs] == ["age", "income", "score"]
