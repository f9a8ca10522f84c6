"""Admission of the predictor pods: ResourceQuota, LimitRange, Pod Security, and what the cluster then shows.

When admission refuses a pod no Pod exists; the reason is a FailedCreate Warning event on the ReplicaSet
(Standard mode) or the Knative Revision (Knative mode), worded as the real plugins word it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inference_services.connection import KubeClients
from inference_services.deploy import render
from inference_services.isvc_api import GROUP, PLURAL, VERSION
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour
from tests.support.kube_api.admission import pod_security_violations
from tests.support.kube_api.controller import insufficient, untolerated_taint
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace

NO_PREEMPTION = (
    "no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


def eventually(find: Callable[[], Any], timeout_s: float = 5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := find():
            return found
        time.sleep(0.05)
    return find()


def deploy_raw(clients: KubeClients, namespace: str, name: str, mode: str, **extra: Any) -> None:
    clients.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, render(gpu_config(name, 1, mode=mode, **extra), namespace)
    )


def warnings_on(clients: KubeClients, namespace: str, kind: str) -> list[Any]:
    selector = f"involvedObject.kind={kind},reason=FailedCreate"
    return clients.core.list_namespaced_event(namespace, field_selector=selector).items


def gpu_quota(limit: str) -> dict:
    return {"metadata": {"name": "gpu-quota"}, "spec": {"hard": {"requests.nvidia.com/gpu": limit}}}


@pytest.mark.parametrize(("mode", "kind"), [("standard", "ReplicaSet"), ("knative", "Revision")])
def test_a_quota_refusal_leaves_no_pod_and_a_failed_create_event(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str, kind: str
) -> None:
    clients.core.create_namespaced_resource_quota(namespace, gpu_quota("0"))

    deploy_raw(clients, namespace, "starved", mode)

    [event] = eventually(lambda: warnings_on(clients, namespace, kind))
    assert event.type == "Warning"
    found = re.fullmatch(
        r'Error creating: pods "(?P<pod>starved-predictor-[a-z0-9-]+-)" is forbidden: exceeded quota: gpu-quota, '
        r"requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=0",
        event.message,
    )
    assert found is not None, event.message
    owner = event.involved_object
    owners = (
        client.AppsV1Api(clients.core.api_client).list_namespaced_replica_set(namespace).items
        if kind == "ReplicaSet"
        else clients.custom.list_namespaced_custom_object("serving.knative.dev", "v1", namespace, "revisions")["items"]
    )
    names = [item.metadata.name if kind == "ReplicaSet" else item["metadata"]["name"] for item in owners]
    assert (owner.kind, owner.name) == (kind, names[0])
    assert found["pod"].startswith(names[0] if kind == "ReplicaSet" else f"{names[0]}-deployment-")
    assert clients.core.list_namespaced_pod(namespace).items == []
    quota = clients.core.read_namespaced_resource_quota("gpu-quota", namespace)
    assert (quota.status.hard, quota.status.used) == (
        {"requests.nvidia.com/gpu": "0"},
        {"requests.nvidia.com/gpu": "0"},
    )

    # The ReplicaSet controller keeps trying: once the quota allows it, the pod comes.
    clients.core.patch_namespaced_resource_quota("gpu-quota", namespace, gpu_quota("1"))
    assert eventually(lambda: clients.core.list_namespaced_pod(namespace).items)
    assert eventually(
        lambda: (
            clients.core.read_namespaced_resource_quota("gpu-quota", namespace).status.used
            == {"requests.nvidia.com/gpu": "1"}
        )
    )


def test_quota_on_cpu_needs_every_container_to_request_it(clients: KubeClients, namespace: str) -> None:
    clients.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "compute"}, "spec": {"hard": {"requests.cpu": "8", "pods": "10"}}}
    )

    deploy_raw(clients, namespace, "unsized", "standard")

    [event] = eventually(lambda: warnings_on(clients, namespace, "ReplicaSet"))
    assert event.message.endswith(
        "is forbidden: failed quota: compute: must specify requests.cpu for: kserve-container"
    )


def test_limit_range_defaults_and_maximum(clients: KubeClients, namespace: str) -> None:
    clients.core.create_namespaced_limit_range(
        namespace,
        {"metadata": {"name": "limits"},
         "spec": {"limits": [{"type": "Container", "default": {"memory": "1Gi"}, "max": {"cpu": "2"}}]}},
    )  # fmt: skip
    stored = clients.core.read_namespaced_limit_range("limits", namespace).spec.limits[0]
    assert (stored.default, stored.default_request) == ({"memory": "1Gi", "cpu": "2"}, {"memory": "1Gi", "cpu": "2"})

    deploy_raw(clients, namespace, "defaulted", "standard")
    [pod] = eventually(lambda: clients.core.list_namespaced_pod(namespace).items)
    resources = pod.spec.containers[0].resources
    assert resources.limits == {"nvidia.com/gpu": "1", "memory": "1Gi", "cpu": "2"}
    assert resources.requests == {"nvidia.com/gpu": "1", "memory": "1Gi", "cpu": "2"}

    deploy_raw(clients, namespace, "oversized", "standard", cpu="4")
    [event] = eventually(lambda: warnings_on(clients, namespace, "ReplicaSet"))
    assert event.message.endswith("is forbidden: maximum cpu usage per Container is 2, but limit is 4")


def test_pod_security_restricted_refuses_the_default_predictor(cluster: KubeTestCluster, clients: KubeClients) -> None:
    namespace = fresh_namespace(cluster, {"pod-security.kubernetes.io/enforce": "restricted"})

    deploy_raw(clients, namespace, "unhardened", "standard")

    [event] = eventually(lambda: warnings_on(clients, namespace, "ReplicaSet"))
    assert event.message.split(" is forbidden: ")[1] == (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "kserve-container" '
        "must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
        '"kserve-container" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
        'container "kserve-container" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container '
        '"kserve-container" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert clients.core.list_namespaced_pod(namespace).items == []


def test_pod_security_levels_check_what_they_name() -> None:
    hardened = {"spec": {"containers": [{"name": "c", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}}]}}  # fmt: skip
    privileged = {"spec": {"hostNetwork": True, "containers": [{"name": "c", "securityContext": {"privileged": True}}]}}

    assert pod_security_violations("restricted", hardened) == []
    assert pod_security_violations("baseline", {"spec": {"containers": [{"name": "c"}]}}) == []
    assert pod_security_violations("baseline", privileged) == [
        "host namespaces (hostNetwork=true)",
        'privileged (container "c" must not set securityContext.privileged=true)',
    ]


def test_creating_a_pod_over_http_passes_admission_too(clients: KubeClients, namespace: str) -> None:
    clients.core.create_namespaced_resource_quota(namespace, gpu_quota("0"))
    container = {"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    pod = {"metadata": {"generateName": "direct-"}, "spec": {"containers": [container]}}

    with pytest.raises(ApiException) as refused:
        clients.core.create_namespaced_pod(namespace, pod)

    assert refused.value.status == 403
    assert '"reason": "Forbidden"' in refused.value.body
    assert 'pods \\"direct-\\" is forbidden: exceeded quota: gpu-quota' in refused.value.body


def test_scheduler_events_use_the_current_wording(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    assert insufficient(nodes=1) == f"0/1 nodes are available: 1 Insufficient nvidia.com/gpu. {NO_PREEMPTION}"
    assert untolerated_taint(nodes=1) == f"0/1 nodes are available: 1 node(s) had untolerated taint(s). {NO_PREEMPTION}"
    cluster.controller.script(model_uri("pending", 1), Behaviour(never_ready=True))

    deploy_raw(clients, namespace, "pending", "standard")

    def scheduling() -> list[Any]:
        selector = "involvedObject.kind=Pod,reason=FailedScheduling"
        return clients.core.list_namespaced_event(namespace, field_selector=selector).items

    [event] = eventually(scheduling)
    assert event.message == insufficient()
    assert event.reporting_component == "default-scheduler"
