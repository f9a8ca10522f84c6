"""A batch job given an InferenceService finds its V2 endpoint in the live object's status."""

from __future__ import annotations

import pytest

from aiserving.steps.batch_plan import resolve_endpoint
from batch_jobs.settings import JobParameters
from inference_services.connection import KubeClients
from inference_services.deploy import deploy
from inference_services.isvc_api import InferenceServiceApi
from serving_core.errors import NotFoundError
from tests.support.isvc_configs import gpu_config
from tests.support.kube_api.fixtures import KubeTestCluster


def test_the_endpoint_is_the_ready_services_address(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(gpu_config("batch-target", 1), clients, namespace=namespace, wait=True, timeout_s=20)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    status = InferenceServiceApi(clients, namespace).get("batch-target")["status"]

    endpoint = resolve_endpoint(JobParameters("in/", "out/", inference_service="batch-target", namespace=namespace))

    assert endpoint == (status.get("address") or {}).get("url", status["url"])
    assert endpoint.startswith("http://batch-target.")
    with pytest.raises(NotFoundError):
        resolve_endpoint(JobParameters("in/", "out/", inference_service="no-such-service", namespace=namespace))
