"""Issue 14's defects, over real HTTP to the test API server, each as the user met it on Kubernetes 1.36.

| defect | what the test does |
|---|---|
| 1 | the scheduler's current wording (taint no longer named) reaches the user as a sentence |
| 2 | a canary that never gets ready: the whole deploy ends within --timeout and says it rolled back |
| 3 | Standard mode with canary_percent, redeployed unchanged: nothing is written |
| 4 | a namespace that does not exist: the server's reason is in the error |
| 5 | every write carries our field manager |
| 6 | quota and Pod Security refuse the pods: the FailedCreate events say why |
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference_services.canary import CanaryControl
from inference_services.connection import FIELD_MANAGER, KubeClients
from inference_services.deploy import deploy
from serving_core.errors import NotFoundError, OperationTimeoutError
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour, ControllerSimulator, KubeApiServer
from tests.support.kube_api.controller import untolerated_taint
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace
from tests.support.kube_api.resources import CONFIG_MAPS, INFERENCE_SERVICES, RESOURCE_QUOTAS

UNNAMED_TAINT = (
    "the predictor pod cannot be scheduled: 1 of 1 nodes carry a taint the pod does not tolerate (kubectl describe "
    "nodes shows them under Taints; add a matching entry to the config's tolerations)."
)


def test_the_current_scheduler_wording_becomes_a_sentence(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    cluster.controller.script(model_uri("tainted", 1), Behaviour(never_ready=True, event_message=untolerated_taint(1)))

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("tainted", 1), clients, namespace=namespace, wait=True, timeout_s=3)

    assert f": {UNNAMED_TAINT}" in caught.value.message
    assert "no new claims to deallocate" not in caught.value.message.split("Pod ")[-1]


def test_a_quota_refusal_is_read_from_the_failed_create_events(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    quota = {"metadata": {"name": "gpu-quota"}, "spec": {"hard": {"requests.nvidia.com/gpu": "0"}}}
    cluster.server.store.create(RESOURCE_QUOTAS, namespace, quota)

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("quota", 1, mode="standard"), clients, namespace=namespace, wait=True, timeout_s=3)

    assert (
        "the predictor pods are refused by ResourceQuota gpu-quota: they request requests.nvidia.com/gpu=1 while the "
        "namespace already uses requests.nvidia.com/gpu=0 of at most requests.nvidia.com/gpu=0; ask for fewer "
        "resources, free quota by removing other workloads, or ask the cluster admin to raise it (kubectl describe "
        "resourcequota gpu-quota)."
    ) in caught.value.message
    assert "ReplicaSet quota-predictor-" in caught.value.message


def test_a_pod_security_refusal_is_read_from_the_revisions_events(
    cluster: KubeTestCluster, clients: KubeClients
) -> None:
    namespace = fresh_namespace(cluster, {"pod-security.kubernetes.io/enforce": "restricted"})

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("strict", 1), clients, namespace=namespace, wait=True, timeout_s=3)

    message = caught.value.message
    assert "Revision strict-predictor-00001: the predictor pods are refused by Pod Security admission: the " in message
    assert 'namespace enforces "restricted:latest" and the pod allowPrivilegeEscalation != false' in message
    assert "or deploy into a namespace whose pod-security.kubernetes.io/enforce label allows it." in message


@pytest.fixture(scope="module")
def slow_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    """A controller that takes 1.5 s to act on each generation, as a busy KServe does."""
    with KubeApiServer() as server, ControllerSimulator(server.store, reconcile_delay_s=1.5) as controller:
        kubeconfig = server.write_kubeconfig(Path(tmp_path_factory.mktemp("slow-kube-api")) / "kubeconfig")
        yield KubeTestCluster(server, controller, kubeconfig)


@pytest.mark.parametrize("mode", ["knative", "standard"])
def test_a_failed_canary_ends_within_the_timeout_rolled_back(slow_cluster: KubeTestCluster, mode: str) -> None:
    clients, namespace = slow_cluster.clients(), fresh_namespace(slow_cluster)
    deploy(gpu_config("late", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    slow_cluster.controller.script(model_uri("late", 2), Behaviour(never_ready=True))
    started = time.monotonic()

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("late", 2, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=6)

    # A third of the 6 s is kept for the rollback (the controller needs 1.5 s); bookmarks come every 0.5 s.
    assert time.monotonic() - started < 6.75
    message = caught.value.message
    assert message.startswith(
        f'The canary of InferenceService "{namespace}/late" (generation 2) did not become ready within 6 s: '
    )
    stable = "late-predictor-00001" if mode == "knative" else "predictor"
    assert message.endswith(f"Rolled back (generation 3): the canary was stopped and {stable} serves 100 %.")
    assert CanaryControl(clients, namespace).report("late").canary_in_progress is False


def test_a_rollback_not_yet_confirmed_at_the_deadline_says_so(slow_cluster: KubeTestCluster) -> None:
    clients, namespace = slow_cluster.clients(), fresh_namespace(slow_cluster)
    deploy(gpu_config("later", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    slow_cluster.controller.script(model_uri("later", 2), Behaviour(never_ready=True))
    started = time.monotonic()

    with pytest.raises(OperationTimeoutError) as caught:
        deploy(gpu_config("later", 2, canary=10), clients, namespace=namespace, wait=True, timeout_s=3)

    assert time.monotonic() - started < 3.75
    assert caught.value.message.endswith(
        "Rolled back (generation 3): the canary was stopped, but KServe had not confirmed that the stable version "
        "serves 100 % when the 3 s ran out."
    )
    assert caught.value.hint is not None
    assert caught.value.hint.startswith(f"check with aiserving canary status later -n {namespace}; ")
    live = slow_cluster.server.store.get(INFERENCE_SERVICES, namespace, "later")
    assert (live["metadata"]["generation"], live["spec"]["predictor"]["canaryTrafficPercent"]) == (3, 0)


def test_a_standard_canary_config_redeployed_unchanged_writes_nothing(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str
) -> None:
    config = gpu_config("steady", 1, mode="standard", canary=10)
    first = deploy(config, clients, namespace=namespace, wait=True, timeout_s=20)
    mark = cluster.server.log.mark()

    again = deploy(config, clients, namespace=namespace, wait=True, timeout_s=20)

    assert (again.changed, again.canary) == (False, False)
    assert {(record.verb, record.resource) for record in cluster.server.log.since(mark)} == {
        ("get", "inferenceservices")
    }
    live = cluster.server.store.get(INFERENCE_SERVICES, namespace, "steady")
    assert live["metadata"]["generation"] == first.document["metadata"]["generation"] == 1
    assert "canary" not in live["spec"]
    assert cluster.server.store.find(CONFIG_MAPS, namespace, "steady-aiserving-history") is None


def test_a_missing_namespace_is_named_in_the_error(cluster: KubeTestCluster, clients: KubeClients) -> None:
    with pytest.raises(NotFoundError) as caught:
        deploy(gpu_config("iris-classifier", 1), clients, namespace="does-not-exist")

    assert (caught.value.message, caught.value.hint) == (
        'cannot create InferenceService "does-not-exist/iris-classifier": namespaces "does-not-exist" not found',
        "create the namespace (kubectl create namespace does-not-exist) or pass -n with one that exists",
    )


@pytest.mark.parametrize("mode", ["knative", "standard"])
def test_every_write_is_recorded_under_our_field_manager(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    control = CanaryControl(clients, namespace)
    deploy(gpu_config("owned", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    deploy(gpu_config("owned", 2, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=20)
    control.set_percent("owned", 50, wait=True, timeout_s=20)
    control.promote("owned", wait=True, timeout_s=20)

    isvc = cluster.server.store.get(INFERENCE_SERVICES, namespace, "owned")
    history = cluster.server.store.get(CONFIG_MAPS, namespace, "owned-aiserving-history")
    main_resource = [entry for entry in isvc["metadata"]["managedFields"] if not entry.get("subresource")]
    assert {(entry["manager"], entry["operation"]) for entry in main_resource} == {(FIELD_MANAGER, "Update")}
    assert {(entry["manager"], entry["operation"]) for entry in history["metadata"]["managedFields"]} == {
        (FIELD_MANAGER, "Update")
    }
