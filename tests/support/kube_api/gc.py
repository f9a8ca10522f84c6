"""The garbage collector and the namespace controller: asynchronous, like kube-controller-manager's.

Dependents (objects whose ``ownerReferences`` all name deleted owners) are deleted once they have been
orphaned for ``delay_s``; an owner deleted with ``propagationPolicy=Foreground`` keeps its
``foregroundDeletion`` finalizer until its dependents are gone; a Terminating namespace is emptied, then
removed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from tests.support.kube_api.admission import refresh_quota_status
from tests.support.kube_api.errors import ApiStatusError
from tests.support.kube_api.resources import NAMESPACES, RESOURCE_QUOTAS, ResourceType
from tests.support.kube_api.store import FOREGROUND, ObjectStore


def _key(kind: ResourceType, document: dict[str, Any]) -> tuple[ResourceType, str, str]:
    metadata = document["metadata"]
    return kind, metadata.get("namespace", ""), metadata["name"]


class GarbageCollector:
    """Start with ``with GarbageCollector(store):``; sweeps every ``interval_s``."""

    def __init__(self, store: ObjectStore, delay_s: float = 0.3, interval_s: float = 0.05) -> None:
        self.store = store
        self.delay_s = delay_s
        self.interval_s = interval_s
        self._orphaned_since: dict[tuple[ResourceType, str, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-gc", daemon=True)

    def __enter__(self) -> GarbageCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sweep()

    def sweep(self) -> None:
        """One pass: delete what has been orphaned long enough, finish foreground and namespace deletions."""
        objects = self.store.everything()
        live_uids = {document["metadata"]["uid"] for _, document in objects}
        owner_uids = {owner.get("uid") for _, document in objects
                      for owner in document["metadata"].get("ownerReferences") or []}  # fmt: skip
        terminating = {document["metadata"]["name"] for kind, document in objects
                       if kind == NAMESPACES and "deletionTimestamp" in document["metadata"]}  # fmt: skip
        # One pass over the objects, not one per owner reference: a sweep runs every 50 ms beside the tests.
        foreground_uids = {document["metadata"]["uid"] for _, document in objects
                           if FOREGROUND in (document["metadata"].get("finalizers") or [])}  # fmt: skip
        seen_orphans = set()
        moment = time.monotonic()
        for kind, document in objects:
            metadata = document["metadata"]
            key = _key(kind, document)
            owners = metadata.get("ownerReferences") or []
            orphaned = bool(owners) and not any(owner.get("uid") in live_uids for owner in owners)
            if kind.namespaced and metadata.get("namespace") in terminating:
                orphaned = True  # the namespace controller deletes everything in a Terminating namespace
            foreground_owner = FOREGROUND in (metadata.get("finalizers") or [])
            owner_is_foreground = any(owner.get("uid") in foreground_uids for owner in owners)
            if orphaned or owner_is_foreground:
                seen_orphans.add(key)
                since = self._orphaned_since.setdefault(key, moment)
                if moment - since >= self.delay_s and "deletionTimestamp" not in metadata:
                    self._delete(key, "Foreground" if owner_is_foreground else "Background")
            if foreground_owner and metadata["uid"] not in owner_uids:
                self.store.finish_deletion(*key, FOREGROUND)
        occupied = {item["metadata"].get("namespace") for item_kind, item in objects if item_kind.namespaced}
        for name in terminating - occupied:
            self.store.finish_deletion(NAMESPACES, "", name, FOREGROUND)
        self._orphaned_since = {key: since for key, since in self._orphaned_since.items() if key in seen_orphans}
        # The quota controller's resync: usage follows pods that went away.
        for namespace in {document["metadata"]["namespace"] for kind, document in objects if kind == RESOURCE_QUOTAS}:
            refresh_quota_status(self.store, namespace)

    def _delete(self, key: tuple[ResourceType, str, str], propagation: str) -> None:
        with contextlib.suppress(ApiStatusError):  # deleted meanwhile by someone else
            self.store.delete(*key, propagation=propagation)
