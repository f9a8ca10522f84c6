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

from tests.support.kube_api.admission import refresh_quota_status
from tests.support.kube_api.errors import ApiStatusError
from tests.support.kube_api.object_index import FOREGROUND, ObjectKey
from tests.support.kube_api.resources import NAMESPACES, RESOURCE_QUOTAS
from tests.support.kube_api.store import ObjectStore


class GarbageCollector:
    """Start with ``with GarbageCollector(store):``; sweeps every ``interval_s``."""

    def __init__(self, store: ObjectStore, delay_s: float = 0.3, interval_s: float = 0.05) -> None:
        self.store = store
        self.delay_s = delay_s
        self.interval_s = interval_s
        self._orphaned_since: dict[ObjectKey, float] = {}
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
        """One pass: delete what has been orphaned long enough, finish foreground and namespace deletions.

        It reads the store's owner graph (:meth:`ObjectStore.collector_view`), not every object: a sweep runs
        every 50 ms beside the tests, and one that copied every object cost more the more a test had written.
        """
        view = self.store.collector_view()
        seen_orphans = set()
        moment = time.monotonic()
        for dependent in view.dependents:
            # The namespace controller deletes everything in a Terminating namespace, owned or not.
            if dependent.owners_gone or dependent.in_terminating_namespace or dependent.owner_foreground:
                seen_orphans.add(dependent.key)
                since = self._orphaned_since.setdefault(dependent.key, moment)
                if moment - since >= self.delay_s and not dependent.deleting:
                    self._delete(dependent.key, "Foreground" if dependent.owner_foreground else "Background")
        for key in view.foreground_done:
            self.store.finish_deletion(*key, FOREGROUND)
        for name in view.empty_terminating:
            self.store.finish_deletion(NAMESPACES, "", name, FOREGROUND)
        self._orphaned_since = {key: since for key, since in self._orphaned_since.items() if key in seen_orphans}
        # The quota controller's resync: usage follows pods that went away.
        for namespace in self.store.namespaces_holding(RESOURCE_QUOTAS):
            refresh_quota_status(self.store, namespace)

    def _delete(self, key: ObjectKey, propagation: str) -> None:
        with contextlib.suppress(ApiStatusError):  # deleted meanwhile by someone else
            self.store.delete(*key, propagation=propagation)
