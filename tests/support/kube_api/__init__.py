"""A Kubernetes API server for tests: real HTTP on 127.0.0.1 with the semantics our deploy client relies on.

Test support, not product. See :mod:`tests.support.kube_api.server` for what it implements.
"""

from tests.support.kube_api.controller import Behaviour, ControllerSimulator
from tests.support.kube_api.faults import Fault, FaultInjector
from tests.support.kube_api.request_log import RequestLog, RequestRecord
from tests.support.kube_api.server import KubeApiServer

__all__ = [
    "Behaviour",
    "ControllerSimulator",
    "Fault",
    "FaultInjector",
    "KubeApiServer",
    "RequestLog",
    "RequestRecord",
]
