"""The test API server's namespaces and garbage collection, seen through the real kubernetes client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inference_services.connection import KubeClients
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace


def eventually(check: Callable[[], bool], timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def config_map(name: str, owner: dict | None = None) -> dict:
    metadata: dict = {"name": name}
    if owner is not None:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                        "uid": owner["metadata"]["uid"]}]  # fmt: skip
    return {"metadata": metadata, "data": {"a": "b"}}


def test_creating_in_a_missing_namespace_is_404_namespace_not_found(clients: KubeClients) -> None:
    with pytest.raises(ApiException) as missing:
        clients.core.create_namespaced_config_map("nowhere", config_map("x"))

    assert missing.value.status == 404
    assert json.loads(missing.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'namespaces "nowhere" not found', "reason": "NotFound",
        "details": {"name": "nowhere", "kind": "namespaces"}, "code": 404,
    }  # fmt: skip
    # Reads in a missing namespace are not refused: nothing is there.
    assert clients.core.list_namespaced_config_map("nowhere").items == []


def test_namespaces_are_served_and_logged_under_their_own_name(cluster: KubeTestCluster, clients: KubeClients) -> None:
    mark = cluster.server.log.mark()

    created = clients.core.create_namespace({"metadata": {"name": "made-here"}})
    read = clients.core.read_namespace("made-here")
    names = [item.metadata.name for item in clients.core.list_namespace().items]

    assert created.status.phase == "Active"
    assert read.metadata.labels == {"kubernetes.io/metadata.name": "made-here"}
    assert read.spec.finalizers == ["kubernetes"]
    assert {"default", "kube-system", "made-here"} <= set(names)
    records = [(r.verb, r.resource, r.namespace, r.name, r.status) for r in cluster.server.log.since(mark)]
    assert records == [
        ("create", "namespaces", "", "", 201),
        ("get", "namespaces", "made-here", "made-here", 200),
        ("list", "namespaces", "", "", 200),
    ]


def test_a_deleted_namespace_terminates_empties_then_goes(cluster: KubeTestCluster, clients: KubeClients) -> None:
    namespace = fresh_namespace(cluster)
    clients.core.create_namespaced_config_map(namespace, config_map("inside"))

    # The client types the answer as a Status; the server answers with the Namespace, as kube-apiserver does.
    deleted = json.loads(clients.core.delete_namespace(namespace, _preload_content=False).data)

    assert deleted["status"]["phase"] == "Terminating"
    with pytest.raises(ApiException) as refused:
        clients.core.create_namespaced_config_map(namespace, config_map("late"))
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {namespace} '
        "because it is being terminated"
    )
    assert eventually(lambda: not exists(lambda: clients.core.read_namespace(namespace)))
    assert not exists(lambda: clients.core.read_namespaced_config_map("inside", namespace))


def test_garbage_collection_is_asynchronous(clients: KubeClients, namespace: str) -> None:
    owner = clients.core.create_namespaced_config_map(namespace, config_map("owner")).to_dict()
    owner = {"metadata": {"name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}}
    clients.core.create_namespaced_config_map(namespace, config_map("dependent", owner))

    clients.core.delete_namespaced_config_map("owner", namespace)

    # Background propagation: the owner is gone at once, the dependent a little later.
    assert not exists(lambda: clients.core.read_namespaced_config_map("owner", namespace))
    assert exists(lambda: clients.core.read_namespaced_config_map("dependent", namespace))
    assert eventually(lambda: not exists(lambda: clients.core.read_namespaced_config_map("dependent", namespace)))


def test_foreground_deletion_waits_for_the_dependents(clients: KubeClients, namespace: str) -> None:
    made = clients.core.create_namespaced_config_map(namespace, config_map("fg-owner"))
    owner = {"metadata": {"name": "fg-owner", "uid": made.metadata.uid}}
    clients.core.create_namespaced_config_map(namespace, config_map("fg-dependent", owner))

    answer = clients.core.delete_namespaced_config_map(
        "fg-owner", namespace, body=client.V1DeleteOptions(propagation_policy="Foreground"), _preload_content=False
    )

    kept = json.loads(answer.data)["metadata"]
    assert "deletionTimestamp" in kept
    assert kept["finalizers"] == ["foregroundDeletion"]
    assert eventually(lambda: not exists(lambda: clients.core.read_namespaced_config_map("fg-owner", namespace)))
    assert not exists(lambda: clients.core.read_namespaced_config_map("fg-dependent", namespace))


def test_orphan_deletion_keeps_the_dependents(clients: KubeClients, namespace: str) -> None:
    made = clients.core.create_namespaced_config_map(namespace, config_map("or-owner"))
    owner = {"metadata": {"name": "or-owner", "uid": made.metadata.uid}}
    clients.core.create_namespaced_config_map(namespace, config_map("or-dependent", owner))

    clients.core.delete_namespaced_config_map("or-owner", namespace, propagation_policy="Orphan")

    time.sleep(0.6)  # twice the collector's delay
    kept = clients.core.read_namespaced_config_map("or-dependent", namespace)
    assert kept.metadata.owner_references is None
