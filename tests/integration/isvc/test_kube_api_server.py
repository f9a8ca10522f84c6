"""The test API server itself behaves like kube-apiserver, seen through the real kubernetes client."""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from inference_services.connection import KubeClients
from inference_services.deploy import render
from inference_services.isvc_api import GROUP, PLURAL, VERSION
from tests.support.isvc_configs import gpu_config
from tests.support.kube_api.fixtures import KubeTestCluster


@pytest.fixture
def api(clients: KubeClients) -> client.CustomObjectsApi:
    return clients.custom


def create(api: client.CustomObjectsApi, namespace: str, name: str) -> dict:
    return api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, render(gpu_config(name, 1), namespace)
    )


def test_conflicts_not_found_and_missing_resource_version(api: client.CustomObjectsApi, namespace: str) -> None:
    created = create(api, namespace, "sem")
    with pytest.raises(ApiException) as exists:
        create(api, namespace, "sem")
    assert (exists.value.status, '"reason": "AlreadyExists"' in exists.value.body) == (409, True)

    stale = {**created, "metadata": {**created["metadata"], "resourceVersion": "1"}}
    with pytest.raises(ApiException) as conflict:
        api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "sem", stale)
    assert conflict.value.status == 409
    assert "the object has been modified" in conflict.value.body

    unversioned = {**created, "metadata": {k: v for k, v in created["metadata"].items() if k != "resourceVersion"}}
    with pytest.raises(ApiException) as invalid:
        api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "sem", unversioned)
    assert invalid.value.status == 422

    with pytest.raises(ApiException) as missing:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "nope")
    assert missing.value.status == 404


def test_merge_patch_null_removes_and_generation_follows_the_spec(api: client.CustomObjectsApi, namespace: str) -> None:
    create(api, namespace, "gen")
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gen", {"spec": {"predictor": {"canaryTrafficPercent": 20}}}
    )
    assert (patched["metadata"]["generation"], patched["spec"]["predictor"]["canaryTrafficPercent"]) == (2, 20)

    labelled = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gen", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 2  # metadata changes do not bump the generation

    removed = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gen", {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    )
    assert "canaryTrafficPercent" not in removed["spec"]["predictor"]
    assert removed["metadata"]["generation"] == 3

    with_status = {**render(gpu_config("stat", 1), namespace), "status": {"observedGeneration": 99}}
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, with_status)
    assert "status" not in created  # status is written only through the status subresource


def test_watch_sends_bookmarks_and_410_for_compacted_history(
    cluster: KubeTestCluster, api: client.CustomObjectsApi, namespace: str
) -> None:
    created = create(api, namespace, "wat")
    events = [
        event["type"]
        for event in watch.Watch().stream(
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            field_selector="metadata.name=wat", resource_version=created["metadata"]["resourceVersion"],
            allow_watch_bookmarks=True, timeout_seconds=1,
        )
    ]  # fmt: skip
    assert "MODIFIED" in events  # the simulator's status updates
    assert "BOOKMARK" in events

    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "wat", {"metadata": {"labels": {"x": "y"}}})
    cluster.server.store.compact()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            resource_version=created["metadata"]["resourceVersion"], timeout_seconds=1,
        ):  # fmt: skip
            pass
    assert gone.value.status == 410
