"""In-memory object store with Kubernetes bookkeeping: resourceVersion, generation, finalizers, watch history.

Cluster-scoped objects (Namespaces) are kept under the namespace ``""``.
"""

from __future__ import annotations

import bisect
import copy
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.kube_api.errors import already_exists, bad_request, gone, invalid, not_found, stale
from tests.support.kube_api.managed_fields import updated_entries
from tests.support.kube_api.object_index import FOREGROUND, CollectorView, ObjectIndex
from tests.support.kube_api.resources import ResourceType
from tests.support.kube_api.selectors import NOTHING, Selector

# The characters of generated name suffixes: no vowels, so no words (apimachinery's SimpleNameGenerator).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class StoredEvent:
    """One change, as a watch delivers it."""

    resource_version: int
    kind: ResourceType
    namespace: str
    type: str
    object: dict[str, Any]


def now() -> str:
    """The current time as Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(document: dict[str, Any]) -> dict[str, Any]:
    """What counts for ``metadata.generation``: everything but metadata and status."""
    return {key: value for key, value in document.items() if key not in ("metadata", "status")}


def _without_managed_fields(document: dict[str, Any]) -> dict[str, Any]:
    trimmed = copy.deepcopy(document)
    trimmed.get("metadata", {}).pop("managedFields", None)
    return trimmed


class ObjectStore:
    """Thread-safe objects plus the event history watches read from."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._objects = ObjectIndex()
        self._history: list[StoredEvent] = []
        self._revision = 1
        self._oldest_watchable = 1

    @property
    def resource_version(self) -> int:
        with self._changed:
            return self._revision

    def _record(self, kind: ResourceType, namespace: str, event_type: str, document: dict[str, Any]) -> None:
        self._history.append(StoredEvent(self._revision, kind, namespace, event_type, copy.deepcopy(document)))
        self._changed.notify_all()

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def get(self, kind: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._changed:
            document = self._objects.get((kind, namespace, name))
            if document is None:
                raise not_found(kind, name)
            return copy.deepcopy(document)

    def find(self, kind: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        with self._changed:
            document = self._objects.get((kind, namespace, name))
            return copy.deepcopy(document) if document is not None else None

    def namespaces_holding(self, kind: ResourceType) -> list[str]:
        """The namespaces with at least one object of ``kind`` (the quota controller resyncs those)."""
        with self._changed:
            return self._objects.namespaces_holding(kind)

    def collector_view(self) -> CollectorView:
        """What the garbage collector acts on, from the owner graph (see :mod:`object_index`)."""
        with self._changed:
            return self._objects.collector_view()

    def list(
        self, kind: ResourceType, namespace: str | None, selector: Selector = NOTHING
    ) -> tuple[list[dict[str, Any]], int]:
        """Objects of ``kind`` in ``namespace`` (every namespace when None) passing ``selector``, by name."""
        with self._changed:
            items = [
                copy.deepcopy(document)
                for _, _, document in self._objects.of_kind(kind, namespace)
                if selector.matches(document)
            ]
            return items, self._revision

    def create(
        self, kind: ResourceType, namespace: str, document: dict[str, Any], *, manager: str | None = None
    ) -> dict[str, Any]:
        """Store a new object; ``metadata.generateName`` gets a random five-character suffix."""
        with self._changed:
            document = copy.deepcopy(document)
            metadata = document.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + generated_suffix()
            name = metadata.get("name")
            if not name:
                raise invalid(kind, "", [("metadata.name", "Required value: name or generateName is required")])
            if self._objects.get((kind, namespace, name)) is not None:
                raise already_exists(kind, name)
            metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now(), resourceVersion=self._next_revision())
            if kind.namespaced:
                metadata["namespace"] = namespace
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                metadata.pop(field, None)
            if kind.tracks_generation:
                metadata["generation"] = 1
            document["apiVersion"] = kind.api_version
            document["kind"] = kind.kind
            if kind.has_status and kind.custom:
                document.pop("status", None)
            if manager is not None:
                metadata["managedFields"] = updated_entries(None, document, manager=manager,
                                                            status_apart=kind.has_status)  # fmt: skip
            else:
                metadata.pop("managedFields", None)
            self._objects.put((kind, namespace, name), copy.deepcopy(document))
            self._record(kind, namespace, "ADDED", document)
            return document

    def update(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        document: dict[str, Any],
        *,
        status_only: bool = False,
        require_resource_version: bool = True,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object; a stale or missing resourceVersion is refused like the API server does."""
        with self._changed:
            current = self._objects.get((kind, namespace, name))
            if current is None:
                raise not_found(kind, name)
            sent_version = document.get("metadata", {}).get("resourceVersion")
            if sent_version is not None and sent_version != current["metadata"]["resourceVersion"]:
                raise stale(kind, name)
            if sent_version is None and require_resource_version:
                raise stale(kind, name)
            updated = copy.deepcopy(current)
            if status_only:
                updated["status"] = copy.deepcopy(document.get("status", {}))
            else:
                updated = copy.deepcopy(document)
                updated.setdefault("metadata", {})
                # Identity fields are the server's, not the writer's.
                identity = ("uid", "creationTimestamp", "namespace", "generation", "name", "deletionTimestamp",
                            "resourceVersion")  # fmt: skip
                for field in identity:
                    updated["metadata"].pop(field, None)
                    if field in current["metadata"]:
                        updated["metadata"][field] = current["metadata"][field]
                if kind.has_status:
                    updated.pop("status", None)
                    if "status" in current:
                        updated["status"] = current["status"]
                if kind.tracks_generation and _spec_part(updated) != _spec_part(current):
                    updated["metadata"]["generation"] = current["metadata"]["generation"] + 1
            updated["apiVersion"] = kind.api_version
            updated["kind"] = kind.kind
            if "deletionTimestamp" in current["metadata"] and not status_only:
                added = set(updated["metadata"].get("finalizers") or []) - set(
                    current["metadata"].get("finalizers") or []
                )
                if added:
                    raise invalid(kind, name, [("metadata.finalizers", "Forbidden: no new finalizers can be added "
                                                                        "if the object is being deleted")])  # fmt: skip
            if manager is not None:
                updated["metadata"]["managedFields"] = updated_entries(
                    current, updated, manager=manager, subresource="status" if status_only else "",
                    status_apart=kind.has_status,
                )  # fmt: skip
            else:
                updated["metadata"].pop("managedFields", None)
                if "managedFields" in current["metadata"]:
                    updated["metadata"]["managedFields"] = current["metadata"]["managedFields"]
            if _without_managed_fields(updated) == _without_managed_fields(current):
                return copy.deepcopy(current)  # a no-op write keeps the resourceVersion (and the managedFields)
            updated["metadata"]["resourceVersion"] = self._next_revision()
            if "deletionTimestamp" in updated["metadata"] and not updated["metadata"].get("finalizers"):
                # The last finalizer is gone: the object goes now.
                self._remove(kind, namespace, name, updated)
                return copy.deepcopy(updated)
            self._objects.put((kind, namespace, name), updated)
            self._record(kind, namespace, "MODIFIED", updated)
            return copy.deepcopy(updated)

    def delete(self, kind: ResourceType, namespace: str, name: str, propagation: str = "Background") -> dict[str, Any]:
        """Delete like kube-apiserver: objects with finalizers (or ``Foreground``) only get a deletionTimestamp.

        ``Background`` leaves the dependents to the garbage collector; ``Orphan`` drops their owner
        references to this object first; ``Foreground`` adds the ``foregroundDeletion`` finalizer, which
        the garbage collector removes once the dependents are gone.
        """
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                              '"Foreground", "Background", "Orphan"')  # fmt: skip
        with self._changed:
            current = self._objects.get((kind, namespace, name))
            if current is None:
                raise not_found(kind, name)
            metadata = current["metadata"]
            if propagation == "Orphan":
                self._orphan_dependents(metadata["uid"])
            finalizers = list(metadata.get("finalizers") or [])
            if propagation == "Foreground" and FOREGROUND not in finalizers:
                finalizers.append(FOREGROUND)
            if finalizers or (kind.kind == "Namespace" and current.get("spec", {}).get("finalizers")):
                if "deletionTimestamp" not in metadata:
                    metadata.update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
                    metadata["finalizers"] = finalizers
                    if kind.kind == "Namespace":
                        current.setdefault("status", {})["phase"] = "Terminating"
                    metadata["resourceVersion"] = self._next_revision()
                    self._objects.put((kind, namespace, name), current)
                    self._record(kind, namespace, "MODIFIED", current)
                return copy.deepcopy(current)
            self._remove(kind, namespace, name, current)
            return copy.deepcopy(current)

    def finish_deletion(self, kind: ResourceType, namespace: str, name: str, finalizer: str | None = None) -> None:
        """Remove ``finalizer`` (the garbage collector's or the namespace controller's) and maybe the object."""
        with self._changed:
            current = self._objects.get((kind, namespace, name))
            if current is None:
                return
            metadata = current["metadata"]
            metadata["finalizers"] = [item for item in metadata.get("finalizers") or [] if item != finalizer]
            if not metadata["finalizers"]:
                metadata.pop("finalizers")
                self._remove(kind, namespace, name, current)
            else:
                metadata["resourceVersion"] = self._next_revision()
                self._objects.put((kind, namespace, name), current)
                self._record(kind, namespace, "MODIFIED", current)

    def _remove(self, kind: ResourceType, namespace: str, name: str, current: dict[str, Any]) -> None:
        self._objects.remove((kind, namespace, name))
        current["metadata"]["resourceVersion"] = self._next_revision()
        self._record(kind, namespace, "DELETED", current)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for key in self._objects.dependents_of(owner_uid):
            kind, namespace, _ = key
            document = self._objects.get(key)
            assert document is not None
            owners = document["metadata"].get("ownerReferences") or []
            kept = [owner for owner in owners if owner.get("uid") != owner_uid]
            if len(kept) != len(owners):
                if kept:
                    document["metadata"]["ownerReferences"] = kept
                else:
                    document["metadata"].pop("ownerReferences")
                document["metadata"]["resourceVersion"] = self._next_revision()
                self._objects.put(key, document)
                self._record(kind, namespace, "MODIFIED", document)

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older resourceVersions now get 410 Gone."""
        with self._changed:
            self._history.clear()
            self._oldest_watchable = self._revision

    def events_after(
        self, kind: ResourceType, namespace: str | None, resource_version: int, wait_s: float
    ) -> tuple[list[StoredEvent], int]:
        """Events for ``kind`` (in ``namespace``, or all when None) newer than ``resource_version``.

        Waits up to ``wait_s`` for one.

        Raises:
            ApiStatusError: 410 when ``resource_version`` is older than the kept history.
        """
        with self._changed:
            if resource_version < self._oldest_watchable:
                raise gone(resource_version)

            def pending() -> list[StoredEvent]:
                # The history is in resourceVersion order: read only its tail, not every event since the start.
                start = bisect.bisect_right(self._history, resource_version, key=lambda event: event.resource_version)
                return [
                    event
                    for event in self._history[start:]
                    if event.resource_version > resource_version
                    and event.kind == kind
                    and (namespace is None or event.namespace == namespace)
                ]

            found = pending()
            if not found and wait_s > 0:
                self._changed.wait(wait_s)
                if resource_version < self._oldest_watchable:
                    raise gone(resource_version)  # compacted while we waited: the events in between are lost
                found = pending()
            return found, self._revision


def generated_suffix() -> str:
    """Five characters as kube-apiserver appends to ``generateName`` (also used for ReplicaSet hashes)."""
    return "".join(random.choices(_SUFFIX_ALPHABET, k=5))
