"""The test Kubernetes API server, started once for the InferenceService tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inference_services.connection import KubeClients
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("kube-api"))


@pytest.fixture
def namespace(cluster: KubeTestCluster) -> str:
    return fresh_namespace(cluster)


@pytest.fixture
def clients(cluster: KubeTestCluster) -> Iterator[KubeClients]:
    yield cluster.clients()
    cluster.server.faults.clear()
