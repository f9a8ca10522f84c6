"""Deploy a config: validate, build, keep the previous spec, write safely, wait, roll back a failed canary."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import NoReturn

from inference_services.apply import Write, write_with_retries
from inference_services.builder import build_inference_service, to_document, with_standard_canary
from inference_services.canary import CanaryControl
from inference_services.compatibility import ensure_supported
from inference_services.config import DeploymentConfig
from inference_services.connection import KubeClients
from inference_services.crd_validation import crd_version_for, validate_inference_service
from inference_services.events import explain_not_ready
from inference_services.history import DeploymentHistory, HistoryStore, stable_spec
from inference_services.isvc_api import InferenceServiceApi
from inference_services.readiness import (
    generation_of,
    not_ready_error,
    serving_as_written,
    stable_serves_everything,
    wait_for_deletion,
    watch_until,
)
from inference_services.traffic import DeploymentMode, deployment_mode, serving_revision
from serving_core.errors import AiServingError, OperationTimeoutError, UnsupportedError
from serving_core.kube_objects import Document, annotations_of, labels_of, predictor_spec

log = logging.getLogger(__name__)

# Of --timeout, the share kept for rolling back a canary that does not get ready (at most the cap):
# stopping a canary is a route change, the stable pods already run.
ROLLBACK_SHARE = 1 / 3
ROLLBACK_RESERVE_MAX_S = 30.0


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


def _same_predictor(live: Document, desired: Document) -> bool:
    """Whether the live stable predictor already is the desired one (``name`` is set by a promotion)."""
    live_predictor = {key: value for key, value in predictor_spec(live).items() if key != "name"}
    return live_predictor == {key: value for key, value in predictor_spec(desired).items() if key != "name"}


def _roll_back_canary(
    clients: KubeClients, namespace: str, name: str, failure: str, deadline: float, timeout_s: float
) -> NoReturn:
    """Stop the canary that did not get ready, within ``deadline``, and raise saying what was done.

    Raises:
        OperationTimeoutError: always; ``failure``, then the rollback's outcome.
    """
    hint = "fix the cause above, or wait longer with --timeout (GPU node scale-up can take minutes)"
    try:
        stopped = CanaryControl(clients, namespace).rollback(name)
        outcome = watch_until(
            InferenceServiceApi(clients, namespace), stopped, deadline=deadline, check=stable_serves_everything
        )
    except AiServingError as error:
        raise OperationTimeoutError(
            f"{failure} The rollback failed, so the canary keeps its share: {error.message}",
            hint=f"roll it back with aiserving canary rollback {name} -n {namespace}; then fix the cause above",
        ) from error
    generation = generation_of(stopped)
    if outcome.done:
        stable = serving_revision(outcome.document) or "the stable version"
        raise OperationTimeoutError(
            f"{failure} Rolled back (generation {generation}): the canary was stopped and {stable} serves 100 %.",
            hint=hint,
        )
    raise OperationTimeoutError(
        f"{failure} Rolled back (generation {generation}): the canary was stopped, but KServe had not confirmed "
        f"that the stable version serves 100 % when the {timeout_s:g} s ran out.",
        hint=f"check with aiserving canary status {name} -n {namespace}; {hint}",
    )


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
    The wait, rollback included, ends within ``timeout_s`` of the write: a canary gets all of it but a
    third (at most 30 s), which is kept for the rollback.

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
        canary_rollout = False
        if live is None:
            return Write(document=desired)
        if deployment_mode(live) is not config.mode:
            raise UnsupportedError(
                f'InferenceService "{namespace}/{config.name}" runs in {deployment_mode(live).value} mode; KServe '
                f"cannot change it to {config.mode.value}",
                hint="keep the mode, or delete the InferenceService and deploy again",
            )
        if standard_canary and _same_predictor(live, desired):
            # The stable predictor already is this one: a canary would be a copy of it (and a write).
            document = _merge_metadata(live, {**desired, "spec": live["spec"]})
        elif standard_canary:
            assert config.canary_percent is not None
            document = with_standard_canary(live, desired["spec"]["predictor"], config.canary_percent)
            document = _merge_metadata(live, {**desired, "spec": document["spec"]})
            canary_rollout = config.canary_percent < 100
        else:
            document = _merge_metadata(live, desired)
            canary_rollout = config.canary_percent is not None and config.canary_percent < 100
        if document["spec"] == live["spec"] and document["metadata"] == live["metadata"]:
            canary_rollout = False
            return None
        validate_inference_service(document, crd_version)
        return Write(document=document)

    def keep_previous(live: Document) -> None:
        previous = stable_spec(live)
        kept = DeploymentHistory(
            previous_spec=previous,
            canary_predictor=copy.deepcopy(desired["spec"]["predictor"]) if standard_canary else None,
        )
        history.save(live, kept)

    result = write_with_retries(api, config.name, plan, before_write=keep_previous)
    # --timeout is the time to wait for what was written, the rollback of a failed canary included.
    deadline = time.monotonic() + timeout_s
    if not wait:
        return DeployResult(result.document, result.changed, canary_rollout)
    roll_back = canary_rollout and rollback_failed_canary and result.changed
    reserve = min(timeout_s * ROLLBACK_SHARE, ROLLBACK_RESERVE_MAX_S) if roll_back else 0.0
    outcome = watch_until(api, result.document, deadline=deadline - reserve, check=serving_as_written)
    if outcome.done:
        return DeployResult(outcome.document, result.changed, canary_rollout)
    generation = generation_of(result.document)
    if not roll_back:
        raise not_ready_error(clients, namespace, generation, outcome.document, timeout_s)
    failure = (
        f'The canary of InferenceService "{namespace}/{config.name}" (generation {generation}) did not become '
        f"ready within {timeout_s:g} s: {explain_not_ready(clients, namespace, outcome.document)}"
    )
    _roll_back_canary(clients, namespace, config.name, failure, deadline, timeout_s)


def undeploy(name: str, clients: KubeClients, *, namespace: str | None = None, wait: bool = False,
             timeout_s: float = 300) -> None:  # fmt: skip
    """Delete an InferenceService; its history ConfigMap goes with it (owner reference).

    With ``wait``, delete in the foreground and watch until the API server reports it gone: the garbage
    collector removes owned objects asynchronously, and foreground deletion makes "gone" include them.

    Raises:
        NotFoundError: it does not exist.
        OperationTimeoutError: still there after ``timeout_s``.
    """
    api = InferenceServiceApi(clients, namespace or clients.default_namespace)
    live = api.get(name)
    api.delete(name, foreground=wait)
    if wait:
        wait_for_deletion(api, live, timeout_s)
