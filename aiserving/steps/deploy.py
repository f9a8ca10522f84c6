"""Step: turn a package and its image into a deployment config, then render or apply it."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aiserving.steps.artifacts import ArtifactLike
from inference_services.config import DeploymentConfig, parse_config
from inference_services.runtimes import SERVING_RUNTIMES
from inference_services.traffic import MODE_ANNOTATION, serving_revision, traffic_split
from model_packaging.manifest import WRAPPER_SETTINGS_FILE, PackageManifest
from oci_images.reference import LayoutReference, parse_reference
from serving_core import isvc_lineage
from serving_core.errors import InvalidInputError
from serving_core.isvc_lineage import model_label
from serving_core.kube_objects import Document, annotations_of, labels_of, predictor_spec

RENDER_DIR_ENV = "AISERVING_RENDER_DIR"
TARGETS = ("cluster", "render")
GPU_SHARING = {"nvidia.com/gpu": "whole", "nvidia.com/gpu.shared": "time-sliced"}
_MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(?P<profile>[1-7]g\.[0-9]+gb(\.me)?)$")

log = logging.getLogger(__name__)


def render_dir() -> Path:
    """Where render-target manifests are kept between runs (alias checks read them)."""
    return Path(os.environ.get(RENDER_DIR_ENV) or ".aiserving/rendered")


def rendered_path(namespace: str, name: str) -> Path:
    """The last rendered manifest of an InferenceService."""
    return render_dir() / namespace / f"{name}.yaml"


def check_target(target: str) -> str:
    """Refuse an unknown target before anything happens.

    Raises:
        InvalidInputError: not cluster or render.
    """
    if target not in TARGETS:
        raise InvalidInputError(f"target {target!r} is not one of {', '.join(TARGETS)}", hint="use cluster or render")
    return target


def gpu_config(gpu_count: int, gpu_resource: str) -> dict[str, Any] | None:
    """The config's ``gpu`` block for a count and an extended-resource name.

    Raises:
        InvalidInputError: an unknown GPU resource name.
    """
    if gpu_count == 0:
        return None
    if gpu_resource in GPU_SHARING:
        return {"count": gpu_count, "sharing": GPU_SHARING[gpu_resource]}
    if match := _MIG_RESOURCE.match(gpu_resource):
        # A per-profile resource name exists only under the mixed MIG strategy.
        return {"count": gpu_count, "sharing": "mig", "mig_profile": match["profile"], "mig_strategy": "mixed"}
    raise InvalidInputError(
        f"gpu_resource {gpu_resource!r} is not a GPU resource we schedule",
        hint="use nvidia.com/gpu (whole GPUs), nvidia.com/mig-<profile> such as nvidia.com/mig-1g.10gb (MIG, "
        "mixed strategy) or nvidia.com/gpu.shared (time-sliced)",
    )


def _storage(image_ref: str, image_format: str, target: str) -> dict[str, str]:
    reference = parse_reference(image_ref)
    if isinstance(reference, LayoutReference):
        if target == "cluster":
            raise InvalidInputError(
                f"image {image_ref} is an OCI layout on this machine; a cluster cannot pull it",
                hint="build to a registry (image=REGISTRY/REPO:TAG), or copy the layout there with skopeo copy",
            )
        digest = image_ref.rpartition("@")[2]
        log.warning("rendering a storageUri for a local OCI layout; push it to a registry before deploying")
        pullable = f"oci-layout.local/{Path(reference.path).name}@{digest}"
    else:
        pullable = image_ref
    if image_format == "predictor":
        return {"image": pullable}
    return {"storage_uri": f"oci://{pullable}"}


def build_config(
    manifest: PackageManifest,
    image_ref: str,
    *,
    image_format: str,
    isvc_name: str,
    namespace: str,
    deployment_mode: str,
    gpu_count: int,
    gpu_resource: str,
    canary_percent: int,
    overrides: dict[str, Any],
    target: str,
    pipeline_run: str = "",
    batching: dict[str, Any] | None = None,
) -> DeploymentConfig:
    """The validated deployment config for one package; nothing is sent.

    ``batching`` (the Python wrapper's ``max_batch_size`` and ``max_latency_ms``) goes to our Python
    runtime's server as flags; see :func:`wrapper_batching`.

    Raises:
        InvalidInputError: any field is invalid (the message names it).
    """
    storage = _storage(image_ref, image_format, target)
    document: dict[str, Any] = {
        "name": isvc_name,
        "namespace": namespace,
        "mode": deployment_mode,
        "protocol_version": manifest.protocol_version,
        "canary_percent": canary_percent,
        "lineage": {
            "model_name": model_label(manifest.source.registered_name or manifest.model_name),
            "model_version": model_label(manifest.source.registered_version or "unregistered"),
            "run_id": manifest.source.run_id,
            "digest": manifest.source.lineage_digest,
            "pipeline_run": pipeline_run or None,
        },
        **storage,
    }
    if "storage_uri" in storage:
        document["runtime"] = SERVING_RUNTIMES[manifest.runtime]
        document["model_format"] = manifest.model_format.name
        if manifest.model_format.version:
            document["model_format_version"] = manifest.model_format.version
        if batching is not None:
            document["batching"] = batching
    gpu = gpu_config(gpu_count, gpu_resource)
    if gpu is not None:
        document["gpu"] = gpu
    document.update(overrides)
    return parse_config(document, source="deploy-inference-service parameters")


def wrapper_batching(package: Path, manifest: PackageManifest) -> dict[str, Any] | None:
    """The batching a Python-wrapper package asks its server for (``wrapper-settings.json``); None for others.

    Raises:
        InvalidInputError: a Python-wrapper package without readable settings.
    """
    if manifest.runtime != "python":
        return None
    path = package / WRAPPER_SETTINGS_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        return {"max_batch_size": int(settings["max_batch_size"]), "max_latency_ms": float(settings["max_latency_ms"])}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidInputError(
            f"{path} does not hold the wrapper's max_batch_size and max_latency_ms: {error}",
            hint="re-create the package with `aiserving package` (runtime python)",
        ) from error


def _gpu_resources(document: dict[str, Any]) -> str:
    model = document["spec"]["predictor"].get("model") or {}
    containers = document["spec"]["predictor"].get("containers") or [model]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    gpus = {key: value for key, value in limits.items() if key.startswith("nvidia.com/")}
    return ", ".join(f"{key}: {value}" for key, value in sorted(gpus.items())) or "none (CPU only)"


def service_metadata(document: dict[str, Any], target: str, canary_percent: int) -> dict[str, Any]:
    """The InferenceService artifact's metadata for a rendered or live object."""
    status = document.get("status") or {}
    return {
        "name": document["metadata"]["name"],
        "namespace": document["metadata"]["namespace"],
        "target": target,
        "mode": annotations_of(document).get(MODE_ANNOTATION, ""),
        "url": status.get("url", ""),
        "revision": serving_revision(document) or "",
        "traffic": [
            {"revision": share.revision, "percent": share.percent, "tag": share.role, "ready": share.ready}
            for share in traffic_split(document)
        ],
        "gpu_resources": _gpu_resources(document),
        "canary_percent": canary_percent,
        "generation": document["metadata"].get("generation", 0),
    }


# Not part of what a deploy asks for: where a rollout stands (the canary's share, the name a promotion gives
# the stable predictor) and which run wrote the object (a run that changes nothing must not claim it).
_ROLLOUT_STATE = ("canaryTrafficPercent", "name")
_RUN_ANNOTATIONS = (isvc_lineage.PIPELINE_RUN_ANNOTATION,)


def _desired_spec(document: Document) -> dict[str, Any]:
    spec = dict(document.get("spec") or {})
    spec["predictor"] = {key: value for key, value in predictor_spec(document).items() if key not in _ROLLOUT_STATE}
    return spec


def already_deployed(live: Document, rendered: Document) -> bool:
    """Whether ``live`` already is ``rendered``: the whole spec, and every label and annotation we write.

    Any difference (GPUs, replicas, resources, runtime, model, lineage) means the rendered object must be
    applied; labels and annotations that others added to the live object do not count.
    """
    if _desired_spec(live) != _desired_spec(rendered):
        return False
    live_labels, live_annotations = labels_of(live), annotations_of(live)
    owned_annotations = {key: value for key, value in annotations_of(rendered).items() if key not in _RUN_ANNOTATIONS}
    return all(live_labels.get(key) == value for key, value in labels_of(rendered).items()) and all(
        live_annotations.get(key) == value for key, value in owned_annotations.items()
    )


def _write_state(artifact: ArtifactLike, state: dict[str, Any]) -> None:
    # Written before any wait, so a cancelled run still says what it touched.
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True, kw_only=True)
class ServingTarget:
    """Where and how the InferenceService serves: the deploy inputs a pipeline passes through as they are.

    Keyword-only, so that two swapped values of the same type cannot pass unnoticed.

    Attributes:
        isvc_name: InferenceService name (DNS-1123 label).
        namespace: Kubernetes namespace of the InferenceService.
        deployment_mode: knative or standard.
        gpu_count: GPUs (or GPU slices) per predictor replica; 0 for CPU only.
        gpu_resource: nvidia.com/gpu, nvidia.com/mig-<profile> or nvidia.com/gpu.shared.
        canary_percent: Traffic percent for the new revision when one is already serving (0-100).
        deployment_overrides: Further deployment-config fields (autoscaling, node affinity, ...).
        target: cluster (apply and wait) or render (write and validate only).
        wait_timeout_s: Seconds to wait for readiness of this generation.
    """

    isvc_name: str
    namespace: str
    deployment_mode: str
    gpu_count: int
    gpu_resource: str
    canary_percent: int
    deployment_overrides: dict[str, object]
    target: str
    wait_timeout_s: int


@dataclass(frozen=True, kw_only=True)
class DeployParameters(ServingTarget):
    """What deploy-inference-service deploys, and how: all its inputs besides artifacts.

    The component's signature repeats these fields because KFP runs a lightweight component from its own
    source text, signature included; tests/unit/test_pipeline_params.py keeps the two equal.

    Attributes:
        image_ref: The digest-pinned image from build-image.
        image_format: modelcar (the image is mounted as storageUri oci://) or predictor (it is the container).
        pipeline_run: The Kubeflow run ID stamped on the InferenceService; empty outside a run.
    """

    image_ref: str
    image_format: str
    pipeline_run: str


def deploy_step(
    parameters: DeployParameters, *, package: ArtifactLike, inference_service: ArtifactLike, manifest: ArtifactLike
) -> str:
    """Render (and validate) the InferenceService, then apply it and wait with target cluster.

    A live InferenceService that already is the rendered one (:func:`already_deployed`) is left alone:
    a re-run must not start a canary of what is already serving. Any other difference, such as more
    GPUs or replicas for the same model, is applied.
    """
    from inference_services.connection import connect
    from inference_services.deploy import deploy, render
    from inference_services.isvc_api import InferenceServiceApi

    target = check_target(parameters.target)
    namespace, isvc_name, canary_percent = parameters.namespace, parameters.isvc_name, parameters.canary_percent
    package_manifest = PackageManifest.read(Path(package.path))
    config = build_config(
        package_manifest, parameters.image_ref, image_format=parameters.image_format,
        isvc_name=isvc_name, namespace=namespace, deployment_mode=parameters.deployment_mode,
        gpu_count=parameters.gpu_count, gpu_resource=parameters.gpu_resource, canary_percent=canary_percent,
        overrides=dict(parameters.deployment_overrides or {}), target=target, pipeline_run=parameters.pipeline_run,
        batching=wrapper_batching(Path(package.path), package_manifest),
    )  # fmt: skip
    rendered = render(config, namespace)
    manifest_text = yaml.safe_dump(rendered, sort_keys=False)
    Path(manifest.path).parent.mkdir(parents=True, exist_ok=True)
    Path(manifest.path).write_text(manifest_text, encoding="utf-8")
    if target == "render":
        kept = rendered_path(namespace, isvc_name)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(manifest_text, encoding="utf-8")
        inference_service.metadata.update(service_metadata(rendered, target, canary_percent))
        _write_state(inference_service, inference_service.metadata)
        return str(kept)
    clients = connect()
    live = InferenceServiceApi(clients, namespace).find(isvc_name)
    if live is not None and already_deployed(live, rendered):
        log.warning("%s/%s already is what this run renders; nothing to deploy", namespace, isvc_name)
        document = live
    else:
        state = {"name": isvc_name, "namespace": namespace, "target": target, "state": "applying"}
        _write_state(inference_service, state)
        document = deploy(config, clients, namespace=namespace, wait=True, timeout_s=parameters.wait_timeout_s).document
    inference_service.metadata.update(service_metadata(document, target, canary_percent))
    _write_state(inference_service, inference_service.metadata)
    return str(inference_service.metadata["url"])
