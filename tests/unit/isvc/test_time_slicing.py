"""A time-sliced share, as the builder writes it, is what manifests/ install and what KServe and the GPU Operator read.

Time-slicing is the GPU Operator's doing: the device plugin config (manifests/gpu-operator/device-plugin/ts-*.yaml)
advertises each GPU as N ``nvidia.com/gpu.shared`` replicas (renameByDefault) and GFD labels the node
``nvidia.com/gpu.sharing-strategy=time-slicing``. KServe reads no time-slicing annotation: its
``serving.kserve.io/gpu-resource-types`` annotation is read only for multi-node predictors (``workerSpec``:
validation and GPU injection, pkg/utils HasUnknownGpuResourceType), which we never render.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from inference_services.builder import build_inference_service, to_document
from inference_services.config import parse_config
from tests.conftest import REPO_ROOT
from tests.support.manifests.kustomize import KustomizeUnavailableError
from tests.support.manifests.kustomize import render as kustomize
from tests.support.tools import skip_or_fail

MANIFESTS = REPO_ROOT / "manifests"


def _kustomized(directory: str) -> list[dict[str, Any]]:
    try:
        return kustomize(MANIFESTS / directory)
    except KustomizeUnavailableError as error:
        skip_or_fail(str(error))


def _gpu_placement(isvc: dict[str, Any]) -> dict[str, Any]:
    """What decides where a predictor runs on which GPU: resource, tolerations, node affinity, GPU annotations."""
    predictor = isvc["spec"]["predictor"]
    terms = predictor["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return {
        "gpu_limits": {
            key: int(value) for key, value in predictor["model"]["resources"]["limits"].items() if "nvidia.com" in key
        },
        "tolerations": predictor["tolerations"],
        "sharing_expressions": [
            expression
            for term in terms
            for expression in term["matchExpressions"]
            if expression["key"] == "nvidia.com/gpu.sharing-strategy"
        ],
        "gpu_annotations": {
            key: value for key, value in isvc["metadata"].get("annotations", {}).items() if "gpu" in key.lower()
        },
    }


@pytest.fixture(scope="module")
def dev_isvcs() -> list[dict[str, Any]]:
    """The reference InferenceServices of the dev overlay, which uses components/gpu-timeslice."""
    return [obj for obj in _kustomized("overlays/dev") if obj["kind"] == "InferenceService"]


def test_the_builders_time_sliced_share_matches_the_gpu_timeslice_component(dev_isvcs: list[dict[str, Any]]) -> None:
    config = parse_config({
        "name": "fraud", "model_format": "mlflow", "runtime": "creativeflow-mlflow-wrapper",
        "storage_uri": "s3://models/fraud/7", "gpu": {"count": 1, "sharing": "time-sliced"},
    })  # fmt: skip
    built = _gpu_placement(to_document(build_inference_service(config, "ml")))

    assert built == {
        "gpu_limits": {"nvidia.com/gpu.shared": 1},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "sharing_expressions": [
            {"key": "nvidia.com/gpu.sharing-strategy", "operator": "In", "values": ["time-slicing"]}
        ],
        "gpu_annotations": {},
    }
    assert dev_isvcs
    for isvc in dev_isvcs:
        assert _gpu_placement(isvc) == built, isvc["metadata"]["name"]


def test_the_device_plugin_advertises_the_resource_the_builder_asks_for() -> None:
    [configs] = [
        obj for obj in _kustomized("gpu-operator")
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("device-plugin-config")
    ]  # fmt: skip
    shared = {key: yaml.safe_load(text) for key, text in configs["data"].items() if key.startswith("ts-")}

    assert sorted(shared) == ["ts-2", "ts-4"]
    for plugin in shared.values():
        time_slicing = plugin["sharing"]["timeSlicing"]
        # renameByDefault: nvidia.com/gpu is advertised as nvidia.com/gpu.shared; one share per pod at most.
        assert (time_slicing["renameByDefault"], time_slicing["failRequestsGreaterThanOne"]) == (True, True)
        assert [resource["name"] for resource in time_slicing["resources"]] == ["nvidia.com/gpu"]
