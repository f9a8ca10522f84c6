"""Events in the words Kubernetes 1.29 to today write them, as the sentences we print (issue 14: 1, 4, 6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from inference_services.events import plain_event, refusal_sentences
from inference_services.kube_errors import translate
from serving_core.errors import NotFoundError

GPU_SHORT = (
    "the predictor pod cannot be scheduled: 1 of 1 nodes have no free NVIDIA GPU (nvidia.com/gpu) (free or add GPUs "
    "of that kind, or ask for fewer)."
)
UNNAMED_TAINT = (
    "the predictor pod cannot be scheduled: 1 of 1 nodes carry a taint the pod does not tolerate (kubectl describe "
    "nodes shows them under Taints; add a matching entry to the config's tolerations)."
)
QUOTA = (
    'Error creating: pods "iris-predictor-7d9f-abcde" is forbidden: exceeded quota: gpu-quota, requested: '
    "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=0"
)
QUOTA_SENTENCE = (
    "the predictor pods are refused by ResourceQuota gpu-quota: they request requests.nvidia.com/gpu=1 while the "
    "namespace already uses requests.nvidia.com/gpu=0 of at most requests.nvidia.com/gpu=0; ask for fewer "
    "resources, free quota by removing other workloads, or ask the cluster admin to raise it (kubectl describe "
    "resourcequota gpu-quota)."
)
POD_SECURITY_VIOLATIONS = (
    'allowPrivilegeEscalation != false (container "kserve-container" must set '
    'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "kserve-container" must '
    'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "kserve-container" must '
    'set securityContext.runAsNonRoot=true), seccompProfile (pod or container "kserve-container" must set '
    'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
)
POD_SECURITY = (
    'Error creating: pods "iris-predictor-00001-deployment-5c8d7f-x2k9q" is forbidden: violates PodSecurity '
    f'"restricted:latest": {POD_SECURITY_VIOLATIONS}'
)
POD_SECURITY_SENTENCE = (
    'the predictor pods are refused by Pod Security admission: the namespace enforces "restricted:latest" and the '
    f"pod {POD_SECURITY_VIOLATIONS}; give the ServingRuntime's container a securityContext that meets the level "
    "(restricted: allowPrivilegeEscalation false, capabilities drop [ALL], runAsNonRoot true, seccompProfile "
    "RuntimeDefault), or deploy into a namespace whose pod-security.kubernetes.io/enforce label allows it."
)


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        # Kubernetes 1.34 and later (DRA on by default): the post-filter part starts with the DRA plugin.
        (
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. no new claims to deallocate, preemption: 0/1 "
            "nodes are available: 1 Preemption is not helpful for scheduling.",
            GPU_SHORT,
        ),
        (
            "0/1 nodes are available: 1 node(s) had untolerated taint(s). no new claims to deallocate, preemption: "
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
            UNNAMED_TAINT,
        ),
        # Kubernetes 1.29 to 1.33.
        (
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 3 No "
            "preemption victims found for incoming pod.",
            "the predictor pod cannot be scheduled: 3 of 3 nodes have no free NVIDIA GPU (nvidia.com/gpu) (free or "
            "add GPUs of that kind, or ask for fewer).",
        ),
        (
            "0/1 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/1 "
            "nodes are available: 1 Preemption is not helpful for scheduling.",
            "the predictor pod cannot be scheduled: 1 of 1 nodes carry a taint the pod does not tolerate "
            "(nvidia.com/gpu: present; add a matching entry to the config's tolerations).",
        ),
        # Without a post-filter part (preemption disabled, or the simulator's short form).
        ("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.", GPU_SHORT),
        # Several reasons, as the scheduler sorts and joins them.
        (
            "0/6 nodes are available: 1 node(s) had untolerated taint(s), 2 Insufficient cpu, 3 node(s) didn't "
            "match Pod's node affinity/selector. no new claims to deallocate, preemption: 0/6 nodes are available: "
            "2 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling.",
            "the predictor pod cannot be scheduled: 1 of 6 nodes carry a taint the pod does not tolerate (kubectl "
            "describe nodes shows them under Taints; add a matching entry to the config's tolerations); 2 of 6 nodes "
            "have no free CPU (free capacity or lower the request); 3 of 6 nodes do not match the GPU node affinity "
            "(check the gpu.products / gpu.min_memory_mib labels the config asks for).",
        ),
        (
            "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb. preemption: 0/2 nodes are available: 2 "
            "No preemption victims found for incoming pod.",
            "the predictor pod cannot be scheduled: 2 of 2 nodes have no free MIG slice 1g.10gb "
            "(nvidia.com/mig-1g.10gb) (free or add GPUs of that kind, or ask for fewer).",
        ),
        (
            "0/2 nodes are available: 1 node(s) were unschedulable, 1 Too many pods. preemption: 0/2 nodes are "
            "available: 2 Preemption is not helpful for scheduling.",
            "the predictor pod cannot be scheduled: 1 of 2 nodes are cordoned (uncordon them or add nodes); 1 of 2 "
            "nodes already run as many pods as they may (add nodes).",
        ),
        # A reason we do not know (a PreFilter message has no count) stays in the scheduler's words.
        (
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are "
            "available: 3 Preemption is not helpful for scheduling.",
            "the predictor pod cannot be scheduled: pod has unbound immediate PersistentVolumeClaims.",
        ),
    ],
)
def test_scheduler_wordings_from_1_29_to_today(message: str, sentence: str) -> None:
    assert plain_event("FailedScheduling", message) == sentence


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        (QUOTA, QUOTA_SENTENCE),
        (POD_SECURITY, POD_SECURITY_SENTENCE),
        (
            'Error creating: pods "iris-predictor-7d9f-abcde" is forbidden: failed quota: compute: must specify '
            "limits.cpu for: kserve-container; limits.memory for: kserve-container",
            "the predictor pods are refused by ResourceQuota compute, which requires every container to set "
            "limits.cpu for: kserve-container; limits.memory for: kserve-container; set cpu and memory in the "
            "deployment config (or have the cluster admin add a LimitRange with defaults).",
        ),
        (
            'Error creating: pods "iris-predictor-7d9f-abcde" is forbidden: error looking up service account '
            'ml/model-puller: serviceaccount "model-puller" not found',
            "the predictor pods cannot be created: service account ml/model-puller does not exist; create it or fix "
            "service_account_name in the deployment config.",
        ),
        (
            'Error creating: admission webhook "validate.kyverno.svc-fail" denied the request: policy '
            "Pod/ml/iris-predictor-7d9f-abcde for resource violation: require-labels: team label is required",
            'the predictor pods are refused by admission webhook "validate.kyverno.svc-fail": policy '
            "Pod/ml/iris-predictor-7d9f-abcde for resource violation: require-labels: team label is required; "
            "change the config as the webhook asks, or ask its owner.",
        ),
        (
            'Error creating: pods "iris-predictor-7d9f-abcde" is forbidden: something new',
            "the predictor pods cannot be created: something new",
        ),
    ],
)
def test_failed_create_refusals_become_sentences(message: str, sentence: str) -> None:
    assert plain_event("FailedCreate", message) == sentence


def test_a_modelcar_refusal_names_kserves_containers_not_the_runtime() -> None:
    violations = (
        'allowPrivilegeEscalation != false (containers "modelcar-init", "modelcar" must set '
        'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers "modelcar-init", '
        '"modelcar" must set securityContext.capabilities.drop=["ALL"])'
    )
    refused = 'Error creating: pods "iris-predictor-7d9f-abcde" is forbidden: violates PodSecurity'
    message = f'{refused} "restricted:latest": {violations}'

    assert plain_event("FailedCreate", message) == (
        'the predictor pods are refused by Pod Security admission: the namespace enforces "restricted:latest" and '
        f"the pod {violations}; KServe injects the modelcar and modelcar-init containers for an oci:// storageUri "
        "and no KServe setting makes them restricted; deploy into a namespace that enforces baseline, or serve the "
        "model from a pvc:// or s3:// storageUri instead."
    )


def event(kind: str, name: str, message: str, reason: str = "FailedCreate") -> dict[str, Any]:
    """A Warning event as ``kubectl get events -o json`` shows it."""
    api_version = "serving.knative.dev/v1" if kind == "Revision" else "apps/v1"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.17f3a2b4c5d6e7f8", "namespace": "ml", "resourceVersion": "4711"},
        "involvedObject": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": "ml",
                           "uid": "0b6f1d6e-2c55-4d43-9a0c-5a7f3c1e9d21", "resourceVersion": "4690"},
        "reason": reason,
        "message": message,
        "source": {"component": "replicaset-controller"},
        "firstTimestamp": "2026-05-04T09:12:01Z",
        "lastTimestamp": "2026-05-04T09:14:41Z",
        "count": 7,
        "type": "Warning",
        "reportingComponent": "replicaset-controller",
        "reportingInstance": "",
    }  # fmt: skip


def isvc(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ml", "generation": 2}, "spec": {"predictor": {}, **spec}}


def test_refusals_of_this_inference_service_are_read_from_replica_sets_and_revisions() -> None:
    knative = {
        **isvc("iris"),
        "status": {"components": {"predictor": {"latestCreatedRevision": "iris-predictor-00002"}}},
    }
    events = [
        event("ReplicaSet", "iris-predictor-00002-deployment-5c8d7f", QUOTA),
        event("Revision", "iris-predictor-00002", POD_SECURITY),
        # Another InferenceService whose name starts like ours, and an event of another kind.
        event("ReplicaSet", "iris-v2-predictor-6b9c4d", QUOTA),
        event("ReplicaSet", "iris-predictor-00002-deployment-5c8d7f", "Scaled up", reason="SuccessfulCreate"),
    ]

    assert refusal_sentences(events, knative) == [
        f"ReplicaSet iris-predictor-00002-deployment-5c8d7f: {QUOTA_SENTENCE}",
        f"Revision iris-predictor-00002: {POD_SECURITY_SENTENCE}",
    ]


def test_refusals_of_a_standard_canary_are_read_from_its_replica_set() -> None:
    standard = isvc("iris", canary=[{"trafficPercent": 10, "predictor": {"name": "canary-1a2b3c4d"}}])
    events = [event("ReplicaSet", "iris-canary-1a2b3c4d-predictor-7d9f8c", QUOTA)]

    assert refusal_sentences(events, standard) == [
        f"ReplicaSet iris-canary-1a2b3c4d-predictor-7d9f8c: {QUOTA_SENTENCE}"
    ]


def not_found(message: str, kind: str, name: str) -> ApiException:
    """A 404 with kube-apiserver's Status body."""
    error = ApiException(status=404, reason="Not Found")
    error.body = json.dumps(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": "NotFound", "details": {"name": name, "kind": kind}, "code": 404}
    )  # fmt: skip
    return error


def test_a_404_keeps_the_servers_reason_and_names_the_fix() -> None:
    missing_namespace = translate(
        not_found('namespaces "does-not-exist" not found', "namespaces", "does-not-exist"),
        'create InferenceService "does-not-exist/iris-classifier"',
    )
    missing_object = translate(
        not_found('inferenceservices.serving.kserve.io "iris" not found', "inferenceservices", "iris"),
        'read InferenceService "ml/iris"',
    )

    assert isinstance(missing_namespace, NotFoundError)
    assert (missing_namespace.message, missing_namespace.hint) == (
        'cannot create InferenceService "does-not-exist/iris-classifier": namespaces "does-not-exist" not found',
        "create the namespace (kubectl create namespace does-not-exist) or pass -n with one that exists",
    )
    assert (missing_object.message, missing_object.hint) == (
        'cannot read InferenceService "ml/iris": inferenceservices.serving.kserve.io "iris" not found',
        "check the name and the -n namespace",
    )
