"""In-memory object store with Kubernetes bookkeeping: resourceVersion, generation, watch history."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.kube_api.errors import already_exists, gone, not_found, stale
from tests.support.kube_api.resources import ResourceType

ObjectKey = tuple[ResourceType, str, str]


@dataclass(frozen=True)
class StoredEvent:
    """One change, as a watch delivers it."""

    resource_version: int
    kind: ResourceType
    namespace: str
    type: str
    object: dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(document: dict[str, Any]) -> dict[str, Any]:
    """What counts for ``metadata.generation``: everything but metadata and status."""
    return {key: value for key, value in document.items() if key not in ("metadata", "status")}


def _matches(document: dict[str, Any], field_selector: dict[str, str], label_selector: dict[str, str]) -> bool:
    metadata = document.get("metadata", {})
    for field, expected in field_selector.items():
        value: Any = document
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if str(value) != expected:
            return False
    labels = metadata.get("labels") or {}
    return all(labels.get(key) == value for key, value in label_selector.items())


class ObjectStore:
    """Thread-safe objects plus the event history watches read from."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
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
                raise not_found(f"{kind.plural}.{kind.group}".rstrip("."), name)
            return copy.deepcopy(document)

    def list(
        self,
        kind: ResourceType,
        namespace: str,
        field_selector: dict[str, str] | None = None,
        label_selector: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        with self._changed:
            items = [
                copy.deepcopy(document)
                for (item_kind, item_namespace, _), document in sorted(
                    self._objects.items(), key=lambda entry: entry[0][2]
                )
                if item_kind == kind
                and item_namespace == namespace
                and _matches(document, field_selector or {}, label_selector or {})
            ]
            return items, self._revision

    def create(self, kind: ResourceType, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            metadata = document.setdefault("metadata", {})
            name = metadata["name"]
            if (kind, namespace, name) in self._objects:
                raise already_exists(f"{kind.plural}.{kind.group}".rstrip("."), name)
            metadata.update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                creationTimestamp=_now(),
                resourceVersion=self._next_revision(),
            )
            if kind.tracks_generation:
                metadata["generation"] = 1
            document["apiVersion"] = kind.api_version
            document["kind"] = kind.kind
            if kind.has_status and kind.tracks_generation:
                document.pop("status", None)
            self._objects[(kind, namespace, name)] = copy.deepcopy(document)
            self._record(kind, namespace, "ADDED", document)
            return copy.deepcopy(document)

    def update(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        document: dict[str, Any],
        *,
        status_only: bool = False,
        require_resource_version: bool = True,
    ) -> dict[str, Any]:
        """Replace an object; a stale or missing resourceVersion is refused like the API server does."""
        with self._changed:
            current = self._objects.get((kind, namespace, name))
            if current is None:
                raise not_found(f"{kind.plural}.{kind.group}".rstrip("."), name)
            sent_version = document.get("metadata", {}).get("resourceVersion")
            if sent_version is not None and sent_version != current["metadata"]["resourceVersion"]:
                raise stale(f"{kind.plural}.{kind.group}".rstrip("."), name)
            if sent_version is None and require_resource_version:
                raise stale(f"{kind.plural}.{kind.group}".rstrip("."), name)
            updated = copy.deepcopy(current)
            if status_only:
                updated["status"] = copy.deepcopy(document.get("status", {}))
            else:
                kept_status = current.get("status")
                updated = copy.deepcopy(document)
                # Identity fields are the server's, not the writer's.
                for field in ("uid", "creationTimestamp", "namespace", "generation", "name"):
                    if field in current["metadata"]:
                        updated["metadata"][field] = current["metadata"][field]
                if kind.has_status and kind.tracks_generation:
                    updated.pop("status", None)
                    if kept_status is not None:
                        updated["status"] = kept_status
                if kind.tracks_generation and _spec_part(updated) != _spec_part(current):
                    updated["metadata"]["generation"] = current["metadata"]["generation"] + 1
            updated["apiVersion"] = kind.api_version
            updated["kind"] = kind.kind
            if updated == current:
                return copy.deepcopy(current)  # a no-op write keeps the resourceVersion
            updated["metadata"]["resourceVersion"] = self._next_revision()
            self._objects[(kind, namespace, name)] = updated
            self._record(kind, namespace, "MODIFIED", updated)
            return copy.deepcopy(updated)

    def delete(self, kind: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._changed:
            current = self._objects.pop((kind, namespace, name), None)
            if current is None:
                raise not_found(f"{kind.plural}.{kind.group}".rstrip("."), name)
            current["metadata"]["resourceVersion"] = self._next_revision()
            self._record(kind, namespace, "DELETED", current)
            self._delete_dependents(current["metadata"]["uid"])
            return copy.deepcopy(current)

    def _delete_dependents(self, owner_uid: str) -> None:
        """Garbage collection: objects owned by a deleted object go with it."""
        for (kind, namespace, name), document in list(self._objects.items()):
            owners = document.get("metadata", {}).get("ownerReferences") or []
            if any(owner.get("uid") == owner_uid for owner in owners):
                self._objects.pop((kind, namespace, name))
                document["metadata"]["resourceVersion"] = self._next_revision()
                self._record(kind, namespace, "DELETED", document)
                self._delete_dependents(document["metadata"]["uid"])

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
                return [
                    event
                    for event in self._history
                    if event.resource_version > resource_version
                    and event.kind == kind
                    and (namespace is None or event.namespace == namespace)
                ]

            found = pending()
            if not found and wait_s > 0:
                self._changed.wait(wait_s)
                found = pending()
            return found, self._revision


def selector_dict(selector: str | None) -> dict[str, str]:
    """Parse ``a=b,c=d`` (equality selectors only, the kind the deploy client sends)."""
    if not selector:
        return {}
    pairs = (part.split("=", 1) for part in selector.split(",") if part)
    return {key.strip(): value.strip().lstrip("=") for key, value in pairs}


def matches(document: dict[str, Any], field_selector: dict[str, str], label_selector: dict[str, str]) -> bool:
    """Whether ``document`` passes both selectors."""
    return _matches(document, field_selector, label_selector)
