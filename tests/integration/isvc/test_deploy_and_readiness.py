"""Deploy, generation-aware readiness, watch cuts and 410, 422, delete: real HTTP to the test API server."""

from __future__ import annotations

import time

import pytest

from inference_services.connection import KubeClients
from inference_services.deploy import deploy, render, undeploy
from inference_services.history import HistoryStore, history_name
from inference_services.isvc_api import InferenceServiceApi
from inference_services.readiness import wait_for
from serving_core.errors import InvalidInputError, NotFoundError, OperationTimeoutError, PermissionDeniedError
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour, Fault
from tests.support.kube_api.fixtures import KubeTestCluster
from tests.support.kube_api.resources import CONFIG_MAPS, INFERENCE_SERVICES


def test_first_deploy_waits_until_ready(cluster: KubeTestCluster, clients: KubeClients, namespace: str) -> None:
    result = deploy(gpu_config("first", 1), clients, namespace=namespace, wait=True, timeout_s=20)

    status = result.document["status"]
    assert result.changed
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert cluster.controller.serving(namespace, "first") == {"first-predictor-00001": (model_uri("first", 1), 100)}
    stored = cluster.server.store.get(INFERENCE_SERVICES, namespace, "first")
    assert stored["spec"]["predictor"]["model"]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_update_is_not_fooled_by_a_stale_ready(cluster: KubeTestCluster, clients: KubeClients, namespace: str) -> None:
    deploy(gpu_config("stale", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.controller.script(model_uri("stale", 2), Behaviour(ready_after_s=0.4))

    result = deploy(gpu_config("stale", 2), clients, namespace=namespace, wait=True, timeout_s=20)

    # Right after the write the object still said Ready=True for generation 1; we waited for generation 2.
    predictor = result.document["status"]["components"]["predictor"]
    assert result.document["metadata"]["generation"] == 2
    assert result.document["status"]["observedGeneration"] == 2
    assert predictor["latestReadyRevision"] == predictor["latestCreatedRevision"] == "stale-predictor-00002"
    assert cluster.controller.serving(namespace, "stale") == {"stale-predictor-00002": (model_uri("stale", 2), 100)}


def test_redeploying_the_same_config_writes_nothing(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    deploy(gpu_config("same", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    mark = cluster.server.log.mark()

    result = deploy(gpu_config("same", 1), clients, namespace=namespace, wait=True, timeout_s=20)

    assert not result.changed
    assert {record.verb for record in cluster.server.log.since(mark)} == {"get"}


def test_timeout_names_the_reason_in_plain_words(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    cluster.controller.script(model_uri("nogpu", 1), Behaviour(never_ready=True))

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("nogpu", 1), clients, namespace=namespace, wait=True, timeout_s=1.5)

    message = caught.value.message
    assert f'InferenceService "{namespace}/nogpu" (generation 1) did not become ready within 1.5 s' in message
    assert "the predictor pod cannot be scheduled: 3 of 3 nodes have no free NVIDIA GPU (nvidia.com/gpu)" in message
    assert caught.value.exit_code == 7


def test_watch_cuts_are_survived(cluster: KubeTestCluster, clients: KubeClients, namespace: str) -> None:
    cluster.server.faults.add(Fault(verb="watch", resource="inferenceservices", cut_watch_after=0, times=2))
    mark = cluster.server.log.mark()

    result = deploy(gpu_config("cut", 1), clients, namespace=namespace, wait=True, timeout_s=20)

    assert result.document["status"]["observedGeneration"] == 1
    watches = [record for record in cluster.server.log.since(mark) if record.verb == "watch"]
    assert len(watches) >= 3


def test_410_gone_reads_again_and_watches_on(cluster: KubeTestCluster, clients: KubeClients, namespace: str) -> None:
    written = deploy(gpu_config("gone", 1), clients, namespace=namespace).document
    cluster.server.store.create(CONFIG_MAPS, namespace, {"metadata": {"name": "later-change"}})
    cluster.server.store.compact()  # the write's resourceVersion is now too old to watch from
    mark = cluster.server.log.mark()

    ready = wait_for(InferenceServiceApi(clients, namespace), written, timeout_s=20)

    assert ready["status"]["observedGeneration"] == 1
    verbs = [record.verb for record in cluster.server.log.since(mark)]
    assert verbs[:2] == ["watch", "get"]


def test_the_server_refuses_what_the_crd_refuses(clients: KubeClients, namespace: str) -> None:
    document = render(gpu_config("bogus", 1), namespace)
    document["spec"]["predictor"]["gpuCount"] = 1

    with pytest.raises(InvalidInputError) as caught:
        InferenceServiceApi(clients, namespace).create(document)

    assert 'strict decoding error: unknown field "spec.predictor.gpuCount"' in caught.value.message


def test_undeploy_removes_the_service_and_its_history(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    deploy(gpu_config("gone-soon", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    deploy(gpu_config("gone-soon", 2), clients, namespace=namespace)
    assert HistoryStore(clients, namespace).load("gone-soon").previous_spec is not None

    started = time.monotonic()
    undeploy("gone-soon", clients, namespace=namespace, wait=True, timeout_s=10)

    assert time.monotonic() - started < 5
    assert InferenceServiceApi(clients, namespace).find("gone-soon") is None
    with pytest.raises(Exception, match="not found"):
        cluster.server.store.get(CONFIG_MAPS, namespace, history_name("gone-soon"))
    with pytest.raises(NotFoundError):
        undeploy("gone-soon", clients, namespace=namespace)


def test_a_403_is_reported_as_it_is_not_retried_or_hidden(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    cluster.server.faults.add(Fault(verb="create", resource="inferenceservices", status=403, times=1))
    mark = cluster.server.log.mark()

    with pytest.raises(PermissionDeniedError) as caught:
        deploy(gpu_config("denied", 1), clients, namespace=namespace)

    assert caught.value.message == (
        f'not allowed to create InferenceService "{namespace}/denied": injected 403 Forbidden'
    )
    assert [(r.verb, r.status) for r in cluster.server.log.since(mark)] == [("get", 404), ("create", 403)]
