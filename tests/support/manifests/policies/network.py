"""NetworkPolicies and PodMonitors against the pods KServe would run."""

from __future__ import annotations

from typing import Any

from tests.support.manifests.objects import Obj, labels_of, namespace_of, of_kind, ref, selector_matches
from tests.support.manifests.pods import KNATIVE, PredictedPod, modes_in_use, predicted_pods, workload_pods

PROMETHEUS_SELECTOR_LABEL = ("release", "kube-prometheus-stack")
MONITORING_NAMESPACE = "monitoring"
GATEWAY_NAMESPACES = ("istio-system", "knative-serving")
# Where inference traffic enters a predictor pod in each mode.
SERVING_PORT = {KNATIVE: 8012, "standard": 8080}


def _namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def _allows(policy: Obj, source_namespace: str, pod: PredictedPod, port: int, policy_namespace: str | None) -> bool:
    """Whether this policy admits TCP ``port`` on ``pod`` from a pod in ``source_namespace``."""
    spec = policy.get("spec", {})
    if not selector_matches(spec.get("podSelector"), pod.labels):
        return False
    for rule in spec.get("ingress") or []:
        if not _peer_matches(rule.get("from"), source_namespace, policy_namespace):
            continue
        ports = rule.get("ports")
        if not ports or any(_port_matches(entry, pod, port) for entry in ports):
            return True
    return False


def _peer_matches(peers: list[dict[str, Any]] | None, source_namespace: str, policy_namespace: str | None) -> bool:
    if not peers:
        return True
    for peer in peers:
        if "namespaceSelector" in peer:
            if selector_matches(peer["namespaceSelector"], _namespace_labels(source_namespace)):
                return True
        elif "podSelector" in peer and source_namespace == policy_namespace:
            return True
    return False


def _port_matches(entry: dict[str, Any], pod: PredictedPod, port: int) -> bool:
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        return pod.ports.get(wanted) == port
    return int(wanted) == port


def _admitted(objects: list[Obj], source: str, pod: PredictedPod, port: int, namespace: str | None) -> bool:
    return any(
        _allows(policy, source, pod, port, namespace)
        for policy in of_kind(objects, "NetworkPolicy")
        if namespace_of(policy) == namespace
    )


def check_network_policies(objects: list[Obj]) -> list[str]:
    """Default-deny ingress, plus exactly the allows serving and monitoring need."""
    problems = []
    namespaces = {namespace_of(obj) for obj in of_kind(objects, "ServingRuntime")}
    pods = predicted_pods(objects)
    for namespace in sorted(n for n in namespaces if n is not None):
        policies = [p for p in of_kind(objects, "NetworkPolicy") if namespace_of(p) == namespace]
        if not any(_is_default_deny(policy) for policy in policies):
            problems.append(f"namespace {namespace}: no default-deny ingress NetworkPolicy")
        for pod in pods:
            for gateway in GATEWAY_NAMESPACES:
                if not _admitted(objects, gateway, pod, SERVING_PORT[pod.mode], namespace):
                    problems.append(
                        f"namespace {namespace}: {gateway} cannot reach {pod.runtime} pods on port "
                        f"{SERVING_PORT[pod.mode]} ({pod.mode} mode)"
                    )
        for monitor in of_kind(objects, "PodMonitor"):
            if namespace_of(monitor) != namespace:
                continue
            for pod, port_name in _scraped(monitor, pods + workload_pods(objects)):
                port = pod.ports.get(port_name)
                if port is not None and not _admitted(objects, MONITORING_NAMESPACE, pod, port, namespace):
                    problems.append(
                        f"{ref(monitor)}: no NetworkPolicy lets namespace {MONITORING_NAMESPACE} scrape port "
                        f"{port_name} ({port}) on {pod.runtime} pods"
                    )
    return problems


def _is_default_deny(policy: Obj) -> bool:
    spec = policy.get("spec", {})
    return spec.get("podSelector") == {} and "Ingress" in (spec.get("policyTypes") or []) and not spec.get("ingress")


def _scraped(monitor: Obj, pods: list[PredictedPod]) -> list[tuple[PredictedPod, str]]:
    spec = monitor.get("spec", {})
    return [
        (pod, str(endpoint.get("port")))
        for pod in pods
        if selector_matches(spec.get("selector"), pod.labels)
        for endpoint in spec.get("podMetricsEndpoints") or []
    ]


def check_pod_monitors(objects: list[Obj]) -> list[str]:
    """Monitors carry Prometheus' selector label and name ports that exist on the selected pods."""
    problems = []
    pods = predicted_pods(objects) + workload_pods(objects)
    key, value = PROMETHEUS_SELECTOR_LABEL
    for monitor in of_kind(objects, "PodMonitor") + of_kind(objects, "ServiceMonitor"):
        if labels_of(monitor).get(key) != value:
            problems.append(f"{ref(monitor)}: missing label {key}: {value}; Prometheus would ignore it")
    for monitor in of_kind(objects, "PodMonitor"):
        scraped = _scraped(monitor, pods)
        if not scraped:
            problems.append(f"{ref(monitor)}: selects no pod of any rendered ServingRuntime or Deployment")
        for pod, port_name in scraped:
            if port_name not in pod.ports:
                problems.append(
                    f"{ref(monitor)}: port {port_name!r} does not exist on {pod.runtime} pods in {pod.mode} mode "
                    f"(ports: {sorted(pod.ports)})"
                )
    for runtime in of_kind(objects, "ServingRuntime"):
        ports = [p for c in runtime.get("spec", {}).get("containers") or [] for p in c.get("ports") or []]
        if KNATIVE in modes_in_use(objects) and len(ports) != 1:
            problems.append(f"{ref(runtime)}: Knative mode allows exactly one container port, found {len(ports)}")
    return problems
