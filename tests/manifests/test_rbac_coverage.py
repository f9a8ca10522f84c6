"""The pipeline runner's Role grants exactly the calls the deploy client makes.

The client's operations (create, update with a canary, set/promote/rollback, a canary that never gets
ready, delete, in both modes) run against the test Kubernetes API server, with the faults that send
the client down its recovery paths (409 on a stale resourceVersion, a cut watch, 410 Gone). The
server's request log, in RBAC terms, is then compared with the rendered Role in both directions.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import pytest

from inference_services.canary import CanaryControl
from inference_services.deploy import deploy, undeploy
from serving_core.errors import OperationTimeoutError
from tests.support.isvc_configs import gpu_config, model_uri
from tests.support.kube_api import Behaviour, Fault
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.manifests.objects import Obj, name_of, of_kind
from tests.support.manifests.rbac_calls import ApiCall, allowed_calls, coverage_problems

ROLE_NAME = "creativeflow-isvc-deployer"


@pytest.fixture(scope="module")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    with contextlib.contextmanager(running_cluster)(tmp_path_factory.mktemp("kube-api")) as cluster:
        yield cluster


def exercise_deploy_client(cluster: KubeTestCluster, mode: str) -> None:
    """Every operation of the deploy client, including its retry and re-read paths."""
    clients = cluster.clients()
    namespace = fresh_namespace(cluster)
    control = CanaryControl(clients, namespace)
    deploy(gpu_config("rbac", 1, mode=mode), clients, namespace=namespace, wait=True, timeout_s=20)
    faults = cluster.server.faults
    faults.add(Fault(verb="update", resource="inferenceservices", concurrent_write=True, times=1))
    faults.add(Fault(verb="watch", resource="inferenceservices", cut_watch_after=0, times=1))
    faults.add(Fault(verb="watch", resource="inferenceservices", status=410, times=1))
    deploy(gpu_config("rbac", 2, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=20)
    faults.clear()
    control.set_percent("rbac", 50, wait=True, timeout_s=20)
    control.report("rbac")
    control.promote("rbac", wait=True, timeout_s=20)
    control.rollback("rbac", wait=True, timeout_s=20)
    cluster.controller.script(model_uri("rbac", 3), Behaviour(never_ready=True))
    with pytest.raises(OperationTimeoutError):
        deploy(gpu_config("rbac", 3, mode=mode, canary=10), clients, namespace=namespace, wait=True, timeout_s=1)
    undeploy("rbac", clients, namespace=namespace, wait=True, timeout_s=10)


@pytest.fixture(scope="module")
def deploy_client_calls(kube_cluster: KubeTestCluster) -> set[ApiCall]:
    mark = kube_cluster.server.log.mark()
    for mode in ("knative", "standard"):
        exercise_deploy_client(kube_cluster, mode)
    return {ApiCall(*call) for call in kube_cluster.server.log.rbac_rules(mark)}


@pytest.fixture
def role(renders: dict[str, list[Obj]]) -> Obj:
    roles = {name_of(role): role for role in of_kind(renders["overlays/prod"], "Role")}
    return copy.deepcopy(roles[ROLE_NAME])


def test_the_scenario_reached_the_recovery_paths(deploy_client_calls: set[ApiCall]) -> None:
    # Pod events explain the never-ready canary; the history ConfigMap keeps the previous spec.
    assert ApiCall("", "events", "list") in deploy_client_calls
    assert ApiCall("", "configmaps", "update") in deploy_client_calls
    assert ApiCall("serving.kserve.io", "inferenceservices", "watch") in deploy_client_calls


def test_role_grants_exactly_the_deploy_clients_calls(role: Obj, deploy_client_calls: set[ApiCall]) -> None:
    assert coverage_problems(deploy_client_calls, role) == []


def drop_verb(resource: str, verb: str) -> Callable[[Obj], None]:
    def plant(role: Obj) -> None:
        for rule in role["rules"]:
            if resource in rule["resources"]:
                rule["verbs"] = [v for v in rule["verbs"] if v != verb]

    return plant


def add_rule(group: str, resource: str, verb: str) -> Callable[[Obj], None]:
    def plant(role: Obj) -> None:
        role["rules"].append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})

    return plant


@pytest.mark.parametrize(
    ("plant", "reported"),
    [
        (drop_verb("inferenceservices", "watch"), "does not allow 'watch inferenceservices.serving.kserve.io'"),
        (drop_verb("configmaps", "update"), "does not allow 'update configmaps'"),
        (add_rule("serving.kserve.io", "inferenceservices", "list"), "allows 'list inferenceservices.serving"),
        (add_rule("", "secrets", "get"), "allows 'get secrets', which the deploy client never makes"),
    ],
)
def test_coverage_reports_planted_mistakes(
    role: Obj, deploy_client_calls: set[ApiCall], plant: Callable[[Obj], None], reported: str
) -> None:
    plant(role)
    assert any(reported in problem for problem in coverage_problems(deploy_client_calls, role))


def test_wildcards_are_refused_not_expanded(role: Obj) -> None:
    role["rules"][0]["verbs"] = ["*"]
    with pytest.raises(ValueError, match="wildcard in verbs"):
        allowed_calls(role)
