"""Wait for an InferenceService by watching it: generation-aware, no polling, a clear reason on timeout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from inference_services.connection import KubeClients
from inference_services.events import explain_not_ready
from inference_services.isvc_api import InferenceServiceApi, WatchExpired, WatchInterrupted
from inference_services.traffic import DeploymentMode, deployment_mode, is_true, observed_generation
from serving_core.errors import NotFoundError, OperationTimeoutError, UnreachableError
from serving_core.kube_objects import Document, metadata, predictor_spec, predictor_status, spec, status

log = logging.getLogger(__name__)
Check = Callable[[Document], bool]


def serving_as_written(document: Document) -> bool:
    """``Ready``, and the traffic the spec asks for: newest revision ready with its canary percent, canaries ready."""
    if not is_true(document, "Ready"):
        return False
    if deployment_mode(document) is DeploymentMode.STANDARD:
        canaries = spec(document).get("canary") or []
        wanted = {entry["predictor"].get("name"): entry["trafficPercent"] for entry in canaries}
        reported = {entry.get("name"): entry for entry in status(document).get("canaryStatuses") or []}
        return all(
            name in reported and reported[name].get("ready") and reported[name].get("trafficPercent") == percent
            for name, percent in wanted.items()
        )
    predictor = predictor_status(document)
    latest = predictor.get("latestReadyRevision")
    if not latest or latest != predictor.get("latestCreatedRevision"):
        return False
    percent = predictor_spec(document).get("canaryTrafficPercent")
    latest_share = sum(int(entry.get("percent") or 0) for entry in predictor.get("traffic") or []
                       if entry.get("revisionName") == latest)  # fmt: skip
    # The first revision of a service takes 100 % whatever the percent says.
    return percent is None or latest_share in (int(percent), 100)


def stable_serves_everything(document: Document) -> bool:
    """After a rollback: the stable revision takes 100 % (the failed canary may stay not ready)."""
    if deployment_mode(document) is DeploymentMode.STANDARD:
        return not status(document).get("canaryStatuses") and is_true(document, "PredictorReady")
    predictor = predictor_status(document)
    traffic = predictor.get("traffic") or []
    rolled_out = predictor.get("latestRolledoutRevision")
    return any(entry.get("percent") == 100 and entry.get("revisionName") == rolled_out for entry in traffic)


@dataclass(frozen=True)
class WaitOutcome:
    """Where a watch ended: the newest object seen, and whether it reached the wanted state."""

    document: Document
    done: bool


def watch_until(api: InferenceServiceApi, written: Document, *, deadline: float, check: Check) -> WaitOutcome:
    """Watch ``written`` until the controller has seen its generation and ``check`` holds, or ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant, so that several waits can share one budget.
    ``Ready`` reported for an older generation is never trusted. Watch cuts and 429/5xx re-watch from
    the last resourceVersion seen; 410 Gone re-reads the object and watches from there.

    Raises:
        NotFoundError: the object was deleted while waiting.
        UnreachableError: the watch broke too many times in a row.
    """
    name = metadata(written)["name"]
    generation = generation_of(written)
    latest = written
    resource_version = str(metadata(written)["resourceVersion"])
    interruptions = 0

    def done(document: Document) -> bool:
        return observed_generation(document) >= generation and check(document)

    while not done(latest):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return WaitOutcome(latest, done=False)
        try:
            for event_type, document in api.watch(name, resource_version, remaining):
                resource_version = str(metadata(document).get("resourceVersion") or resource_version)
                if event_type == "DELETED":
                    raise NotFoundError(
                        f'InferenceService "{api.namespace}/{name}" was deleted while waiting for it',
                        hint="deploy it again",
                    )
                if event_type in ("ADDED", "MODIFIED"):
                    latest = document
                    interruptions = 0
                    if done(latest):
                        return WaitOutcome(latest, done=True)
                # The server ends the stream only after whole seconds; bookmarks let us stop on time.
                if time.monotonic() >= deadline:
                    return WaitOutcome(latest, done=False)
        except WatchExpired:
            log.info("watch of %s expired (410 Gone); reading it again", name)
            latest = api.get(name)
            resource_version = str(metadata(latest)["resourceVersion"])
        except WatchInterrupted as error:
            interruptions += 1
            log.info("watch of %s interrupted (%s); watching again from %s", name, error, resource_version)
            if interruptions >= api.clients.retry.attempts:
                raise UnreachableError(
                    f'lost the watch on InferenceService "{api.namespace}/{name}" {interruptions} times in a row',
                    hint="check the connection to the API server and retry",
                ) from error
            if interruptions > 1:
                api.clients.retry.sleep(api.clients.retry.backoff_s(interruptions - 1))
    return WaitOutcome(latest, done=True)


def wait_for(
    api: InferenceServiceApi,
    written: Document,
    *,
    timeout_s: float,
    check: Check = serving_as_written,
    clients: KubeClients | None = None,
) -> Document:
    """Watch until the controller has seen ``written``'s generation and ``check`` holds (see :func:`watch_until`).

    Raises:
        OperationTimeoutError: not there within ``timeout_s``; the message says why, from the status
            conditions and the predictor's events.
        NotFoundError: the object was deleted while waiting.
    """
    outcome = watch_until(api, written, deadline=time.monotonic() + timeout_s, check=check)
    if outcome.done:
        return outcome.document
    raise not_ready_error(clients or api.clients, api.namespace, generation_of(written), outcome.document, timeout_s)


def generation_of(document: Document) -> int:
    """``metadata.generation`` (0 before the API server assigned one)."""
    return int(metadata(document).get("generation") or 0)


def not_ready_error(
    clients: KubeClients, namespace: str, generation: int, latest: Document, timeout_s: float
) -> OperationTimeoutError:
    """The timeout error for our write of ``generation``: the time allowed and why ``latest`` is not ready."""
    reason = explain_not_ready(clients, namespace, latest)
    return OperationTimeoutError(
        f'InferenceService "{namespace}/{metadata(latest)["name"]}" (generation {generation}) did not become ready '
        f"within {timeout_s:g} s: {reason}",
        hint="fix the cause above, or wait longer with --timeout (GPU node scale-up can take minutes)",
    )


def wait_for_deletion(api: InferenceServiceApi, live: Document, timeout_s: float) -> None:
    """Watch until ``live`` is gone (finalizers can keep it a while).

    Raises:
        OperationTimeoutError: still present after ``timeout_s``.
    """
    name = metadata(live)["name"]
    deadline = time.monotonic() + timeout_s
    resource_version = str(metadata(live)["resourceVersion"])
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            for event_type, document in api.watch(name, resource_version, remaining):
                resource_version = str(metadata(document).get("resourceVersion") or resource_version)
                if event_type == "DELETED":
                    return
        except (WatchExpired, WatchInterrupted):
            current = api.find(name)
            if current is None:
                return
            resource_version = str(metadata(current)["resourceVersion"])
    raise OperationTimeoutError(
        f'InferenceService "{api.namespace}/{name}" still exists {timeout_s:g} s after its deletion',
        hint="look at its finalizers (kubectl get isvc NAME -o yaml) and the KServe controller log",
    )
