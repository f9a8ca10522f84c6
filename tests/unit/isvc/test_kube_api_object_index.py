"""The test API server's store indexes: lists by kind and namespace, and the owner graph its garbage collector reads.

The store and the collector run here without HTTP and without the collector's thread: each ``sweep()`` is one
pass, with no delay, so what one pass deletes is exact.
"""

from __future__ import annotations

from typing import Any

from tests.support.kube_api.admission import default
from tests.support.kube_api.gc import GarbageCollector
from tests.support.kube_api.object_index import CollectorView, Dependent
from tests.support.kube_api.resources import CONFIG_MAPS, NAMESPACES, PODS
from tests.support.kube_api.store import ObjectStore


def make_store(*namespaces: str) -> ObjectStore:
    store = ObjectStore()
    for namespace in namespaces:
        # Defaulted as the server creates them: with the "kubernetes" finalizer, so a deletion terminates first.
        store.create(NAMESPACES, "", default(NAMESPACES, {"metadata": {"name": namespace}}))
    return store


def config_map(store: ObjectStore, namespace: str, name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    references = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                   "uid": owner["metadata"]["uid"]} for owner in owners]  # fmt: skip
    metadata: dict[str, Any] = {"name": name, **({"ownerReferences": references} if references else {})}
    return store.create(CONFIG_MAPS, namespace, {"metadata": metadata, "data": {}})


def names(store: ObjectStore, namespace: str) -> list[str]:
    return [item["metadata"]["name"] for item in store.list(CONFIG_MAPS, namespace)[0]]


def test_a_list_holds_one_kind_by_namespace_then_name() -> None:
    store = make_store("b", "a")
    config_map(store, "b", "y")
    config_map(store, "a", "z")
    config_map(store, "b", "x")
    store.create(PODS, "a", {"metadata": {"name": "pod"}, "spec": {}})

    everywhere, _ = store.list(CONFIG_MAPS, None)
    pods, _ = store.list(PODS, None)

    assert [(item["metadata"]["namespace"], item["metadata"]["name"]) for item in everywhere] == [
        ("a", "z"), ("b", "x"), ("b", "y"),
    ]  # fmt: skip
    assert [item["metadata"]["name"] for item in pods] == ["pod"]
    assert names(store, "b") == ["x", "y"]
    assert names(store, "missing") == []
    assert store.namespaces_holding(CONFIG_MAPS) == ["a", "b"]
    store.delete(CONFIG_MAPS, "a", "z")
    assert store.namespaces_holding(CONFIG_MAPS) == ["b"]


def test_dependents_go_one_generation_per_sweep_and_only_when_every_owner_is_gone() -> None:
    store = make_store("ns")
    first, second = config_map(store, "ns", "first"), config_map(store, "ns", "second")
    both = config_map(store, "ns", "both", first, second)
    config_map(store, "ns", "grandchild", both)
    config_map(store, "ns", "never-owned", {"metadata": {"name": "ghost", "uid": "no-such-uid"}})
    collector = GarbageCollector(store, delay_s=0)

    assert store.collector_view().dependents == [
        Dependent(key=(CONFIG_MAPS, "ns", "never-owned"), owners_gone=True, owner_foreground=False,
                  in_terminating_namespace=False, deleting=False),
    ]  # fmt: skip
    store.delete(CONFIG_MAPS, "ns", "first")
    collector.sweep()
    # One owner of "both" is still there; the one that never existed is not.
    assert names(store, "ns") == ["both", "grandchild", "second"]

    store.delete(CONFIG_MAPS, "ns", "second")
    collector.sweep()
    assert names(store, "ns") == ["grandchild"]
    collector.sweep()
    assert names(store, "ns") == []
    assert store.collector_view() == CollectorView(dependents=[], foreground_done=[], empty_terminating=[])


def test_a_foreground_deletion_finishes_once_its_dependents_are_gone() -> None:
    store = make_store("ns")
    owner = config_map(store, "ns", "owner")
    config_map(store, "ns", "dependent", owner)
    collector = GarbageCollector(store, delay_s=0)

    kept = store.delete(CONFIG_MAPS, "ns", "owner", propagation="Foreground")

    assert kept["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert store.collector_view() == CollectorView(
        dependents=[Dependent(key=(CONFIG_MAPS, "ns", "dependent"), owners_gone=False, owner_foreground=True,
                              in_terminating_namespace=False, deleting=False)],
        foreground_done=[], empty_terminating=[],
    )  # fmt: skip
    after_each_sweep = []
    for _ in range(3):
        collector.sweep()
        after_each_sweep.append(names(store, "ns"))

    # The dependent is deleted in the foreground too (it gets the finalizer), goes when it owns nothing, then
    # the owner goes.
    assert after_each_sweep == [["dependent", "owner"], ["owner"], []]


def test_a_terminating_namespace_is_emptied_then_removed() -> None:
    store = make_store("going", "staying")
    config_map(store, "going", "a")
    config_map(store, "staying", "b")
    collector = GarbageCollector(store, delay_s=0)

    store.delete(NAMESPACES, "", "going")

    assert [dependent.key for dependent in store.collector_view().dependents] == [(CONFIG_MAPS, "going", "a")]
    collector.sweep()
    assert store.collector_view().empty_terminating == ["going"]
    collector.sweep()
    assert store.find(NAMESPACES, "", "going") is None
    assert names(store, "staying") == ["b"]


def test_orphan_deletion_drops_the_reference_from_the_owner_graph() -> None:
    store = make_store("ns")
    owner = config_map(store, "ns", "owner")
    config_map(store, "ns", "dependent", owner)

    store.delete(CONFIG_MAPS, "ns", "owner", propagation="Orphan")
    GarbageCollector(store, delay_s=0).sweep()

    dependent = store.get(CONFIG_MAPS, "ns", "dependent")
    assert "ownerReferences" not in dependent["metadata"]
    assert store.collector_view() == CollectorView(dependents=[], foreground_done=[], empty_terminating=[])
