"""Every overlay and every component combination builds, and each overlay is what its docs say."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import REPO_ROOT
from tests.manifests.conftest import AUTOSCALERS, ENVIRONMENTS, GPU_COMPONENTS, NAMESPACE, OVERLAYS
from tests.support.manifests.objects import Obj, gpu_limits, name_of, namespace_of, of_kind
from tests.support.manifests.pods import KNATIVE, STANDARD, deployment_mode
from tests.support.manifests.policies.scaling import effective_min_replicas

CLUSTER_SCOPED = {"Namespace", "PriorityClass"}
# InferenceService predictor fields Knative's webhook refuses unless the flag is enabled.
FEATURE_FLAGS = {
    "tolerations": "kubernetes.podspec-tolerations",
    "affinity": "kubernetes.podspec-affinity",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
}
BASE_KINDS = Counter(
    {
        "Namespace": 1,
        "ResourceQuota": 1,
        "LimitRange": 1,
        "NetworkPolicy": 4,
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
        "PriorityClass": 2,
        "ConfigMap": 2,
        "ServingRuntime": 4,
        "PodMonitor": 5,
        "PrometheusRule": 1,
        "InferenceService": 2,
        "Deployment": 1,  # the shadow stage's replay sink
        "Service": 1,
    }
)


def kinds(objects: list[Obj]) -> Counter[str]:
    return Counter(obj["kind"] for obj in objects)


def test_base_holds_the_namespace_platform(renders: dict[str, list[Obj]]) -> None:
    assert kinds(renders["base"]) == BASE_KINDS
    assert {name_of(r) for r in of_kind(renders["base"], "ServingRuntime")} == {
        "creativeflow-triton",
        "creativeflow-torchserve",
        "creativeflow-tfserving",
        "creativeflow-mlflow-wrapper",
    }


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_builds_into_one_namespace(renders: dict[str, list[Obj]], name: str) -> None:
    objects = renders[name]
    assert objects
    for obj in objects:
        expected = None if obj["kind"] in CLUSTER_SCOPED else NAMESPACE
        assert namespace_of(obj) == expected, obj["metadata"]


def test_gpu_operator_settings_build(renders: dict[str, list[Obj]]) -> None:
    objects = renders["gpu-operator"]
    assert kinds(objects) == Counter({"ClusterPolicy": 1, "ConfigMap": 3})
    assert {name_of(cm): sorted(cm["data"]) for cm in of_kind(objects, "ConfigMap")} == {
        "device-plugin-config": ["ts-2", "ts-4", "whole"],
        "mig-parted-config": ["config.yaml"],
        "dcgm-metrics": ["dcgm-metrics.csv"],
    }


def test_runtime_images_come_from_kustomize_images(renders: dict[str, list[Obj]]) -> None:
    images = {
        name_of(runtime): runtime["spec"]["containers"][0]["image"]
        for runtime in of_kind(renders["overlays/prod"], "ServingRuntime")
    }
    assert images == {
        "creativeflow-triton": "nvcr.io/nvidia/tritonserver:24.08-py3",
        "creativeflow-torchserve": "pytorch/torchserve-kfs:0.12.0-gpu",
        "creativeflow-tfserving": "tensorflow/serving:2.14.1-gpu",
        "creativeflow-mlflow-wrapper": "creativeflow/model-server:0.1.0",
    }


def test_mlflow_wrapper_runtime_contract(renders: dict[str, list[Obj]]) -> None:
    [runtime] = [
        r for r in of_kind(renders["overlays/prod"], "ServingRuntime") if name_of(r) == "creativeflow-mlflow-wrapper"
    ]
    container = runtime["spec"]["containers"][0]
    assert runtime["spec"]["supportedModelFormats"] == [{"name": "mlflow", "autoSelect": False}]
    assert runtime["spec"]["protocolVersions"] == ["v1", "v2", "grpc-v2"]
    assert container["ports"] == [
        {"name": "http1", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert runtime["metadata"]["annotations"] == {
        "prometheus.kserve.io/port": "8080",
        "prometheus.kserve.io/path": "/metrics",
    }
    assert container["command"] == ["/opt/venv/bin/aiserving", "serve"]
    assert container["args"] == ["--model-dir=/mnt/models", "--model-name={{.Name}}", "--port=8080", "--grpc-port=8081"]


def isvcs(renders: dict[str, list[Obj]], overlay: str) -> list[Obj]:
    found = of_kind(renders[f"overlays/{overlay}"], "InferenceService")
    assert {name_of(isvc) for isvc in found} == {"image-classifier", "fraud-detector"}
    return found


def test_dev_is_knative_scale_to_zero_on_time_sliced_shares(renders: dict[str, list[Obj]]) -> None:
    for isvc in isvcs(renders, "dev"):
        predictor = isvc["spec"]["predictor"]
        assert deployment_mode(isvc) == KNATIVE
        assert gpu_limits(isvc) == {"nvidia.com/gpu.shared": "1"}
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 1)
        assert predictor["priorityClassName"] == "creativeflow-batch-inference"
    assert not of_kind(renders["overlays/dev"], "PodDisruptionBudget")


def test_staging_is_standard_hpa_on_mig_slices(renders: dict[str, list[Obj]]) -> None:
    for isvc in isvcs(renders, "staging"):
        assert deployment_mode(isvc) == STANDARD
        assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
        assert gpu_limits(isvc) == {"nvidia.com/mig-1g.10gb": "1"}
    assert not of_kind(renders["overlays/staging"], "PodDisruptionBudget")


def test_prod_runs_two_replicas_on_whole_gpus_with_a_pdb_each(renders: dict[str, list[Obj]]) -> None:
    objects = renders["overlays/prod"]
    pdb_targets = {
        pdb["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"]
        for pdb in of_kind(objects, "PodDisruptionBudget")
    }
    for isvc in isvcs(renders, "prod"):
        assert deployment_mode(isvc) == STANDARD
        assert isvc["spec"]["predictor"]["minReplicas"] >= 2
        assert effective_min_replicas(objects, isvc) >= 2
        assert set(gpu_limits(isvc)) <= {"nvidia.com/gpu"} | {"nvidia.com/mig-1g.10gb"}
        assert name_of(isvc) in pdb_targets
    assert len(of_kind(objects, "ScaledObject")) == 2


def test_every_overlay_and_component_is_tested() -> None:
    manifests = REPO_ROOT / "manifests"
    assert {p.name for p in (manifests / "overlays").iterdir()} == set(OVERLAYS)
    assert {p.name for p in (manifests / "components").iterdir()} == set(GPU_COMPONENTS)
    assert {p.name for p in (manifests / "autoscaling").iterdir()} == set(AUTOSCALERS)


def test_knative_gpu_scheduling_is_documented_with_its_feature_flags(environments: dict[str, list[Obj]]) -> None:
    """Knative rejects tolerations/affinity without config-features flags; the docs must say so."""
    requirements = (REPO_ROOT / "docs" / "cluster-requirements.md").read_text(encoding="utf-8")
    needed = set()
    for objects in environments.values():
        for isvc in of_kind(objects, "InferenceService"):
            predictor = isvc["spec"]["predictor"]
            if deployment_mode(isvc) == KNATIVE:
                needed |= {FEATURE_FLAGS[field] for field in FEATURE_FLAGS if field in predictor}
    assert needed == {"kubernetes.podspec-tolerations", "kubernetes.podspec-affinity"}
    assert [flag for flag in sorted(needed) if f'"{flag}":"enabled"' not in requirements] == []
