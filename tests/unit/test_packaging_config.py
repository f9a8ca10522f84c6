"""Pure unit tests of packaging: Triton config, batch sizes, dtype mapping, pairs, comparison, manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_packaging.digest import package_digest
from model_packaging.dtypes import mapping_for, numpy_dtype_of_signature
from model_packaging.manifest import ModelFormat, PackageManifest, SourceRef, TensorSpec
from model_packaging.support import select_conversion, supported_pairs
from model_packaging.torchserve import kserve_properties, render_properties
from model_packaging.triton_config import (
    TritonModelConfig,
    TritonTensor,
    choose_max_batch_size,
    triton_tensors,
)
from model_packaging.verify.compare import compare_output
from model_packaging.verify.report import CheckResult, VerifyReport
from serving_core.errors import InvalidInputError, UnsupportedError

FEATURES = TensorSpec(name="X", datatype="FP32", shape=[-1, 4])
LABEL = TensorSpec(name="label", datatype="INT64", shape=[-1])
FIXED = TensorSpec(name="image", datatype="UINT8", shape=[3, 8, 8])


def test_config_renders_batching_gpu_instances_and_scalar_reshape() -> None:
    config = TritonModelConfig(
        name="iris",
        platform="onnxruntime_onnx",
        max_batch_size=8,
        inputs=triton_tensors([FEATURES], 8),
        outputs=triton_tensors([LABEL], 8),
        instance_kind="gpu",
    )
    assert config.render() == (
        'name: "iris"\n'
        'platform: "onnxruntime_onnx"\n'
        "max_batch_size: 8\n"
        "input [\n"
        '  { name: "X" data_type: TYPE_FP32 dims: [ 4 ] }\n'
        "]\n"
        "output [\n"
        '  { name: "label" data_type: TYPE_INT64 dims: [ 1 ] reshape { shape: [ ] } }\n'
        "]\n"
        "dynamic_batching { max_queue_delay_microseconds: 100 }\n"
        "instance_group [ { count: 1 kind: KIND_GPU } ]\n"
    )


def test_config_without_batching_keeps_full_dims_and_cpu_instances() -> None:
    config = TritonModelConfig(
        name="m",
        platform="pytorch_libtorch",
        max_batch_size=0,
        inputs=triton_tensors([FIXED], 0),
        outputs=(TritonTensor("OUTPUT__0", "TYPE_FP32", (2,)),),
        instance_kind="cpu",
    )
    text = config.render()
    assert '  { name: "image" data_type: TYPE_UINT8 dims: [ 3, 8, 8 ] }\n' in text
    assert "dynamic_batching" not in text
    assert text.endswith("instance_group [ { count: 1 kind: KIND_CPU } ]\n")


def test_max_batch_size_defaults_to_8_only_with_a_batch_dimension() -> None:
    assert choose_max_batch_size(None, [FEATURES, LABEL]) == 8
    assert choose_max_batch_size(None, [FIXED]) == 0
    assert choose_max_batch_size(32, [FEATURES, LABEL]) == 32
    assert choose_max_batch_size(0, [FEATURES]) == 0


def test_explicit_batching_without_batch_dimension_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"--max-batch-size 4 needs a leading -1.*image\[3, 8, 8\]"):
        choose_max_batch_size(4, [FIXED])
    with pytest.raises(InvalidInputError, match="negative"):
        choose_max_batch_size(-1, [FEATURES])


@pytest.mark.parametrize(
    ("dtype", "triton", "v2"),
    [("float32", "TYPE_FP32", "FP32"), ("int64", "TYPE_INT64", "INT64"), ("bool", "TYPE_BOOL", "BOOL"),
     ("<U5", "TYPE_STRING", "BYTES"), ("float16", "TYPE_FP16", "FP16"), ("uint8", "TYPE_UINT8", "UINT8")],
)  # fmt: skip
def test_dtype_mapping(dtype: str, triton: str, v2: str) -> None:
    mapping = mapping_for(np.dtype(dtype), where="x")
    assert (mapping.triton, mapping.v2) == (triton, v2)


def test_signature_types_map_to_numpy_and_datetime_is_unsupported() -> None:
    assert numpy_dtype_of_signature("double", where="c") == np.float64
    assert numpy_dtype_of_signature("long", where="c") == np.int64
    assert numpy_dtype_of_signature("float32", where="t") == np.float32
    with pytest.raises(UnsupportedError, match=r"column 'when' has dtype datetime64\[ns\]"):
        numpy_dtype_of_signature("datetime", where="column 'when'")


def test_unsupported_pair_lists_every_supported_pair() -> None:
    with pytest.raises(UnsupportedError) as caught:
        select_conversion("tfserving", {"onnx", "python_function"}, sklearn_to_onnx=False)
    assert "runtime 'tfserving' cannot serve a model with flavor(s) onnx" in str(caught.value)
    assert caught.value.hint == f"supported flavor→runtime pairs: {supported_pairs()}"
    assert "pytorch→torchserve" in supported_pairs()


def test_sklearn_to_triton_needs_the_conversion_flag() -> None:
    with pytest.raises(UnsupportedError, match="only through an ONNX conversion"):
        select_conversion("triton", {"sklearn", "python_function"}, sklearn_to_onnx=False)
    assert select_conversion("triton", {"sklearn", "python_function"}, sklearn_to_onnx=True).flavor == "sklearn"
    assert select_conversion("python", {"sklearn", "python_function"}, sklearn_to_onnx=False).flavor == (
        "python_function"
    )


def test_compare_uses_dtype_tolerance_and_exact_integers() -> None:
    expected = np.array([[1.0, 2.0]], dtype=np.float32)
    assert compare_output("y", expected, expected + 1e-6).status == "passed"
    assert compare_output("y", expected, expected + 1e-2).status == "failed"
    assert compare_output("y", expected, np.zeros(3, dtype=np.float32)) == CheckResult(
        "output y", "failed", "shape [3] but MLflow gives [1, 2]"
    )
    labels = np.array([0, 2, 1])
    assert compare_output("label", labels, labels.reshape(3, 1)) == CheckResult(
        "output label", "passed", "exact match of 3 values (int64)"
    )
    assert compare_output("label", labels, np.array([0, 2, 2])) == CheckResult(
        "output label", "failed", "1 values differ"
    )


def test_report_fails_on_any_failed_check_and_prints_a_table() -> None:
    report = VerifyReport("/pkg", "triton")
    report.add("package digest", "passed", "sha256:x")
    report.add("served", "skipped", "no GPU")
    assert report.passed
    assert report.table() == (
        "package /pkg (triton): PASSED\n"
        "CHECK           STATUS   DETAIL\n"
        "package digest  PASSED   sha256:x\n"
        "served          SKIPPED  no GPU"
    )
    report.add("output y", "failed", "max |diff| 1")
    assert not report.passed


def test_torchserve_properties_follow_kserve_layout() -> None:
    properties = kserve_properties("mlp", 4)
    assert properties["inference_address"] == "http://0.0.0.0:8085"
    assert properties["model_store"] == "/mnt/models/model-store"
    assert properties["enable_envvars_config"] == "true"
    assert json.loads(properties["model_snapshot"]) == {
        "name": "startup.cfg",
        "modelCount": 1,
        "models": {
            "mlp": {
                "1.0": {
                    "defaultVersion": True,
                    "marName": "mlp.mar",
                    "minWorkers": 1,
                    "maxWorkers": 1,
                    "batchSize": 4,
                    "maxBatchDelay": 10,
                    "responseTimeout": 120,
                }
            }
        },
    }
    assert render_properties({"a": "1", "b": "x=y"}) == "a=1\nb=x=y\n"


def test_manifest_round_trip_and_digest_ignores_package_json(tmp_path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"graph")
    digest = package_digest(tmp_path)
    manifest = PackageManifest(
        runtime="triton",
        model_name="m",
        model_format=ModelFormat(name="onnx", version="1"),
        protocol_version="v2",
        source_flavor="onnx",
        conversion="ONNX model copied",
        inputs=[FEATURES],
        outputs=[LABEL],
        max_batch_size=8,
        instance_kind="gpu",
        source=SourceRef(location="/models/m", lineage_digest="sha256:abc"),
        package_digest=digest,
    )
    manifest.write(tmp_path)
    assert package_digest(tmp_path) == digest
    assert PackageManifest.read(tmp_path) == manifest
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"graph2")
    assert package_digest(tmp_path) != digest


def test_reading_a_directory_without_package_json_fails(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match=r"has no package\.json"):
        PackageManifest.read(tmp_path)
