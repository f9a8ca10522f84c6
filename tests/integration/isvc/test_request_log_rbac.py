"""Every call the deploy client makes, in RBAC terms: what the pipeline runner's Role must grant.

The manifests (issue 8) derive the Role from this set; docs/deploying.md lists it. Set
KUBE_API_REQUEST_LOG=/path/file.jsonl to get the whole session's request log as JSON lines.
"""

from __future__ import annotations

import pytest

from inference_services.connection import KubeClients
from tests.support.kube_api.fixtures import KubeTestCluster
from tests.support.kube_api.flows import exercise_deploy_client

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

    exercise_deploy_client(cluster, clients, namespace, mode)

    records = cluster.server.log.since(mark)
    assert {record.namespace for record in records} == {namespace}
    assert cluster.server.log.rbac_rules(mark) == DEPLOY_CLIENT_RULES
