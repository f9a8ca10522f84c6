"""ServingRuntimes: pinned images, hardened containers, and InferenceServices that resolve to them."""

from __future__ import annotations

from tests.support.manifests.objects import (
    Obj,
    annotations_of,
    name_of,
    namespace_of,
    of_kind,
    predictor_containers,
    ref,
    runtime_containers,
)

WRITABLE_ROOT_FS_REASON = "serving.creativeflow.ai/writable-root-fs-reason"
_CLUSTER_SCOPED = {
    "Namespace",
    "PriorityClass",
    "ClusterPolicy",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterServingRuntime",
}


def _image_problem(image: str) -> str | None:
    if image.endswith(":replace"):
        return "still the placeholder; add it to the kustomization's images:"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag; pin it through the kustomization's images:"
    if last.endswith(":latest"):
        return "uses :latest; pin a version"
    return None


def check_images_pinned(objects: list[Obj]) -> list[str]:
    problems = []
    for runtime in of_kind(objects, "ServingRuntime"):
        for path, container in runtime_containers(runtime):
            problem = _image_problem(str(container.get("image", "")))
            if problem:
                problems.append(f"{ref(runtime)}: {path}.image {container.get('image')!r} {problem}")
    for isvc in of_kind(objects, "InferenceService"):
        for path, container in predictor_containers(isvc):
            if "image" in container:
                problem = _image_problem(str(container["image"]))
                if problem:
                    problems.append(f"{ref(isvc)}: {path}.image {container['image']!r} {problem}")
    return problems


def check_runtime_hardening(objects: list[Obj]) -> list[str]:
    """Non-root, no privilege escalation, no capabilities, read-only root unless a reason is given."""
    problems = []
    for runtime in of_kind(objects, "ServingRuntime"):
        for path, container in runtime_containers(runtime):
            context = container.get("securityContext") or {}
            if context.get("runAsNonRoot") is not True:
                problems.append(f"{ref(runtime)}: {path} must set runAsNonRoot: true")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{ref(runtime)}: {path} must set allowPrivilegeEscalation: false")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{ref(runtime)}: {path} must drop ALL capabilities")
            if context.get("readOnlyRootFilesystem") is not True and not annotations_of(runtime).get(
                WRITABLE_ROOT_FS_REASON
            ):
                problems.append(
                    f"{ref(runtime)}: {path} needs readOnlyRootFilesystem: true, or the annotation "
                    f"{WRITABLE_ROOT_FS_REASON} saying why the runtime cannot run that way"
                )
    return problems


def check_runtime_selection(objects: list[Obj]) -> list[str]:
    """Each InferenceService names a rendered runtime that supports its format and protocol."""
    problems = []
    runtimes = {(namespace_of(r), name_of(r)): r for r in of_kind(objects, "ServingRuntime")}
    for isvc in of_kind(objects, "InferenceService"):
        model = isvc.get("spec", {}).get("predictor", {}).get("model")
        if model is None:
            continue
        runtime = runtimes.get((namespace_of(isvc), model.get("runtime")))
        if runtime is None:
            problems.append(f"{ref(isvc)}: runtime {model.get('runtime')!r} is not a ServingRuntime in its namespace")
            continue
        spec = runtime["spec"]
        formats = {f["name"] for f in spec.get("supportedModelFormats") or []}
        if model.get("modelFormat", {}).get("name") not in formats:
            problems.append(f"{ref(isvc)}: {ref(runtime)} does not serve format {model.get('modelFormat')}")
        # An unset protocolVersion counts as v1 during selection.
        protocol = model.get("protocolVersion", "v1")
        if protocol not in (spec.get("protocolVersions") or []):
            problems.append(f"{ref(isvc)}: {ref(runtime)} does not speak protocol {protocol}")
    return problems


def check_cluster_scoped(objects: list[Obj]) -> list[str]:
    """Cluster-scoped kinds carry no namespace (kustomize stamps one on kinds it does not know)."""
    return [
        f"{ref(obj)}: {obj['kind']} is cluster-scoped; remove metadata.namespace"
        for obj in objects
        if obj.get("kind") in _CLUSTER_SCOPED and namespace_of(obj) is not None
    ]
