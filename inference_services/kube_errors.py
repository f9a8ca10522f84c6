"""Turn Kubernetes API answers into the product's error classes, naming the object and the fix."""

from __future__ import annotations

import json

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


def server_message(error: ApiException) -> str:
    """The ``message`` of the API server's Status body, or the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return str(error.reason or "no message")
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or error.reason or "no message")


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
        return NotFoundError(f"cannot {action}: it does not exist", hint="check the name and the -n namespace")
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
