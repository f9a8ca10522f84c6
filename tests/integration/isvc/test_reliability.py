"""The reliability table: each scenario ends with the previous revision serving 100 % where it should.

| scenario | what is injected |
|---|---|
| 409 storm | another writer changes the object before each of our writes |
| 5xx burst | 503/500/429 with Retry-After on reads and writes |
| watch cut | the watch stream is dropped mid-wait, then 410 Gone |
| never-ready canary | the canary's pods never schedule (no free GPU) |
| rollback after promotion | promote, then roll back to the kept spec |
"""

from __future__ import annotations

import time

import pytest

from inference_services.canary import CanaryControl
from inference_services.connection import KubeClients
from inference_services.deploy import deploy
from inference_services.history import HistoryStore
from inference_services.retry import RetryPolicy
from serving_core.errors import ConflictError, OperationTimeoutError, RemoteServiceError
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour, Fault
from tests.support.kube_api.fixtures import KubeTestCluster
from tests.support.kube_api.resources import INFERENCE_SERVICES

MODES = ["knative", "standard"]


def live(cluster: KubeTestCluster, namespace: str, name: str) -> dict:
    return cluster.server.store.get(INFERENCE_SERVICES, namespace, name)


def serving_models(cluster: KubeTestCluster, namespace: str, name: str) -> dict[str, int]:
    return {model: percent for model, percent in cluster.controller.serving(namespace, name).values()}


@pytest.mark.parametrize("mode", MODES)
def test_409_storm_is_retried_then_the_update_serves(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    deploy(gpu_config("storm", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.server.faults.add(Fault(verb="update", resource="inferenceservices", concurrent_write=True, times=3))
    mark = cluster.server.log.mark()

    deploy(gpu_config("storm", 2, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)

    updates = [
        r.status for r in cluster.server.log.since(mark) if r.verb == "update" and r.resource == "inferenceservices"
    ]
    assert updates == [409, 409, 409, 200]
    assert serving_models(cluster, namespace, "storm") == {model_uri("storm", 2): 100}


@pytest.mark.parametrize("mode", MODES)
def test_endless_409_storm_gives_up_and_the_previous_revision_keeps_serving(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    deploy(gpu_config("siege", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.server.faults.add(Fault(verb="update", resource="inferenceservices", concurrent_write=True, times=1000))

    with pytest.raises(ConflictError, match="changed under us 5 times in a row"):
        deploy(gpu_config("siege", 2, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)

    assert live(cluster, namespace, "siege")["spec"]["predictor"]["model"]["storageUri"] == model_uri("siege", 1)
    assert serving_models(cluster, namespace, "siege") == {model_uri("siege", 1): 100}


def test_5xx_burst_is_retried_honouring_retry_after(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    deploy(gpu_config("burst", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    faults = cluster.server.faults
    faults.add(Fault(verb="get", resource="inferenceservices", status=503, times=1))
    faults.add(Fault(verb="update", resource="inferenceservices", status=500, times=2))
    faults.add(Fault(verb="update", resource="inferenceservices", status=429, retry_after="1", times=1))
    faults.add(Fault(verb="watch", resource="inferenceservices", status=503, times=1))
    mark = cluster.server.log.mark()
    started = time.monotonic()

    deploy(gpu_config("burst", 2), clients, namespace=namespace, wait=True, timeout_s=20)

    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    calls = [(r.verb, r.status) for r in cluster.server.log.since(mark) if r.resource == "inferenceservices"]
    assert calls == [
        ("get", 503), ("get", 200),
        ("update", 500), ("update", 500), ("update", 429), ("update", 200),
        ("watch", 503), ("watch", 200),
    ]  # fmt: skip
    assert serving_models(cluster, namespace, "burst") == {model_uri("burst", 2): 100}


def test_5xx_that_never_ends_fails_clearly_and_the_previous_revision_keeps_serving(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    deploy(gpu_config("outage", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.server.faults.add(Fault(verb="update", resource="inferenceservices", status=503, times=1000))

    with pytest.raises(RemoteServiceError, match="HTTP 503") as caught:
        deploy(gpu_config("outage", 2), clients, namespace=namespace, wait=True, timeout_s=20)

    assert caught.value.retryable
    assert serving_models(cluster, namespace, "outage") == {model_uri("outage", 1): 100}


@pytest.mark.parametrize("mode", MODES)
def test_watch_cut_during_a_canary_then_rollback(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    deploy(gpu_config("cut", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.controller.script(model_uri("cut", 2), Behaviour(ready_after_s=0.3))
    cluster.server.faults.add(Fault(verb="watch", resource="inferenceservices", cut_watch_after=0, times=2))
    mark = cluster.server.log.mark()

    deploy(gpu_config("cut", 2, mode=mode, canary=30), clients, namespace=namespace, wait=True, timeout_s=20)

    assert len([r for r in cluster.server.log.since(mark) if r.verb == "watch"]) == 3
    assert serving_models(cluster, namespace, "cut") == {model_uri("cut", 1): 70, model_uri("cut", 2): 30}
    cluster.server.faults.add(Fault(verb="watch", resource="inferenceservices", cut_watch_after=0, times=1))

    CanaryControl(clients, namespace).rollback("cut", wait=True, timeout_s=20)

    assert serving_models(cluster, namespace, "cut") == {model_uri("cut", 1): 100}


@pytest.mark.parametrize("mode", MODES)
def test_never_ready_canary_fails_clearly_and_is_rolled_back(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    deploy(gpu_config("doomed", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    cluster.controller.script(model_uri("doomed", 2), Behaviour(never_ready=True))

    with pytest.raises(OperationTimeoutError) as caught:
        # A third of the 3 s is kept for the rollback.
        deploy(gpu_config("doomed", 2, mode=mode, canary=25), clients, namespace=namespace, wait=True, timeout_s=3)

    message = caught.value.message
    assert message.startswith(
        f'The canary of InferenceService "{namespace}/doomed" (generation 2) did not become ready within 3 s: '
    )
    assert "3 of 3 nodes have no free NVIDIA GPU (nvidia.com/gpu)" in message
    stable = "doomed-predictor-00001" if mode == "knative" else "predictor"
    assert message.endswith(f"Rolled back (generation 3): the canary was stopped and {stable} serves 100 %.")
    spec = live(cluster, namespace, "doomed")["spec"]
    if mode == "knative":
        assert spec["predictor"]["canaryTrafficPercent"] == 0
    else:
        assert "canary" not in spec
        assert spec["predictor"]["model"]["storageUri"] == model_uri("doomed", 1)
    assert serving_models(cluster, namespace, "doomed") == {model_uri("doomed", 1): 100}


@pytest.mark.parametrize("mode", MODES)
def test_rollback_after_promotion_restores_the_previous_spec(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    deploy(gpu_config("promo", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    first_spec = live(cluster, namespace, "promo")["spec"]
    deploy(gpu_config("promo", 2, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=20)
    assert serving_models(cluster, namespace, "promo") == {model_uri("promo", 1): 90, model_uri("promo", 2): 10}
    control = CanaryControl(clients, namespace)

    control.promote("promo", wait=True, timeout_s=20)

    promoted = live(cluster, namespace, "promo")["spec"]
    assert "canaryTrafficPercent" not in promoted["predictor"]
    assert "canary" not in promoted
    assert promoted["predictor"]["model"]["storageUri"] == model_uri("promo", 2)
    assert serving_models(cluster, namespace, "promo") == {model_uri("promo", 2): 100}

    control.rollback("promo", wait=True, timeout_s=20)

    assert live(cluster, namespace, "promo")["spec"] == first_spec
    assert serving_models(cluster, namespace, "promo") == {model_uri("promo", 1): 100}
    # The rollback kept the promoted spec, so it can itself be undone.
    assert HistoryStore(clients, namespace).load("promo").previous_spec == promoted


def test_a_slow_answer_times_out_and_is_retried(cluster: KubeTestCluster, namespace: str) -> None:
    impatient = cluster.clients(RetryPolicy(attempts=4, base_delay_s=0.02, request_timeout_s=0.5))
    cluster.server.faults.add(Fault(verb="get", resource="inferenceservices", delay_s=1.5, times=1))
    mark = cluster.server.log.mark()

    deploy(gpu_config("slow", 1), impatient, namespace=namespace, wait=True, timeout_s=20)

    def isvc_gets() -> list[int]:
        return [
            r.status for r in cluster.server.log.since(mark) if r.verb == "get" and r.resource == "inferenceservices"
        ]

    deadline = time.monotonic() + 5
    while len(isvc_gets()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the slow answer is logged when the server finally sends it, after we gave up on it
    # The retry found nothing and created it; the slow answer, sent later, already saw the new object.
    assert isvc_gets() == [404, 200]
    assert serving_models(cluster, namespace, "slow") == {model_uri("slow", 1): 100}
