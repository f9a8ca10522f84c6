"""Turn Kubernetes API answers into the product's error classes, naming the object and the fix."""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException

from serving_core.errors import (
    AiServingError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RemoteServiceError,
)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MISSING_NAMESPACE = re.compile(r'^namespaces "(?P<namespace>[^"]+)" not found$')
# kube-apiserver's answer for a URL it serves nothing at: here, a CRD that is not installed.
_NO_SUCH_RESOURCE = "the server could not find the requested resource"


def server_message(error: ApiException) -> str:
    """The ``message`` of the API server's Status body, or the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return str(error.reason or "no message")
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or error.reason or "no message")


def _not_found_hint(message: str) -> str:
    if found := _MISSING_NAMESPACE.match(message):
        return f"create the namespace (kubectl create namespace {found['namespace']}) or pass -n with one that exists"
    if message.startswith(_NO_SUCH_RESOURCE):
        return "install KServe's CRDs in this cluster (kubectl get crd inferenceservices.serving.kserve.io)"
    return "check the name and the -n namespace"


def translate(error: ApiException, action: str) -> AiServingError:
    """Map an API error for ``action`` (e.g. ``create InferenceService "ns/name"``) to one clear error."""
    status = int(error.status or 0)
    message = server_message(error)
    if status in (401, 403):
        return PermissionDeniedError(
            f"not allowed to {action}: {message}",
            hint="grant the service account the verb on this resource (docs/deploying.md lists the Role)",
        )
    if status == 404:
        return NotFoundError(f"cannot {action}: {message}", hint=_not_found_hint(message))
    if status == 409:
        return ConflictError(
            f"cannot {action}: {message}", hint="another writer changed it; read it again and retry the change"
        )
    if status in (400, 422):
        return InvalidInputError(
            f"the API server refused to {action}: {message}", hint="fix the fields the message names"
        )
    if status == 410:
        return ConflictError(f"cannot {action}: {message}", hint="start again from a fresh read")
    return RemoteServiceError(
        f"the API server failed to {action}: HTTP {status} {message}",
        hint="the cluster is overloaded or failing; retry later",
        retryable=status in RETRYABLE_STATUSES,
    )
