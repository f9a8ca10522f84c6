"""Why an InferenceService is not ready, in plain words, from its conditions and events.

Two places hold the reason. A pod that exists but does not run has events of its own (the scheduler's
``FailedScheduling``, image pulls, crashes). A pod that admission refused (ResourceQuota, Pod Security,
a webhook, a missing service account) never exists: the refusal is a ``FailedCreate`` event on the object
that tried to create it, the ReplicaSet (both modes) or the Knative Revision. Both are read with ``list
events`` alone; the objects themselves are matched by name, so no further permission is needed.

The scheduler's wording is understood from Kubernetes 1.29 to today: ``0/N nodes are available: <count>
<reason>, …. <post-filter message>.``, where the post-filter part is ``preemption: …`` and, since dynamic
resource allocation is on by default, ``no new claims to deallocate, preemption: …``. A part we do not
know is kept in the scheduler's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from inference_services.connection import KubeClients
from inference_services.retry import call_with_retries
from inference_services.traffic import observed_generation
from serving_core.kube_objects import Document, conditions, metadata, predictor_spec, predictor_status, spec

_GPU_NAMES = {
    "nvidia.com/gpu": "NVIDIA GPU",
    "nvidia.com/gpu.shared": "time-sliced GPU share",
}
# The header, then the Filter reasons up to the first ". " (a reason such as "Insufficient nvidia.com/gpu"
# holds dots, never a dot and a space); what follows is the PostFilter (preemption, DRA) message.
_SCHEDULING = re.compile(r"^(\d+)/(\d+) nodes are available:\s*(.*?)(?:\.\s+(.*?))?\.?$", re.DOTALL)
_INSUFFICIENT = re.compile(r"^(\d+) Insufficient (\S+)$")
_AFFINITY = re.compile(r"^(\d+) node\(s\) didn't match Pod's node affinity/selector$")
# Named taint (1.25 to 1.33: "{key: value}"), and the current wording that no longer names it.
_NAMED_TAINT = re.compile(r"^(\d+) node\(s\) had untolerated taint \{(.*)\}$")
_UNNAMED_TAINT = re.compile(r"^(\d+) node\(s\) had untolerated taint\(s\)$")
_UNSCHEDULABLE = re.compile(r"^(\d+) node\(s\) were unschedulable$")
_TOO_MANY_PODS = re.compile(r"^(\d+) Too many pods$")

# FailedCreate: "Error creating: pods "NAME" is forbidden: WHY" (admission plugins) or
# "Error creating: WHY" (webhooks answer without the prefix).
_FAILED_CREATE = re.compile(r'^Error creating: (?:pods "(?P<pod>[^"]*)" is forbidden: )?(?P<why>.*)$', re.DOTALL)
_QUOTA = re.compile(
    r"^exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>\S+), used: (?P<used>\S+), "
    r"limited: (?P<limited>\S+)$"
)
_QUOTA_MUST_SPECIFY = re.compile(r"^failed quota: (?P<quota>[^:]+): must specify (?P<fields>.+)$")
_POD_SECURITY = re.compile(r'^violates PodSecurity "(?P<level>[^"]+)": (?P<violations>.+)$', re.DOTALL)
_SERVICE_ACCOUNT = re.compile(r'^error looking up service account (?P<account>\S+): serviceaccount "[^"]*" not found$')
_WEBHOOK = re.compile(r'^admission webhook "(?P<webhook>[^"]+)" denied the request: (?P<why>.*)$', re.DOTALL)


def _resource_words(resource: str) -> str:
    if resource in _GPU_NAMES:
        return f"{_GPU_NAMES[resource]} ({resource})"
    if resource.startswith("nvidia.com/mig-"):
        return f"MIG slice {resource.removeprefix('nvidia.com/mig-')} ({resource})"
    return {"cpu": "CPU", "memory": "memory"}.get(resource, resource)


def _node_reason(part: str, total: int) -> str:
    """One ``<count> <reason>`` of the scheduler as a clause with its fix; unknown ones as they are."""
    if found := _INSUFFICIENT.match(part):
        count, resource = int(found[1]), found[2]
        fix = (
            "free or add GPUs of that kind, or ask for fewer"
            if resource.startswith("nvidia.com/")
            else "free capacity or lower the request"
        )
        return f"{count} of {total} nodes have no free {_resource_words(resource)} ({fix})"
    if found := _AFFINITY.match(part):
        return (
            f"{found[1]} of {total} nodes do not match the GPU node affinity "
            "(check the gpu.products / gpu.min_memory_mib labels the config asks for)"
        )
    if found := _NAMED_TAINT.match(part):
        return (
            f"{found[1]} of {total} nodes carry a taint the pod does not tolerate ({found[2]}; "
            "add a matching entry to the config's tolerations)"
        )
    if found := _UNNAMED_TAINT.match(part):
        return (
            f"{found[1]} of {total} nodes carry a taint the pod does not tolerate (kubectl describe nodes shows "
            "them under Taints; add a matching entry to the config's tolerations)"
        )
    if found := _UNSCHEDULABLE.match(part):
        return f"{found[1]} of {total} nodes are cordoned (uncordon them or add nodes)"
    if found := _TOO_MANY_PODS.match(part):
        return f"{found[1]} of {total} nodes already run as many pods as they may (add nodes)"
    return part


def _scheduling_sentence(match: re.Match[str]) -> str:
    total = int(match[2])
    # The PostFilter part (match[4]) only says whether preemption could help; it never names a cause.
    reasons = [_node_reason(part, total) for part in (piece.strip() for piece in match[3].split(",")) if part]
    return "the predictor pod cannot be scheduled: " + "; ".join(reasons) + "."


def _quota_sentence(found: re.Match[str]) -> str:
    def listed(values: str) -> str:
        return values.replace(",", ", ")

    return (
        f"the predictor pods are refused by ResourceQuota {found['quota']}: they request "
        f"{listed(found['requested'])} while the namespace already uses {listed(found['used'])} of at most "
        f"{listed(found['limited'])}; ask for fewer resources, free quota by removing other workloads, or ask "
        f"the cluster admin to raise it (kubectl describe resourcequota {found['quota']})."
    )


def _must_specify_sentence(found: re.Match[str]) -> str:
    return (
        f"the predictor pods are refused by ResourceQuota {found['quota']}, which requires every container to set "
        f"{found['fields']}; set cpu and memory in the deployment config (or have the cluster admin add a "
        "LimitRange with defaults)."
    )


def _pod_security_sentence(found: re.Match[str]) -> str:
    refused = (
        f'the predictor pods are refused by Pod Security admission: the namespace enforces "{found["level"]}" and '
        f"the pod {found['violations'].strip()}; "
    )
    # KServe's modelcar containers take no securityContext from any setting (docs/deploying.md#pod-security).
    if re.search(r'containers? [^)]*"modelcar(-init)?"', found["violations"]):
        return refused + (
            "KServe injects the modelcar and modelcar-init containers for an oci:// storageUri and no KServe "
            "setting makes them restricted; deploy into a namespace that enforces baseline, or serve the model "
            "from a pvc:// or s3:// storageUri instead."
        )
    return refused + (
        "give the ServingRuntime's container a securityContext that meets the level (restricted: "
        "allowPrivilegeEscalation false, capabilities drop [ALL], runAsNonRoot true, seccompProfile "
        "RuntimeDefault), or deploy into a namespace whose pod-security.kubernetes.io/enforce label allows it."
    )


def _service_account_sentence(found: re.Match[str]) -> str:
    return (
        f"the predictor pods cannot be created: service account {found['account']} does not exist; create it "
        "or fix service_account_name in the deployment config."
    )


def _webhook_sentence(found: re.Match[str]) -> str:
    return (
        f'the predictor pods are refused by admission webhook "{found["webhook"]}": {found["why"].strip()}; '
        "change the config as the webhook asks, or ask its owner."
    )


_REFUSALS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_QUOTA, _quota_sentence),
    (_QUOTA_MUST_SPECIFY, _must_specify_sentence),
    (_POD_SECURITY, _pod_security_sentence),
    (_SERVICE_ACCOUNT, _service_account_sentence),
    (_WEBHOOK, _webhook_sentence),
)


def _failed_create_sentence(match: re.Match[str]) -> str:
    why = match["why"].strip()
    for pattern, sentence in _REFUSALS:
        if found := pattern.match(why):
            return sentence(found)
    return f"the predictor pods cannot be created: {why}"


def plain_event(reason: str, message: str) -> str:
    """One event as a sentence a person can act on; an event we do not know keeps its own words."""
    text = message.strip()
    if found := _SCHEDULING.match(text):
        return _scheduling_sentence(found)
    if reason == "FailedCreate" and (found := _FAILED_CREATE.match(text)):
        return _failed_create_sentence(found)
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


def component_prefixes(document: Document) -> set[str]:
    """Name prefixes of the objects KServe makes for the predictor and canaries of ``document``.

    Knative: Revisions ``<isvc>-predictor-00001``, their ReplicaSets ``<revision>-deployment-<hash>``.
    Standard: ReplicaSets ``<isvc>-predictor-<hash>``, or ``<isvc>-<name>-…`` for a named (promoted)
    predictor and each ``spec.canary[]`` predictor; the revisions the status names are added as well.
    """
    name = metadata(document)["name"]
    names = [predictor_spec(document).get("name")]
    names += [entry.get("predictor", {}).get("name") for entry in spec(document).get("canary") or []]
    prefixes = {f"{name}-predictor"} | {f"{name}-{component}" for component in names if component}
    predictor = predictor_status(document)
    revisions = [predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")]
    revisions += [entry.get("revisionName") for entry in predictor.get("traffic") or []]
    return prefixes | {revision for revision in revisions if revision}


def refusal_sentences(events: list[Document], document: Document) -> list[str]:
    """The ``FailedCreate`` events (wire form) of ``document``'s ReplicaSets and Revisions, as sentences."""
    prefixes = component_prefixes(document)
    sentences = []
    for event in events:
        involved = event.get("involvedObject") or {}
        owner = str(involved.get("name") or "")
        if event.get("reason") != "FailedCreate":
            continue
        if any(owner == prefix or owner.startswith(f"{prefix}-") for prefix in prefixes):
            sentences.append(
                f"{involved.get('kind')} {owner}: {plain_event('FailedCreate', event.get('message') or '')}"
            )
    return sentences


def _refusals(clients: KubeClients, namespace: str, document: Document) -> list[str]:
    listing = call_with_retries(
        lambda: clients.core.list_namespaced_event(
            namespace, field_selector="reason=FailedCreate", _request_timeout=clients.retry.timeouts
        ),
        action=f'list FailedCreate events in namespace "{namespace}"',
        policy=clients.retry,
    )
    events: list[Document] = clients.core.api_client.sanitize_for_serialization(listing.items)
    return refusal_sentences(events, document)


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
    sentences += _refusals(clients, namespace, document)
    unique = list(dict.fromkeys(sentences))
    return " ".join(unique) if unique else "no status condition or event says why."
