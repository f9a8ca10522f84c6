"""The test API server itself behaves like kube-apiserver, seen through the real kubernetes client."""

from __future__ import annotations

import json

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


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def with_bogus_field(namespace: str, name: str) -> dict:
    document = render(gpu_config(name, 1), namespace)
    document["spec"]["predictor"]["model"]["bogusField"] = True
    return document


def test_strict_field_validation_is_a_400_strict_decoding_error(api: client.CustomObjectsApi, namespace: str) -> None:
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, with_bogus_field(namespace, "strict"), field_validation="Strict"
        )

    assert refused.value.status == 400
    assert status_of(refused.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'strict decoding error: unknown field "spec.predictor.model.bogusField"',
        "reason": "BadRequest", "code": 400,
    }  # fmt: skip


@pytest.mark.parametrize(("directive", "warned"), [(None, True), ("Warn", True), ("Ignore", False)])
def test_without_strict_unknown_fields_are_pruned(
    api: client.CustomObjectsApi, namespace: str, directive: str | None, warned: bool
) -> None:
    extra = {"field_validation": directive} if directive else {}
    created, code, headers = api.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, namespace, PLURAL, with_bogus_field(namespace, "pruned"), **extra
    )

    assert code == 201
    assert "bogusField" not in created["spec"]["predictor"]["model"]
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "pruned")
    assert "bogusField" not in stored["spec"]["predictor"]["model"]
    expected = '299 - "unknown field \\"spec.predictor.model.bogusField\\""'
    assert (headers.get("Warning") == expected) is warned


def test_status_writes_are_validated_against_the_crd(api: client.CustomObjectsApi, namespace: str) -> None:
    create(api, namespace, "stat")

    with pytest.raises(ApiException) as refused:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "stat", {"status": {"observedGeneration": "one"}}
        )

    assert refused.value.status == 422
    body = status_of(refused.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'InferenceService.serving.kserve.io "stat" is invalid: status.observedGeneration: Invalid value: "string": '
        'status.observedGeneration in body must be of type integer: "string"'
    )
    assert body["details"]["kind"] == "InferenceService"
    assert body["details"]["causes"][0]["field"] == "status.observedGeneration"


def test_custom_resources_select_only_on_metadata_fields(
    api: client.CustomObjectsApi, clients: KubeClients, namespace: str
) -> None:
    create(api, namespace, "sel")
    by_name = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, field_selector="metadata.name=sel")
    assert [item["metadata"]["name"] for item in by_name["items"]] == ["sel"]

    with pytest.raises(ApiException) as refused:
        api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, field_selector="spec.predictor=x")
    assert (refused.value.status, status_of(refused.value)["message"]) == (
        400,
        "field label not supported: spec.predictor",
    )
    # Built-in kinds register their own labels: events select on involvedObject.*, pods on status.phase.
    clients.core.list_namespaced_event(namespace, field_selector="involvedObject.kind=Pod,type!=Normal")
    clients.core.list_namespaced_pod(namespace, field_selector="status.phase=Running")
    with pytest.raises(ApiException) as pods:
        clients.core.list_namespaced_pod(namespace, field_selector="spec.containers=x")
    assert pods.value.status == 400


def test_not_found_carries_the_real_details(api: client.CustomObjectsApi, namespace: str) -> None:
    with pytest.raises(ApiException) as missing:
        api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "nope")

    assert status_of(missing.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'inferenceservices.serving.kserve.io "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "group": "serving.kserve.io", "kind": "inferenceservices"}, "code": 404,
    }  # fmt: skip
