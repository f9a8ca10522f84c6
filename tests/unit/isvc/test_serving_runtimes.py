"""Pipeline deploys name the ServingRuntimes that manifests/ installs, and the Python one gets our server's flags.

The runtimes are read from the kustomize output of manifests/base (what a cluster gets), so renaming a
runtime, dropping a model format it serves, or changing the model server's flags breaks a test here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from aiserving.cli.main import build_parser
from aiserving.steps.deploy import build_config
from inference_services.deploy import render
from model_packaging.manifest import ModelFormat, PackageManifest, SourceRef, TensorSpec
from model_wrappers.settings import ServerSettings, add_server_arguments, settings_from_args
from serving_core.errors import InvalidInputError
from tests.conftest import REPO_ROOT
from tests.support.manifests.kustomize import KustomizeUnavailableError
from tests.support.manifests.kustomize import render as kustomize
from tests.support.tools import skip_or_fail

DIGEST = "sha256:" + "b" * 64
IMAGE = "registry.example.com/models/fraud@sha256:" + "a" * 64
# Every (runtime, modelFormat, protocol) a packager writes into package.json (model_packaging/triton.py,
# torchserve.py, tfserving.py, python_wrapper.py).
PACKAGES = [
    ("triton", "onnx", "1", "v2"),
    ("triton", "pytorch", "1", "v2"),
    ("triton", "tensorflow", "2", "v2"),
    ("torchserve", "pytorch", "1", "v2"),
    ("tfserving", "tensorflow", "2", "v1"),
    ("python", "mlflow", None, "v2"),
]


def _manifest(runtime: str, model_format: str, version: str | None, protocol: str) -> PackageManifest:
    return PackageManifest(
        runtime=runtime, model_name="fraud", model_format=ModelFormat(name=model_format, version=version),
        protocol_version=protocol, source_flavor="sklearn", conversion="none",
        inputs=[TensorSpec(name="input_0", datatype="FP32", shape=[-1, 4])],
        outputs=[TensorSpec(name="output_0", datatype="INT64", shape=[-1])],
        max_batch_size=8, instance_kind="gpu",
        source=SourceRef(location="/x", lineage_digest=DIGEST, registered_name="fraud", registered_version="7"),
        package_digest=DIGEST,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed_runtimes() -> dict[str, dict[str, Any]]:
    """The ServingRuntimes (and ClusterServingRuntimes) that manifests/base installs, by name."""
    try:
        objects = kustomize(REPO_ROOT / "manifests" / "base")
    except KustomizeUnavailableError as error:
        skip_or_fail(str(error))
    runtimes = [obj for obj in objects if obj["kind"] in ("ServingRuntime", "ClusterServingRuntime")]
    return {runtime["metadata"]["name"]: runtime for runtime in runtimes}


def _deployed(runtime: str, model_format: str, version: str | None, protocol: str, **extra: Any) -> Any:
    return build_config(
        _manifest(runtime, model_format, version, protocol), IMAGE, image_format="modelcar", isvc_name="fraud",
        namespace="ai", deployment_mode="knative", gpu_count=1, gpu_resource="nvidia.com/gpu", canary_percent=10,
        overrides={}, target="cluster", **extra,
    )  # fmt: skip


@pytest.mark.parametrize(("runtime", "model_format", "version", "protocol"), PACKAGES)
def test_a_pipeline_deploy_names_an_installed_runtime_that_serves_the_package(
    installed_runtimes: dict[str, dict[str, Any]], runtime: str, model_format: str, version: str | None, protocol: str
) -> None:
    config = _deployed(runtime, model_format, version, protocol)

    assert config.runtime in installed_runtimes, f"{config.runtime} is not installed by manifests/"
    spec = installed_runtimes[config.runtime]["spec"]
    served = [(entry["name"], entry.get("version")) for entry in spec["supportedModelFormats"]]
    # KServe matches a named runtime on the format name and, when the ISVC gives one, its version.
    assert any(name == model_format and version in (None, listed) for name, listed in served), served
    assert protocol in spec["protocolVersions"]


def _server_settings(runtime: dict[str, Any], isvc: dict[str, Any]) -> ServerSettings:
    """Parse what KServe starts the predictor with, as the server's own CLI does.

    KServe runs the runtime's command with the runtime's args (``{{.Name}}`` filled in) followed by the
    InferenceService's args; ``aiserving serve`` and ``python -m model_wrappers`` share one parser.
    """
    [container] = runtime["spec"]["containers"]
    name = isvc["metadata"]["name"]
    args = [arg.replace("{{.Name}}", name) for arg in container["args"]] + isvc["spec"]["predictor"]["model"]["args"]
    if container.get("command"):
        program, subcommand = container["command"]
        assert (Path(program).name, subcommand) == ("aiserving", "serve")
        parsed = build_parser().parse_args(["serve", *args])
    else:
        parser = argparse.ArgumentParser(exit_on_error=False)
        add_server_arguments(parser)
        parsed = parser.parse_args(args)
    return settings_from_args(parsed)


def test_the_python_runtime_starts_with_the_packages_batching(
    installed_runtimes: dict[str, dict[str, Any]],
) -> None:
    config = _deployed("python", "mlflow", None, "v2", batching={"max_batch_size": 64, "max_latency_ms": 2.5})
    isvc = render(config, "ai")

    assert isvc["spec"] == {
        "predictor": {
            "model": {
                "modelFormat": {"name": "mlflow"},
                "runtime": "creativeflow-mlflow-wrapper",
                "storageUri": f"oci://{IMAGE}",
                "protocolVersion": "v2",
                "args": ["--max-batch-size=64", "--max-latency-ms=2.5"],
                "resources": {"limits": {"nvidia.com/gpu": 1}},
            },
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "canaryTrafficPercent": 10,
        }
    }
    settings = _server_settings(installed_runtimes["creativeflow-mlflow-wrapper"], isvc)
    assert (settings.max_batch_size, settings.max_latency_ms) == (64, 2.5)
    assert (settings.model_name, str(settings.model_dir), settings.http_port, settings.grpc_port) == (
        "fraud", "/mnt/models", 8080, 8081
    )  # fmt: skip


def test_batching_is_refused_for_a_runtime_that_does_not_take_our_flags() -> None:
    with pytest.raises(InvalidInputError, match=r"batching: .*creativeflow-mlflow-wrapper"):
        _deployed("triton", "onnx", "1", "v2", batching={"max_batch_size": 64, "max_latency_ms": 5})
