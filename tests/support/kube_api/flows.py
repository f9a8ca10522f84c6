"""Drive every call the deploy client can make, so the request log shows what RBAC it needs.

Used by the RBAC test here and by the manifests' tests (issue 8) to derive the pipeline runner's Role:

    mark = cluster.server.log.mark()
    exercise_deploy_client(cluster, cluster.clients(), fresh_namespace(), "knative")
    rules = cluster.server.log.rbac_rules(mark)   # {(api_group, resource[/subresource], verb), ...}
"""

from __future__ import annotations

import pytest

from inference_services.canary import CanaryControl
from inference_services.connection import KubeClients
from inference_services.deploy import deploy, undeploy
from serving_core.errors import OperationTimeoutError
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api.controller import Behaviour
from tests.support.kube_api.fixtures import KubeTestCluster


def exercise_deploy_client(cluster: KubeTestCluster, clients: KubeClients, namespace: str, mode: str) -> None:
    """Deploy, canary, set, status, promote, roll back, a failed canary (events read), undeploy."""
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
