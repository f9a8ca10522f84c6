"""Why an InferenceService is not ready, in plain words, from its conditions and its pods' events."""

from __future__ import annotations

import re

from inference_services.connection import KubeClients
from inference_services.retry import call_with_retries
from inference_services.traffic import observed_generation
from serving_core.kube_objects import Document, conditions, metadata

_GPU_NAMES = {
    "nvidia.com/gpu": "NVIDIA GPU",
    "nvidia.com/gpu.shared": "time-sliced GPU share",
}
_SCHEDULING = re.compile(r"^(\d+)/(\d+) nodes are available: (.*?)\.?( preemption:.*)?$")
_INSUFFICIENT = re.compile(r"^(\d+) Insufficient (\S+)$")
_AFFINITY = re.compile(r"^(\d+) node\(s\) didn't match Pod's node affinity/selector$")
_TAINT = re.compile(r"^(\d+) node\(s\) had untolerated taint \{?([^}]*)\}?$")


def _resource_words(resource: str) -> str:
    if resource in _GPU_NAMES:
        return f"{_GPU_NAMES[resource]} ({resource})"
    if resource.startswith("nvidia.com/mig-"):
        return f"MIG slice {resource.removeprefix('nvidia.com/mig-')} ({resource})"
    return {"cpu": "CPU", "memory": "memory"}.get(resource, resource)


def _scheduling_sentence(match: re.Match[str]) -> str:
    total = int(match[2])
    reasons = []
    for part in (piece.strip() for piece in match[3].split(",")):
        if found := _INSUFFICIENT.match(part):
            count, resource = int(found[1]), found[2]
            fix = (
                "free or add GPUs of that kind, or ask for fewer"
                if resource.startswith("nvidia.com/")
                else "free capacity or lower the request"
            )
            reasons.append(f"{count} of {total} nodes have no free {_resource_words(resource)} ({fix})")
        elif found := _AFFINITY.match(part):
            reasons.append(
                f"{found[1]} of {total} nodes do not match the GPU node affinity "
                "(check the gpu.products / gpu.min_memory_mib labels the config asks for)"
            )
        elif found := _TAINT.match(part):
            reasons.append(f"{found[1]} of {total} nodes carry a taint the pod does not tolerate ({found[2]})")
        elif part:
            reasons.append(part)
    return "the predictor pod cannot be scheduled: " + "; ".join(reasons) + "."


def plain_event(reason: str, message: str) -> str:
    """One pod event as a sentence a person can act on."""
    if found := _SCHEDULING.match(message.strip()):
        return _scheduling_sentence(found)
    if reason in ("ErrImagePull", "ImagePullBackOff") or ("pull" in message.lower() and "image" in message.lower()):
        return f"the predictor image cannot be pulled ({message}); check the image name, digest and pull secret."
    if reason in ("BackOff", "CrashLoopBackOff"):
        return f"the model server keeps crashing ({message}); read its log with kubectl logs."
    if "OOMKilled" in message:
        return f"the model server ran out of memory ({message}); raise the memory limit."
    return f"{reason}: {message}"


def _pod_events(clients: KubeClients, namespace: str, pod: str) -> list[tuple[str, str]]:
    listing = call_with_retries(
        lambda: clients.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod}", _request_timeout=clients.retry.timeouts
        ),
        action=f'list events of pod "{namespace}/{pod}"',
        policy=clients.retry,
    )
    return [(event.reason or "", event.message or "") for event in listing.items if event.type != "Normal"]


def explain_not_ready(clients: KubeClients, namespace: str, document: Document | None) -> str:
    """A few sentences saying why ``document`` is not ready; never raises for missing details."""
    if document is None:
        return "the InferenceService was never read back."
    name = metadata(document)["name"]
    generation = int(metadata(document).get("generation") or 0)
    sentences: list[str] = []
    observed = observed_generation(document)
    if observed < generation:
        sentences.append(
            f"the KServe controller has not processed generation {generation} yet (last seen {observed}); "
            "check that the KServe controller is running."
        )
    for entry in conditions(document):
        if entry.get("status") != "True" and entry.get("message"):
            sentences.append(f"{entry['type']} is {entry['status']}: {entry['message']}")
    pods = call_with_retries(
        lambda: clients.core.list_namespaced_pod(
            namespace,
            label_selector=f"serving.kserve.io/inferenceservice={name}",
            _request_timeout=clients.retry.timeouts,
        ),
        action=f'list pods of InferenceService "{namespace}/{name}"',
        policy=clients.retry,
    )
    for pod in pods.items:
        if pod.status is not None and pod.status.phase == "Running":
            continue
        for reason, message in _pod_events(clients, namespace, pod.metadata.name):
            sentences.append(f"Pod {pod.metadata.name}: {plain_event(reason, message)}")
    unique = list(dict.fromkeys(sentences))
    return " ".join(unique) if unique else "no status condition or pod event says why."
