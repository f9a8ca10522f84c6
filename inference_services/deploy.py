"""Deploy a config: validate, build, keep the previous spec, write safely, wait, roll back a failed canary."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from inference_services.apply import Write, write_with_retries
from inference_services.builder import build_inference_service, to_document, with_standard_canary
from inference_services.canary import CanaryControl
from inference_services.compatibility import ensure_supported
from inference_services.config import DeploymentConfig
from inference_services.connection import KubeClients
from inference_services.crd_validation import crd_version_for, validate_inference_service
from inference_services.history import DeploymentHistory, HistoryStore, stable_spec
from inference_services.isvc_api import InferenceServiceApi
from inference_services.readiness import wait_for, wait_for_deletion
from inference_services.traffic import DeploymentMode, deployment_mode, serving_revision
from serving_core.errors import OperationTimeoutError, UnsupportedError
from serving_core.kube_objects import Document, annotations_of, labels_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployResult:
    """The InferenceService as stored (and, with ``wait``, as reported ready)."""

    document: Document
    changed: bool
    canary: bool


def render(config: DeploymentConfig, namespace: str | None = None, target_version: str | None = None) -> Document:
    """The InferenceService for ``config``, checked against the target KServe's CRD; nothing is sent.

    Raises:
        UnsupportedError: the config needs a newer KServe than the target.
        InvalidInputError: the object would not match the CRD schema.
    """
    version = ensure_supported(config, target_version)
    document = to_document(build_inference_service(config, namespace or config.namespace or "default"))
    validate_inference_service(document, crd_version_for(version))
    return document


def _merge_metadata(live: Document, desired: Document) -> Document:
    document = copy.deepcopy(live)
    metadata = document["metadata"]
    metadata["labels"] = {**labels_of(live), **labels_of(desired)}
    metadata["annotations"] = {**annotations_of(live), **annotations_of(desired)}
    document["spec"] = copy.deepcopy(desired["spec"])
    return document


def deploy(
    config: DeploymentConfig,
    clients: KubeClients,
    *,
    namespace: str | None = None,
    wait: bool = False,
    timeout_s: float = 600,
    target_version: str | None = None,
    rollback_failed_canary: bool = True,
) -> DeployResult:
    """Create or update the InferenceService of ``config``.

    Everything is checked before the first request. An update first stores the live spec in the
    history ConfigMap. With ``wait``, readiness is watched for the written generation; a canary that
    does not become ready is rolled back (the stable revision keeps 100 %) before the error is raised.

    Raises:
        OperationTimeoutError: not ready in time; says why and whether the canary was rolled back.
        UnsupportedError / InvalidInputError: refused before anything was sent.
        ConflictError: other writers kept changing the object.
    """
    namespace = namespace or config.namespace or clients.default_namespace
    version = ensure_supported(config, target_version)
    crd_version = crd_version_for(version)
    desired = render(config, namespace, str(version))
    api = InferenceServiceApi(clients, namespace)
    history = HistoryStore(clients, namespace)
    standard_canary = config.mode is DeploymentMode.STANDARD and config.canary_percent is not None
    canary_rollout = False

    def plan(live: Document | None) -> Write | None:
        nonlocal canary_rollout
        if live is None:
            canary_rollout = False
            return Write(document=desired)
        if deployment_mode(live) is not config.mode:
            raise UnsupportedError(
                f'InferenceService "{namespace}/{config.name}" runs in {deployment_mode(live).value} mode; KServe '
                f"cannot change it to {config.mode.value}",
                hint="keep the mode, or delete the InferenceService and deploy again",
            )
        if standard_canary:
            assert config.canary_percent is not None
            document = with_standard_canary(live, desired["spec"]["predictor"], config.canary_percent)
            document = _merge_metadata(live, {**desired, "spec": document["spec"]})
        else:
            document = _merge_metadata(live, desired)
        if document["spec"] == live["spec"] and document["metadata"] == live["metadata"]:
            return None
        validate_inference_service(document, crd_version)
        canary_rollout = config.canary_percent is not None and config.canary_percent < 100
        return Write(document=document)

    def keep_previous(live: Document) -> None:
        previous = stable_spec(live)
        kept = DeploymentHistory(
            previous_spec=previous,
            canary_predictor=copy.deepcopy(desired["spec"]["predictor"]) if standard_canary else None,
        )
        history.save(live, kept)

    result = write_with_retries(api, config.name, plan, before_write=keep_previous)
    document = result.document
    if wait:
        try:
            document = wait_for(api, document, timeout_s=timeout_s)
        except OperationTimeoutError as error:
            if not (canary_rollout and rollback_failed_canary and result.changed):
                raise
            rolled_back = CanaryControl(clients, namespace).rollback(config.name, wait=True, timeout_s=60)
            raise OperationTimeoutError(
                f"{error.message} The canary was rolled back: {serving_revision(rolled_back) or 'the stable revision'} "
                "serves 100 %.",
                hint=error.hint,
            ) from error
    return DeployResult(document, result.changed, canary_rollout)


def undeploy(name: str, clients: KubeClients, *, namespace: str | None = None, wait: bool = False,
             timeout_s: float = 300) -> None:  # fmt: skip
    """Delete an InferenceService; its history ConfigMap goes with it (owner reference).

    With ``wait``, watch until the API server reports it gone.

    Raises:
        NotFoundError: it does not exist.
        OperationTimeoutError: still there after ``timeout_s``.
    """
    api = InferenceServiceApi(clients, namespace or clients.default_namespace)
    live = api.get(name)
    api.delete(name)
    if wait:
        wait_for_deletion(api, live, timeout_s)
