"""Session-wide test API server + controller simulator, and per-test helpers to reach them."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inference_services.connection import KubeClients, connect
from inference_services.retry import RetryPolicy
from tests.support.kube_api.controller import ControllerSimulator
from tests.support.kube_api.server import KubeApiServer

# Set to a file path to get every request of the test session as JSON lines (RBAC derivation).
REQUEST_LOG_ENV = "KUBE_API_REQUEST_LOG"
FAST_RETRIES = RetryPolicy(attempts=6, base_delay_s=0.02, max_delay_s=2.0, request_timeout_s=10.0)

_namespaces = itertools.count(1)


@dataclass
class KubeTestCluster:
    """What a test needs: the server (store, log, faults), the simulator and a kubeconfig."""

    server: KubeApiServer
    controller: ControllerSimulator
    kubeconfig: Path

    def clients(self, retry: RetryPolicy = FAST_RETRIES) -> KubeClients:
        return connect(str(self.kubeconfig), retry=retry)


def fresh_namespace(cluster: KubeTestCluster, labels: dict[str, str] | None = None) -> str:
    """Create a namespace no other test uses, so tests never see each other's objects.

    It is created as a cluster admin would, before the test: not through HTTP, so not in the request log.
    """
    name = f"test-{next(_namespaces)}"
    cluster.server.create_namespace(name, labels)
    return name


def running_cluster(state_dir: Path) -> Iterator[KubeTestCluster]:
    """Start the server and simulator; on exit stop them and write the request log if asked."""
    with KubeApiServer() as server, ControllerSimulator(server.store) as controller:
        kubeconfig = server.write_kubeconfig(state_dir / "kubeconfig")
        yield KubeTestCluster(server, controller, kubeconfig)
        destination = os.environ.get(REQUEST_LOG_ENV)
        if destination:
            with Path(destination).open("w", encoding="utf-8") as handle:
                for record in server.log.records():
                    handle.write(json.dumps(record.as_dict()) + "\n")
