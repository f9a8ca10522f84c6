"""The predictor pods KServe would create from the rendered runtimes, as far as monitoring needs.

KServe builds the predictor container from the ServingRuntime container and puts the runtime's
``spec.labels`` on the pod. In Knative mode, Knative renames the single user port ``user-port`` and
adds the queue-proxy sidecar with its own named ports (knative/serving ``pkg/apis/serving/v1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.manifests.objects import ISVC_LABEL, Obj, annotations_of, of_kind

KNATIVE = "knative"
STANDARD = "standard"

_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
_MODES = {"Serverless": KNATIVE, "Knative": KNATIVE, "RawDeployment": STANDARD, "Standard": STANDARD}

# Knative queue-proxy container ports (knative/serving pkg/reconciler/revision/resources/queue.go).
QUEUE_PROXY_PORTS = {"queue-port": 8012, "http-queueadm": 8022, "http-autometric": 9090, "http-usermetric": 9091}


@dataclass(frozen=True)
class PredictedPod:
    """A predictor pod for one runtime in one deployment mode."""

    runtime: str
    mode: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)


def deployment_mode(isvc: Obj) -> str:
    """KServe's effective mode; the shipped cluster default is Serverless (Knative)."""
    value = annotations_of(isvc).get(_MODE_ANNOTATION, "Serverless")
    return _MODES.get(value, f"unknown:{value}")


def modes_in_use(objects: list[Obj]) -> set[str]:
    """Modes of the rendered InferenceServices; both when there are none (runtimes serve any)."""
    modes = {deployment_mode(isvc) for isvc in of_kind(objects, "InferenceService")}
    return modes or {KNATIVE, STANDARD}


def predicted_pods(objects: list[Obj]) -> list[PredictedPod]:
    pods = []
    for runtime in of_kind(objects, "ServingRuntime"):
        spec = runtime.get("spec", {})
        labels = {**(spec.get("labels") or {}), ISVC_LABEL: "any", "component": "predictor"}
        container_ports = {
            str(port.get("name", "")): int(port["containerPort"])
            for container in spec.get("containers") or []
            for port in container.get("ports") or []
        }
        for mode in sorted(modes_in_use(objects)):
            if mode == KNATIVE:
                # Knative keeps one user port (validation rejects more) and names it user-port.
                numbers = sorted(set(container_ports.values()))
                ports = {"user-port": numbers[0]} if len(numbers) == 1 else {}
                ports.update(QUEUE_PROXY_PORTS)
            else:
                ports = dict(container_ports)
            pods.append(PredictedPod(runtime["metadata"]["name"], mode, labels, ports))
    return pods


def workload_pods(objects: list[Obj]) -> list[PredictedPod]:
    """Pods of the rendered Deployments (the shadow replay sink): template labels and named container ports."""
    pods = []
    for deployment in of_kind(objects, "Deployment"):
        template = deployment.get("spec", {}).get("template", {})
        ports = {
            str(port.get("name", "")): int(port["containerPort"])
            for container in template.get("spec", {}).get("containers") or []
            for port in container.get("ports") or []
        }
        labels = dict(template.get("metadata", {}).get("labels") or {})
        pods.append(PredictedPod(deployment["metadata"]["name"], "deployment", labels, ports))
    return pods
