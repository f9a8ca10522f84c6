"""Every call the deploy client makes, in RBAC terms: what the pipeline runner's Role must grant.

The manifests (issue 8) derive the Role from this set; docs/deploying.md lists it. Set
KUBE_API_REQUEST_LOG=/path/file.jsonl to get the whole session's request log as JSON lines.
"""

from __future__ import annotations

import pytest

from aiserving.errors import OperationTimeoutError
from inference_services.canary import CanaryControl
from inference_services.connection import KubeClients
from inference_services.deploy import deploy, undeploy
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour
from tests.support.kube_api.fixtures import KubeTestCluster

ISVC = "serving.kserve.io"
DEPLOY_CLIENT_RULES = {
    (ISVC, "inferenceservices", "get"),
    (ISVC, "inferenceservices", "create"),
    (ISVC, "inferenceservices", "update"),
    (ISVC, "inferenceservices", "patch"),
    (ISVC, "inferenceservices", "watch"),
    (ISVC, "inferenceservices", "delete"),
    ("", "configmaps", "get"),
    ("", "configmaps", "create"),
    ("", "configmaps", "update"),
    ("", "pods", "list"),
    ("", "events", "list"),
}


@pytest.mark.parametrize("mode", ["knative", "standard"])
def test_the_deploy_client_needs_exactly_these_rules(
    cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str
) -> None:
    mark = cluster.server.log.mark()
    control = CanaryControl(clients, namespace)
    deploy(gpu_config("rbac", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    deploy(gpu_config("rbac", 2, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=20)
    control.set_percent("rbac", 50, wait=True, timeout_s=20)
    control.report("rbac")
    control.promote("rbac", wait=True, timeout_s=20)
    control.rollback("rbac", wait=True, timeout_s=20)
    cluster.controller.script(model_uri("rbac", 3), Behaviour(never_ready=True))
    with pytest.raises(OperationTimeoutError):
        deploy(gpu_config("rbac", 3, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=1)
    undeploy("rbac", clients, namespace=namespace, wait=True, timeout_s=10)

    records = cluster.server.log.since(mark)
    assert {record.namespace for record in records} == {namespace}
    assert cluster.server.log.rbac_rules(mark) == DEPLOY_CLIENT_RULES
