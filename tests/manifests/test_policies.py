"""Policy checks pass on every environment and catch a planted mistake of each kind.

Each planted mistake mutates a deep copy of a rendered environment the way people get it wrong,
then asserts the policy names the problem; the unmutated render must stay clean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.manifests.conftest import ENVIRONMENTS
from tests.support.manifests.objects import Obj, name_of, of_kind
from tests.support.manifests.policies import POLICIES


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_is_clean(environments: dict[str, list[Obj]], environment: str, policy: str) -> None:
    assert POLICIES[policy](environments[environment]) == []


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    [found] = [obj for obj in of_kind(objects, kind) if name_of(obj) == name]
    return found


def isvc(objects: list[Obj], name: str = "image-classifier") -> Obj:
    return named(objects, "InferenceService", name)


def predictor(objects: list[Obj]) -> dict:
    return isvc(objects)["spec"]["predictor"]


def device_plugin_value(objects: list[Obj], key: str, text: str) -> None:
    named(objects, "ConfigMap", "device-plugin-config")["data"][key] = text


@dataclass(frozen=True)
class Mistake:
    policy: str
    environment: str
    plant: Callable[[list[Obj]], object]
    reported: str


MISTAKES = {
    # GPU only in limits
    "gpu in requests": Mistake(
        "gpu_only_in_limits",
        "overlays/prod",
        lambda o: predictor(o)["model"]["resources"].update(requests={"nvidia.com/gpu": "1"}),
        "resources.requests has nvidia.com/gpu; set GPUs in limits only",
    ),
    "fractional gpu": Mistake(
        "gpu_only_in_limits",
        "overlays/prod",
        lambda o: predictor(o)["model"]["resources"]["limits"].update({"nvidia.com/gpu": "0.5"}),
        "limits[nvidia.com/gpu] is '0.5'; use a whole number >= 1",
    ),
    "gpu on a runtime": Mistake(
        "gpu_only_in_limits",
        "overlays/dev",
        lambda o: named(o, "ServingRuntime", "creativeflow-triton")["spec"]["containers"][0]["resources"][
            "limits"
        ].update({"nvidia.com/gpu": "1"}),
        "GPUs belong on the InferenceService",
    ),
    # quota keys
    "limits. prefix on a GPU quota": Mistake(
        "quota",
        "overlays/prod",
        lambda o: named(o, "ResourceQuota", "serving-quota")["spec"]["hard"].update({"limits.nvidia.com/gpu": "4"}),
        "quota key 'limits.nvidia.com/gpu' is not enforced for extended resources; use 'requests.nvidia.com/gpu'",
    ),
    "no quota for the MIG name in use": Mistake(
        "quota",
        "overlays/staging",
        lambda o: named(o, "ResourceQuota", "serving-quota")["spec"]["hard"].pop("requests.nvidia.com/mig-1g.10gb"),
        "no ResourceQuota in creativeflow-serving has 'requests.nvidia.com/mig-1g.10gb'",
    ),
    "cpu quota without LimitRange": Mistake(
        "quota",
        "overlays/dev",
        lambda o: o.remove(named(o, "LimitRange", "serving-defaults")),
        "a cpu/memory quota needs a LimitRange with Container default and defaultRequest",
    ),
    # GPU pods tolerate the taint and select GPU nodes
    "no gpu toleration": Mistake(
        "gpu_scheduling",
        "overlays/prod",
        lambda o: predictor(o).pop("tolerations"),
        "GPU predictor does not tolerate nvidia.com/gpu:NoSchedule",
    ),
    "no gpu node selection": Mistake(
        "gpu_scheduling",
        "overlays/staging",
        lambda o: predictor(o).pop("affinity"),
        "GPU predictor does not select GPU nodes",
    ),
    "time-sliced share on unshared nodes": Mistake(
        "gpu_scheduling",
        "overlays/dev",
        lambda o: predictor(o)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]["matchExpressions"][0].update(values=["none"]),
        "nvidia.com/gpu.shared needs nodes with nvidia.com/gpu.sharing-strategy In [time-slicing]",
    ),
    "whole gpu pinned to a -SHARED product": Mistake(
        "gpu_scheduling",
        "overlays/prod",
        lambda o: predictor(o)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]["matchExpressions"].append(
            {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB-SHARED"]}
        ),
        "selects a -SHARED or -MIG- product name",
    ),
    # PDBs only where replicas >= 2, never maxUnavailable 0
    "pdb with maxUnavailable 0": Mistake(
        "pod_disruption_budgets",
        "overlays/prod",
        lambda o: named(o, "PodDisruptionBudget", "image-classifier-predictor")["spec"].update(maxUnavailable=0),
        "maxUnavailable must be at least 1; 0 blocks every drain",
    ),
    "pdb on a single replica": Mistake(
        "pod_disruption_budgets",
        "overlays/prod",
        lambda o: named(o, "ScaledObject", "fraud-detector-predictor")["spec"].update(minReplicaCount=1),
        "creativeflow-serving/fraud-detector runs min 1 replica(s); a PDB needs >= 2",
    ),
    "pdb selecting nothing": Mistake(
        "pod_disruption_budgets",
        "overlays/prod",
        lambda o: named(o, "PodDisruptionBudget", "image-classifier-predictor")["spec"]["selector"][
            "matchLabels"
        ].update({"serving.kserve.io/inferenceservice": "image-clasifier"}),
        "selects no InferenceService in this namespace",
    ),
    # InferenceService autoscaling and ScaledObjects
    "scale to zero in standard mode": Mistake(
        "inference_service_scaling",
        "overlays/staging",
        lambda o: predictor(o).update(minReplicas=0),
        "minReplicas 0 (scale to zero) needs Knative mode",
    ),
    "knative metric in standard mode": Mistake(
        "inference_service_scaling",
        "overlays/staging",
        lambda o: predictor(o).update(scaleMetric="concurrency"),
        "KServe's HPA scales on cpu or memory, not 'concurrency'",
    ),
    "keda next to kserve's hpa": Mistake(
        "scaled_objects",
        "overlays/prod",
        lambda o: isvc(o)["metadata"]["annotations"].update({"serving.kserve.io/autoscalerClass": "hpa"}),
        "needs serving.kserve.io/autoscalerClass: external, or KServe's HPA fights KEDA's",
    ),
    "keda scale to zero on own metric": Mistake(
        "scaled_objects",
        "overlays/prod",
        lambda o: named(o, "ScaledObject", "image-classifier-predictor")["spec"].update(minReplicaCount=0),
        "minReplicaCount 0 with a trigger on the target's own pods never scales up again",
    ),
    # RBAC
    "wildcard verb": Mistake(
        "rbac",
        "overlays/prod",
        lambda o: named(o, "Role", "creativeflow-isvc-deployer")["rules"][0].update(verbs=["*"]),
        "rules[0].verbs has a wildcard",
    ),
    "binding to another namespace": Mistake(
        "rbac",
        "overlays/prod",
        lambda o: named(o, "RoleBinding", "creativeflow-isvc-deployer")["subjects"][0].update(namespace="kubeflow"),
        "subject creativeflow-pipeline-runner is in another namespace (kubeflow)",
    ),
    # network policies allow the metrics ports
    "monitoring cannot reach triton metrics": Mistake(
        "network_policies",
        "overlays/prod",
        lambda o: named(o, "NetworkPolicy", "allow-monitoring-scrape")["spec"]["ingress"][0]["ports"].pop(0),
        "no NetworkPolicy lets namespace monitoring scrape port metrics (8002) on creativeflow-triton pods",
    ),
    "no default deny": Mistake(
        "network_policies",
        "overlays/dev",
        lambda o: o.remove(named(o, "NetworkPolicy", "default-deny-ingress")),
        "no default-deny ingress NetworkPolicy",
    ),
    "activator cannot reach queue-proxy": Mistake(
        "network_policies",
        "overlays/dev",
        lambda o: named(o, "NetworkPolicy", "allow-gateway-and-activator")["spec"]["ingress"][0]["from"][0][
            "namespaceSelector"
        ]["matchExpressions"][0].update(values=["istio-system"]),
        "knative-serving cannot reach creativeflow-triton pods on port 8012 (knative mode)",
    ),
    # monitors name existing ports and carry the Prometheus label
    "pod monitor on a port that does not exist": Mistake(
        "pod_monitors",
        "overlays/prod",
        lambda o: named(o, "PodMonitor", "triton-metrics")["spec"]["podMetricsEndpoints"][0].update(
            port="metrics-http"
        ),
        "port 'metrics-http' does not exist on creativeflow-triton pods in standard mode",
    ),
    "pod monitor on a Standard-mode port in Knative mode": Mistake(
        "pod_monitors",
        "overlays/dev",
        lambda o: named(o, "PodMonitor", "mlflow-wrapper-metrics")["spec"]["podMetricsEndpoints"][0].update(
            port="http1"
        ),
        "port 'http1' does not exist on creativeflow-mlflow-wrapper pods in knative mode",
    ),
    "pod monitor without the prometheus label": Mistake(
        "pod_monitors",
        "overlays/staging",
        lambda o: named(o, "PodMonitor", "torchserve-metrics")["metadata"]["labels"].pop("release"),
        "missing label release: kube-prometheus-stack",
    ),
    # device-plugin config parses and uses only known keys
    "renameByDefault under flags": Mistake(
        "device_plugin_config",
        "overlays/dev",
        lambda o: device_plugin_value(
            o,
            "ts-4",
            "version: v1\nflags: {migStrategy: mixed, renameByDefault: true}\n"
            "sharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 4}]}}\n",
        ),
        "flags.renameByDefault\n  Extra inputs are not permitted",
    ),
    "replicas 1 to disable sharing": Mistake(
        "device_plugin_config",
        "overlays/dev",
        lambda o: device_plugin_value(
            o, "ts-2", "version: v1\nsharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 1}]}}\n"
        ),
        "replicas\n  Input should be greater than or equal to 2",
    ),
    "device-plugin config that is not YAML": Mistake(
        "device_plugin_config",
        "overlays/dev",
        lambda o: device_plugin_value(o, "whole", "version: v1\nflags: {migStrategy: mixed\n"),
        "device-plugin-config[whole]: while parsing a flow mapping",
    ),
    "default device-plugin key missing": Mistake(
        "device_plugin_config",
        "overlays/prod",
        lambda o: named(o, "ClusterPolicy", "cluster-policy")["spec"]["devicePlugin"]["config"].update(default="ts-8"),
        "default device-plugin config 'ts-8' is not a key of ConfigMap gpu-operator/device-plugin-config",
    ),
    "device-plugin ConfigMap outside the operator namespace": Mistake(
        "device_plugin_config",
        "overlays/prod",
        lambda o: named(o, "ConfigMap", "device-plugin-config")["metadata"].update(namespace="kube-system"),
        "device-plugin ConfigMap 'device-plugin-config' is not in namespace gpu-operator",
    ),
    "alert on a DCGM field that is not exported": Mistake(
        "mig_and_dcgm_config",
        "overlays/prod",
        lambda o: named(o, "PrometheusRule", "gpu-serving-alerts")["spec"]["groups"][0]["rules"][0].update(
            expr="avg(DCGM_FI_DEV_ENC_UTIL) > 90"
        ),
        "GPUSaturated uses DCGM_FI_DEV_ENC_UTIL, which ConfigMap gpu-operator/dcgm-metrics does not export",
    ),
    "mig-parted ConfigMap under another key": Mistake(
        "mig_and_dcgm_config",
        "overlays/staging",
        lambda o: named(o, "ConfigMap", "mig-parted-config").update(
            data={"mig.yaml": named(o, "ConfigMap", "mig-parted-config")["data"]["config.yaml"]}
        ),
        "the mig-parted ConfigMap needs key config.yaml",
    ),
    # runtimes
    "image placeholder not pinned": Mistake(
        "images_pinned",
        "overlays/prod",
        lambda o: named(o, "ServingRuntime", "creativeflow-tfserving")["spec"]["containers"][0].update(
            image="creativeflow-tfserving:replace"
        ),
        "still the placeholder; add it to the kustomization's images:",
    ),
    "root filesystem writable without a reason": Mistake(
        "runtime_hardening",
        "overlays/prod",
        lambda o: named(o, "ServingRuntime", "creativeflow-mlflow-wrapper")["spec"]["containers"][0][
            "securityContext"
        ].update(readOnlyRootFilesystem=False),
        "needs readOnlyRootFilesystem: true, or the annotation serving.creativeflow.ai/writable-root-fs-reason",
    ),
    "capabilities kept": Mistake(
        "runtime_hardening",
        "overlays/dev",
        lambda o: named(o, "ServingRuntime", "creativeflow-torchserve")["spec"]["containers"][0]["securityContext"].pop(
            "capabilities"
        ),
        "must drop ALL capabilities",
    ),
    "isvc on a runtime without its protocol": Mistake(
        "runtime_selection",
        "overlays/prod",
        lambda o: predictor(o)["model"].update(protocolVersion="v1"),
        "creativeflow-serving/creativeflow-triton does not speak protocol v1",
    ),
    "ClusterPolicy with a namespace": Mistake(
        "cluster_scoped",
        "overlays/prod",
        lambda o: named(o, "ClusterPolicy", "cluster-policy")["metadata"].update(namespace="gpu-operator"),
        "ClusterPolicy is cluster-scoped; remove metadata.namespace",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_policy_reports_planted_mistake(environments: dict[str, list[Obj]], mistake: str) -> None:
    planted = MISTAKES[mistake]
    objects = copy.deepcopy(environments[planted.environment])
    planted.plant(objects)
    problems = POLICIES[planted.policy](objects)
    assert any(planted.reported in problem for problem in problems), problems


def test_every_policy_has_a_planted_mistake() -> None:
    assert {mistake.policy for mistake in MISTAKES.values()} == set(POLICIES)
