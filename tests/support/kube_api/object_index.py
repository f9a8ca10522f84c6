"""The store's indexes: objects by kind and namespace, and the owner graph the garbage collector reads.

kube-apiserver lists from a per-resource cache and kube-controller-manager's garbage collector keeps an owner
graph; neither scans every object of every kind. Scanning did cost that here: a list, an admission check and
every 50 ms sweep of the garbage collector took time in proportion to everything the store held, so a test
(or the fan-out benchmark) slowed down as objects piled up. Not thread-safe: the store calls it under its lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.kube_api.resources import NAMESPACES, ResourceType

ObjectKey = tuple[ResourceType, str, str]
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True)
class _Entry:
    """What the indexes hold for one object, kept so it can be taken out again after an in-place change."""

    uid: str
    owners: tuple[str | None, ...]
    foreground: bool
    deleting: bool
    order: int  # creation order: the order a scan of every object saw them in


@dataclass(frozen=True)
class Dependent:
    """An object the garbage collector may have to delete, with what it decides on."""

    key: ObjectKey
    owners_gone: bool
    """It has owner references and none of them names a live object."""
    owner_foreground: bool
    """An owner is being deleted with ``propagationPolicy=Foreground``."""
    in_terminating_namespace: bool
    deleting: bool
    """It already has a ``deletionTimestamp``."""


@dataclass(frozen=True)
class CollectorView:
    """What the garbage collector and the namespace controller act on, from the indexes, at one moment."""

    dependents: list[Dependent]
    """Objects whose owners are gone or deleted in the foreground, and objects in Terminating namespaces."""
    foreground_done: list[ObjectKey]
    """Objects deleted in the foreground that no object names as its owner any more."""
    empty_terminating: list[str]
    """Terminating namespaces with nothing left in them."""


class ObjectIndex:
    """Objects by kind, namespace and name; live uids; owner uid -> dependents; foreground deletions."""

    def __init__(self) -> None:
        self._by_kind: dict[ResourceType, dict[str, dict[str, dict[str, Any]]]] = {}
        self._entries: dict[ObjectKey, _Entry] = {}
        self._by_uid: dict[str, ObjectKey] = {}
        self._dependents: dict[str | None, dict[ObjectKey, None]] = {}
        # Owner uids that dependents still name but no live object has: where orphans are.
        self._gone_owners: set[str | None] = set()
        self._foreground: dict[ObjectKey, None] = {}
        self._terminating: set[str] = set()
        self._order = itertools.count()

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        kind, namespace, name = key
        return self._by_kind.get(kind, {}).get(namespace, {}).get(name)

    def put(self, key: ObjectKey, document: dict[str, Any]) -> None:
        """Add or replace the object under ``key``; also after its metadata was changed in place."""
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._unlink(key, previous)
        kind, namespace, name = key
        self._by_kind.setdefault(kind, {}).setdefault(namespace, {})[name] = document
        metadata = document["metadata"]
        entry = _Entry(
            uid=metadata["uid"],
            owners=tuple(owner.get("uid") for owner in metadata.get("ownerReferences") or []),
            foreground=FOREGROUND in (metadata.get("finalizers") or []),
            deleting="deletionTimestamp" in metadata,
            order=previous.order if previous is not None else next(self._order),
        )
        self._entries[key] = entry
        self._by_uid[entry.uid] = key
        self._gone_owners.discard(entry.uid)  # named by a dependent before it was put here
        for owner in entry.owners:
            self._dependents.setdefault(owner, {})[key] = None
            if owner not in self._by_uid:
                self._gone_owners.add(owner)
        if entry.foreground:
            self._foreground[key] = None
        if kind == NAMESPACES and entry.deleting:
            self._terminating.add(name)

    def remove(self, key: ObjectKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._unlink(key, entry)
        kind, namespace, name = key
        spaces = self._by_kind[kind]
        del spaces[namespace][name]
        if not spaces[namespace]:
            del spaces[namespace]
        del self._by_uid[entry.uid]
        if entry.uid in self._dependents:
            self._gone_owners.add(entry.uid)

    def _unlink(self, key: ObjectKey, entry: _Entry) -> None:
        """Take ``key`` out of the owner graph, the foreground set and the Terminating namespaces."""
        for owner in entry.owners:
            dependents = self._dependents.get(owner)
            if dependents is None:
                continue
            dependents.pop(key, None)
            if not dependents:
                del self._dependents[owner]
                self._gone_owners.discard(owner)
        self._foreground.pop(key, None)
        if key[0] == NAMESPACES:
            self._terminating.discard(key[2])

    def of_kind(self, kind: ResourceType, namespace: str | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """``(namespace, name, object)`` of ``kind`` in ``namespace`` (every one when None), by namespace and name."""
        spaces = self._by_kind.get(kind, {})
        chosen = sorted(spaces) if namespace is None else [namespace] if namespace in spaces else []
        for space in chosen:
            for name in sorted(spaces[space]):
                yield space, name, spaces[space][name]

    def namespaces_holding(self, kind: ResourceType) -> list[str]:
        """The namespaces with at least one object of ``kind``."""
        return sorted(self._by_kind.get(kind, {}))

    def dependents_of(self, owner_uid: str) -> list[ObjectKey]:
        """The objects that name ``owner_uid`` as an owner, in creation order."""
        return sorted(self._dependents.get(owner_uid, {}), key=lambda key: self._entries[key].order)

    def collector_view(self) -> CollectorView:
        """What the garbage collector acts on; reads only the objects concerned, not every object."""
        foreground_uids = {self._entries[key].uid for key in self._foreground}
        candidates: set[ObjectKey] = set()
        for uid in self._gone_owners | foreground_uids:
            candidates.update(self._dependents.get(uid, {}))
        for kind, spaces in self._by_kind.items():
            if kind.namespaced:
                for namespace in self._terminating & spaces.keys():
                    candidates.update((kind, namespace, name) for name in spaces[namespace])
        dependents = []
        for key in sorted(candidates, key=lambda key: self._entries[key].order):
            entry = self._entries[key]
            dependents.append(
                Dependent(
                    key=key,
                    owners_gone=bool(entry.owners) and not any(owner in self._by_uid for owner in entry.owners),
                    owner_foreground=any(owner in foreground_uids for owner in entry.owners),
                    in_terminating_namespace=key[0].namespaced and key[1] in self._terminating,
                    deleting=entry.deleting,
                )
            )
        foreground_done = [
            key
            for key in sorted(self._foreground, key=lambda key: self._entries[key].order)
            if self._entries[key].uid not in self._dependents
        ]
        empty = [
            namespace
            for namespace in sorted(self._terminating)
            if not any(namespace in spaces for kind, spaces in self._by_kind.items() if kind.namespaced)
        ]
        return CollectorView(dependents, foreground_done, empty)
