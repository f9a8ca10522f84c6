"""Create or update an InferenceService with optimistic concurrency: on 409 read again and retry, bounded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from inference_services.isvc_api import InferenceServiceApi
from serving_core.errors import ConflictError
from serving_core.kube_objects import Document, metadata

log = logging.getLogger(__name__)

MAX_CONFLICTS = 5


@dataclass(frozen=True)
class Write:
    """What to send for one attempt: a full object (create/replace) or a merge patch."""

    document: Document | None = None
    merge_patch: Document | None = None


@dataclass(frozen=True)
class WriteResult:
    """The object as the API server stored it, and whether it changed."""

    document: Document
    changed: bool


Planner = Callable[[Document | None], Write | None]


def write_with_retries(
    api: InferenceServiceApi,
    name: str,
    plan: Planner,
    *,
    before_write: Callable[[Document], None] | None = None,
    max_conflicts: int = MAX_CONFLICTS,
) -> WriteResult:
    """Read ``name``, let ``plan`` decide the write from what is live, send it; on 409 start over.

    ``plan`` gets the live object (None when absent) and returns the write, or None when the live
    object is already as wanted. Full objects are created when absent and replaced with the live
    ``resourceVersion`` otherwise; merge patches carry it as a precondition. ``before_write`` runs
    with the live object before each update (to keep the previous spec).

    Raises:
        ConflictError: still conflicting after ``max_conflicts`` fresh reads.
    """
    for attempt in range(1, max_conflicts + 1):
        live = api.find(name)
        write = plan(live)
        if write is None:
            assert live is not None, "a plan must write something when the object does not exist"
            return WriteResult(live, changed=False)
        try:
            if live is None:
                if write.document is None:
                    raise ConflictError(f'InferenceService "{api.namespace}/{name}" does not exist (yet)')
                return WriteResult(api.create(write.document), changed=True)
            if before_write is not None:
                before_write(live)
            resource_version = metadata(live)["resourceVersion"]
            if write.merge_patch is not None:
                patch = {**write.merge_patch}
                patch["metadata"] = {**patch.get("metadata", {}), "resourceVersion": resource_version}
                return WriteResult(api.merge_patch(name, patch), changed=True)
            assert write.document is not None
            document = {**write.document, "metadata": {**write.document["metadata"]}}
            document["metadata"]["resourceVersion"] = resource_version
            return WriteResult(api.replace(document), changed=True)
        except ConflictError as error:
            log.info("write to %s conflicted (attempt %d of %d): %s", name, attempt, max_conflicts, error.message)
            last_error = error
    raise ConflictError(
        f'InferenceService "{api.namespace}/{name}" changed under us {max_conflicts} times in a row; nothing was '
        "changed by this command",
        hint="another controller or person keeps writing it; find the other writer (kubectl get isvc -w), then retry",
    ) from last_error
