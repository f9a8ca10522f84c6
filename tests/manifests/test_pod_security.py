"""Predictor pods of every shipped runtime, built as KServe 0.20/0.21 and Knative build them, under Pod Security.

Each pod is the kustomize-built ServingRuntime's container plus what the platform injects, and runs through the
test API server's Pod Security checks (pod-security-admission's ``restricted``/``baseline`` rules and wording).
The injected containers carry exactly the securityContext the upstream code gives them (cited per fact below);
nothing here reads our YAML for "looks hardened".

Findings (docs/deploying.md "Pod Security"):

- ``pvc://`` (no injected container) passes ``restricted`` in both modes: our runtimes and Knative's queue-proxy
  comply.
- ``s3://`` etc. (storage-initializer) passes ``restricted`` only once the ClusterStorageContainer ``default``
  gives the init container a restricted securityContext; KServe's kustomize install gives it none, its Helm chart
  everything but ``seccompProfile``.
- ``oci://`` (modelcar) never passes ``restricted``: KServe creates ``modelcar`` and ``modelcar-init`` with no
  ``allowPrivilegeEscalation`` and no ``capabilities`` (container-only fields, so no pod-level setting helps) and
  no configuration adds them. It passes ``baseline``, which is what the namespace enforces.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from tests.manifests.conftest import ENVIRONMENTS
from tests.support.kube_api.admission import ENFORCE_LABEL, pod_security_violations
from tests.support.manifests.objects import Obj, labels_of, name_of, of_kind
from tests.support.manifests.pods import KNATIVE, STANDARD, deployment_mode, modes_in_use

RUNTIMES = ("creativeflow-mlflow-wrapper", "creativeflow-tfserving", "creativeflow-torchserve", "creativeflow-triton")
MODEL_IMAGE = "registry.creativeflow.internal/models/demo:1"
UID_MODELCAR = 1010  # KServe's documented and Helm value for storageInitializer.uidModelcar

# knative/serving pkg/reconciler/revision/resources/queue.go, queueSecurityContext (Knative 1.x): the queue-proxy
# sidecar of every Knative-mode pod.
QUEUE_PROXY = {
    "name": "queue-proxy",
    "image": "gcr.io/knative-releases/knative.dev/serving/cmd/queue",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}

# The storage-initializer's securityContext is that of the ClusterStorageContainer matching the URI, merged into
# the init container KServe builds without one (kserve/kserve pkg/utils/storage.go CreateInitContainerWithConfig;
# pkg/webhook/admission/pod/storage_initializer_injector.go CommonStorageInitialization → mergeContainerSpecs).
# Since kserve/kserve#3985 it is no longer copied from kserve-container. Not from inferenceservice-config.
STORAGE_CONTAINER_CONTEXTS: dict[str, dict[str, Any] | None] = {
    # kserve/kserve config/storagecontainers/default.yaml (kustomize install): no securityContext.
    "kustomize-install": None,
    # kserve/kserve charts/kserve-resources (README.md, kserve.storage.containerSecurityContext defaults).
    "helm-install": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "runAsNonRoot": True,
    },
    # What docs/deploying.md asks the cluster admin to set on ClusterStorageContainer default (as kserve/kserve
    # PR #5855 proposes upstream; the storage-initializer image's user is 1000).
    "restricted": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


@dataclass(frozen=True)
class Storage:
    """How the predictor gets its model, and the KServe settings that change what is injected."""

    uri: str
    storage_container: str = "kustomize-install"  # a key of STORAGE_CONTAINER_CONTEXTS
    uid_modelcar: int | None = None  # inferenceservice-config storageInitializer.uidModelcar
    # kserve/kserve#5166 (fixed by PR #5167): with uidModelcar set, ConfigureModelcarToContainer *replaced*
    # kserve-container's whole securityContext by {runAsUser: uid}; after the fix it only sets runAsUser.
    replaces_user_context: bool = False


STORAGES = {
    "pvc": Storage("pvc://models-pvc/demo"),
    "s3, kustomize-installed KServe": Storage("s3://models/demo"),
    "s3, Helm-installed KServe": Storage("s3://models/demo", storage_container="helm-install"),
    "s3, restricted ClusterStorageContainer": Storage("s3://models/demo", storage_container="restricted"),
    "oci": Storage(f"oci://{MODEL_IMAGE}"),
    "oci, uidModelcar": Storage(f"oci://{MODEL_IMAGE}", uid_modelcar=UID_MODELCAR),
    "oci, uidModelcar, before kserve#5167": Storage(
        f"oci://{MODEL_IMAGE}", uid_modelcar=UID_MODELCAR, replaces_user_context=True
    ),
}


def _names(names: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{name}"' for name in names)
    return f"containers {quoted}" if len(names) > 1 else f"container {quoted}"


def restricted_violations(
    *,
    escalation: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    non_root: tuple[str, ...] = (),
    seccomp: tuple[str, ...] = (),
) -> list[str]:
    """pod-security-admission's messages for containers missing each restricted field (no pod-level context)."""
    found = []
    if escalation:
        found.append(
            f"allowPrivilegeEscalation != false ({_names(escalation)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    if drop:
        found.append(f'unrestricted capabilities ({_names(drop)} must set securityContext.capabilities.drop=["ALL"])')
    if non_root:
        found.append(f"runAsNonRoot != true (pod or {_names(non_root)} must set securityContext.runAsNonRoot=true)")
    if seccomp:
        found.append(
            f"seccompProfile (pod or {_names(seccomp)} must set securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost")'
        )
    return found


MODELCAR = ("modelcar-init", "modelcar")
INITIALIZER = ("storage-initializer",)
# Init containers come first in pod-security-admission's container lists, then containers in pod order.
EXPECTED_RESTRICTED = {
    "pvc": [],
    "s3, kustomize-installed KServe": restricted_violations(
        escalation=INITIALIZER, drop=INITIALIZER, non_root=INITIALIZER, seccomp=INITIALIZER
    ),
    "s3, Helm-installed KServe": restricted_violations(seccomp=INITIALIZER),
    "s3, restricted ClusterStorageContainer": [],
    "oci": restricted_violations(escalation=MODELCAR, drop=MODELCAR, non_root=MODELCAR, seccomp=MODELCAR),
    # runAsUser on modelcar does not help: it still lacks every restricted field.
    "oci, uidModelcar": restricted_violations(escalation=MODELCAR, drop=MODELCAR, non_root=MODELCAR, seccomp=MODELCAR),
    "oci, uidModelcar, before kserve#5167": restricted_violations(
        escalation=("modelcar-init", "kserve-container", "modelcar"),
        drop=("modelcar-init", "kserve-container", "modelcar"),
        non_root=("modelcar-init", "kserve-container", "modelcar"),
        seccomp=("modelcar-init", "kserve-container", "modelcar"),
    ),
}


def _inject_storage(spec: dict[str, Any], storage: Storage) -> None:
    user = spec["containers"][0]
    if storage.uri.startswith("pvc://"):
        # storage_initializer_injector.go CommonStorageInitialization: a pvc:// URI is mounted into
        # kserve-container directly; no init container.
        claim = storage.uri.removeprefix("pvc://").split("/", 1)[0]
        spec.setdefault("volumes", []).append(
            {"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": claim}}
        )
        user.setdefault("volumeMounts", []).append({"name": "kserve-pvc-source", "mountPath": "/mnt/models"})
    elif storage.uri.startswith("oci://"):
        # pkg/utils/storage.go ConfigureModelcarToContainer, CreateModelcarContainer, CreateModelcarInitContainer.
        image = storage.uri.removeprefix("oci://")
        user.setdefault("env", []).append({"name": "MODEL_INIT_MODE", "value": "async"})
        user.setdefault("volumeMounts", []).append({"name": "kserve-provision-location", "mountPath": "/mnt"})
        spec.setdefault("volumes", []).append({"name": "kserve-provision-location", "emptyDir": {}})
        if storage.uid_modelcar is not None:
            if storage.replaces_user_context:
                user["securityContext"] = {"runAsUser": storage.uid_modelcar}
            else:
                user.setdefault("securityContext", {})["runAsUser"] = storage.uid_modelcar
        sidecar: dict[str, Any] = {
            "name": "modelcar",
            "image": image,
            "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"],
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}],
            "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
        }
        # CreateModelcarContainer: the sidecar's securityContext is {runAsUser: uidModelcar} or nothing; the
        # user container's securityContext is never copied to it. CreateModelcarInitContainer sets none at all.
        if storage.uid_modelcar is not None:
            sidecar["securityContext"] = {"runAsUser": storage.uid_modelcar}
        spec["containers"].append(sidecar)
        spec.setdefault("initContainers", []).append(
            {
                "name": "modelcar-init",
                "image": image,
                "args": ["sh", "-c", '[ -d /models ] && [ "$$(ls -A /models)" ]'],
                "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
            }
        )
        # "Enable process namespace sharing": not a Pod Security control (hostPID is).
        spec["shareProcessNamespace"] = True
    else:
        initializer: dict[str, Any] = {
            "name": "storage-initializer",
            "image": "kserve/storage-initializer:v0.20.0",
            "args": [storage.uri, "/mnt/models"],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "100Mi"}},
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt/models"}],
        }
        context = STORAGE_CONTAINER_CONTEXTS[storage.storage_container]
        if context is not None:
            initializer["securityContext"] = copy.deepcopy(context)
        spec.setdefault("initContainers", []).append(initializer)
        spec.setdefault("volumes", []).append({"name": "kserve-provision-location", "emptyDir": {}})
        user.setdefault("volumeMounts", []).append(
            {"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True}
        )


def predictor_pod(
    runtime: Obj, mode: str, storage: Storage, pod_security_context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The pod KServe (and Knative, in Knative mode) creates for an InferenceService on ``runtime``."""
    runtime_spec = runtime["spec"]
    [container] = copy.deepcopy(runtime_spec["containers"])
    # The ServingRuntime container becomes kserve-container; our InferenceServices set only resources on it
    # (strategic merge), so its securityContext is the runtime's.
    assert container["name"] == "kserve-container"
    spec: dict[str, Any] = {"containers": [container], "volumes": copy.deepcopy(runtime_spec.get("volumes") or [])}
    if pod_security_context is not None:
        spec["securityContext"] = copy.deepcopy(pod_security_context)  # predictor.securityContext of the ISVC
    if mode == KNATIVE:
        # Knative appends queue-proxy when it builds the Revision's Deployment, before any pod exists.
        spec["containers"].append(copy.deepcopy(QUEUE_PROXY))
    # KServe's pod mutating webhook injects the storage containers at pod creation, in both modes.
    _inject_storage(spec, storage)
    labels = {**(runtime_spec.get("labels") or {}), "component": "predictor"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-predictor", "labels": labels}, "spec": spec}


def runtimes_of(objects: list[Obj]) -> dict[str, Obj]:
    return {name_of(runtime): runtime for runtime in of_kind(objects, "ServingRuntime")}


def enforced_level(objects: list[Obj]) -> str:
    [namespace] = of_kind(objects, "Namespace")
    return labels_of(namespace).get(ENFORCE_LABEL, "privileged")


def test_every_shipped_runtime_is_covered(environments: dict[str, list[Obj]]) -> None:
    for objects in environments.values():
        assert sorted(runtimes_of(objects)) == sorted(RUNTIMES)


@pytest.mark.parametrize("storage", sorted(STORAGES))
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_restricted(environments: dict[str, list[Obj]], environment: str, storage: str) -> None:
    objects = environments[environment]
    for runtime in runtimes_of(objects).values():
        for mode in sorted(modes_in_use(objects)):
            pod = predictor_pod(runtime, mode, STORAGES[storage])
            assert pod_security_violations("restricted", pod) == EXPECTED_RESTRICTED[storage], (name_of(runtime), mode)


@pytest.mark.parametrize("storage", sorted(STORAGES))
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_namespace_level_admits_every_combination(
    environments: dict[str, list[Obj]], environment: str, storage: str
) -> None:
    objects = environments[environment]
    level = enforced_level(objects)
    for runtime in runtimes_of(objects).values():
        for mode in sorted(modes_in_use(objects)):
            pod = predictor_pod(runtime, mode, STORAGES[storage])
            assert pod_security_violations(level, pod) == [], (name_of(runtime), mode)


def test_namespace_enforces_the_strictest_level_the_reference_models_pass(environments: dict[str, list[Obj]]) -> None:
    """baseline, because the reference InferenceServices are modelcars; restricted is warned and audited."""
    for environment, objects in environments.items():
        [namespace] = of_kind(objects, "Namespace")
        labels = labels_of(namespace)
        assert labels[ENFORCE_LABEL] == "baseline", environment
        assert labels["pod-security.kubernetes.io/warn"] == "restricted", environment
        assert labels["pod-security.kubernetes.io/audit"] == "restricted", environment
        runtimes = runtimes_of(objects)
        isvcs = of_kind(objects, "InferenceService")
        assert isvcs, environment
        for isvc in isvcs:
            model = isvc["spec"]["predictor"]["model"]
            pod = predictor_pod(runtimes[model["runtime"]], deployment_mode(isvc), Storage(model["storageUri"]))
            assert model["storageUri"].startswith("oci://"), name_of(isvc)
            assert pod_security_violations("baseline", pod) == [], name_of(isvc)
            assert pod_security_violations("restricted", pod) != [], name_of(isvc)


@pytest.mark.parametrize("mode", [KNATIVE, STANDARD])
def test_pod_level_context_cannot_make_a_modelcar_restricted(renders: dict[str, list[Obj]], mode: str) -> None:
    """predictor.securityContext covers runAsNonRoot and seccomp, but the escalation and capability fields exist
    only per container, and KServe never sets them on modelcar and modelcar-init."""
    pod_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for runtime in runtimes_of(renders["base"]).values():
        pod = predictor_pod(runtime, mode, STORAGES["oci"], pod_security_context=pod_context)
        assert pod_security_violations("restricted", pod) == restricted_violations(escalation=MODELCAR, drop=MODELCAR)
        # The same pod-level context fixes the Helm-installed storage-initializer (it lacks only seccomp).
        pod = predictor_pod(runtime, mode, STORAGES["s3, Helm-installed KServe"], pod_security_context=pod_context)
        assert pod_security_violations("restricted", pod) == []


@pytest.mark.parametrize("mode", [KNATIVE, STANDARD])
def test_runtime_container_alone_is_restricted(renders: dict[str, list[Obj]], mode: str) -> None:
    """Our part: the runtime container (and queue-proxy) pass restricted with no pod-level help."""
    for runtime in runtimes_of(renders["base"]).values():
        context = runtime["spec"]["containers"][0]["securityContext"]
        assert isinstance(context.get("runAsUser"), int), name_of(runtime)
        assert context["runAsUser"] != 0, name_of(runtime)
        assert pod_security_violations("restricted", predictor_pod(runtime, mode, STORAGES["pvc"])) == []


def test_a_weakened_runtime_is_reported_by_name(renders: dict[str, list[Obj]]) -> None:
    runtime = copy.deepcopy(runtimes_of(renders["base"])["creativeflow-triton"])
    del runtime["spec"]["containers"][0]["securityContext"]["seccompProfile"]
    pod = predictor_pod(runtime, STANDARD, STORAGES["pvc"])
    assert pod_security_violations("restricted", pod) == restricted_violations(seccomp=("kserve-container",))
