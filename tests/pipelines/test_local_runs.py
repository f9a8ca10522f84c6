"""Pipelines run end to end through the KFP local runner on real local services.

MLflow server, docker-registry, the wrapper server and the test Kubernetes API server (with its
controller simulator) are real processes or HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from aiserving.local.busybox_base import push_busybox_base
from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.local.package_prediction import predict_input_example
from aiserving.local.registry import LocalRegistry
from aiserving.pipeline_ops.local_run import run_locally
from inference_services.isvc_api import InferenceServiceApi
from serving_core.errors import RemoteServiceError
from tests.support.kube_api.controller import Behaviour
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.mlflow_models import RegisteredModel, log_sklearn
from tests.support.tools import require_tools

VERSION_LABEL = "aiserving.creativeflow.ai/model-version"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("kube-api"))


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    require_tools("docker-registry", "busybox")
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline_env(
    kube: KubeTestCluster, local_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """What the component subprocesses inherit: kubeconfig, offline modelcar base, state dirs."""
    state = tmp_path_factory.mktemp("pipeline-env")
    base = push_busybox_base(f"{local_registry.host}/base/busybox:e2e", state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kube.kubeconfig))
        patch.setenv("AISERVING_MODELCAR_BASE", base)
        patch.setenv("AISERVING_CACHE_DIR", str(state / "cache"))
        patch.setenv("AISERVING_RENDER_DIR", str(state / "rendered"))
        yield state / "kfp-root"


def _deploy_arguments(server: LocalMlflowServer, registry: LocalRegistry, namespace: str, name: str) -> dict:
    return {
        "tracking_uri": server.uri,
        "runtime": "python",
        "instance_kind": "cpu",
        "image": f"{registry.host}/models/{name}:e2e",
        "insecure_registry": True,
        "isvc_name": name,
        "namespace": namespace,
        "gpu_count": 1,
        "canary_percent": 10,
        "target": "cluster",
        "wait_timeout_s": 120,
    }


@dataclass(frozen=True)
class StableDeployment:
    namespace: str
    name: str
    arguments: dict
    pipeline_root: Path


@pytest.fixture(scope="module")
def stable_deployment(
    mlflow_server: LocalMlflowServer,
    registered_models: dict[str, RegisteredModel],
    local_registry: LocalRegistry,
    pipeline_env: Path,
    kube: KubeTestCluster,
) -> StableDeployment:
    """deploy-model, run once for this module: the champion of sk-iris on its own InferenceService."""
    namespace = fresh_namespace(kube)
    arguments = {
        "model_uri": "models:/sk-iris@champion",
        **_deploy_arguments(mlflow_server, local_registry, namespace, "sk-iris"),
    }
    run_locally("deploy-model", arguments, pipeline_env / "stable")
    return StableDeployment(namespace, "sk-iris", arguments, pipeline_env / "stable")


def test_deploy_model_end_to_end(
    stable_deployment: StableDeployment,
    registered_models: dict[str, RegisteredModel],
    local_registry: LocalRegistry,
    kube: KubeTestCluster,
    tmp_path: Path,
) -> None:
    live = InferenceServiceApi(kube.clients(), stable_deployment.namespace).get("sk-iris")
    model = live["spec"]["predictor"]["model"]
    assert model["storageUri"].startswith(f"oci://{local_registry.host}/models/sk-iris@sha256:")
    assert model["runtime"] == "creativeflow-mlflow-wrapper"
    assert model["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert live["metadata"]["labels"][VERSION_LABEL] == registered_models["sklearn"].version
    assert {c["type"]: c["status"] for c in live["status"]["conditions"]}["Ready"] == "True"

    [package_json] = stable_deployment.pipeline_root.rglob("package-model/package/package.json")
    sent, received = predict_input_example(package_json.parent, tmp_path / "serve")
    expected = mlflow.pyfunc.load_model("models:/sk-iris@champion").predict(np.asarray(sent["input_0"], np.float32))
    assert [int(value) for value in np.ravel(received[next(iter(received))])] == [int(v) for v in expected]
    [report] = stable_deployment.pipeline_root.rglob("deployment-report/report")
    assert "| GPU resources | nvidia.com/gpu: 1 |" in report.read_text()


def test_never_ready_canary_fails_the_run_and_the_stable_revision_keeps_serving(
    stable_deployment: StableDeployment,
    registered_models: dict[str, RegisteredModel],
    local_registry: LocalRegistry,
    kube: KubeTestCluster,
    pipeline_env: Path,
) -> None:
    namespace, name = stable_deployment.namespace, stable_deployment.name
    [(stable_revision, (stable_model, _))] = kube.controller.serving(namespace, name).items()
    broken_repository = f"{local_registry.host}/models/sk-iris-broken"
    kube.controller.script(f"oci://{broken_repository}@", Behaviour(never_ready=True))
    pyfunc = registered_models["pyfunc"]
    canary = {
        **stable_deployment.arguments,
        "model_uri": f"models:/{pyfunc.name}/{pyfunc.version}",
        "image": f"{broken_repository}:e2e",
        "wait_timeout_s": 5,
    }
    environment = dict(os.environ)
    with pytest.raises(RemoteServiceError, match="deploy"):
        run_locally("deploy-model", canary, pipeline_env / "broken")
    assert dict(os.environ) == environment  # the failed run left no PYTHONPATH behind
    assert kube.controller.serving(namespace, name) == {stable_revision: (stable_model, 100)}


def test_deploy_on_alias_change_deploys_only_when_the_alias_moves(
    mlflow_server: LocalMlflowServer, local_registry: LocalRegistry, kube: KubeTestCluster, pipeline_env: Path
) -> None:
    mlflow.set_tracking_uri(mlflow_server.uri)
    first = log_sklearn("alias-follower")
    client = MlflowClient(mlflow_server.uri)
    client.set_registered_model_alias("alias-follower", "champion", first.version)
    namespace = fresh_namespace(kube)
    arguments = {
        "model_uri": "models:/alias-follower@champion",
        **_deploy_arguments(mlflow_server, local_registry, namespace, "follower"),
    }
    api = InferenceServiceApi(kube.clients(), namespace)

    run_locally("deploy-on-alias-change", arguments, pipeline_env / "1")
    deployed = api.get("follower")
    assert deployed["metadata"]["labels"][VERSION_LABEL] == first.version

    run_locally("deploy-on-alias-change", arguments, pipeline_env / "2")
    assert api.get("follower")["metadata"]["generation"] == deployed["metadata"]["generation"]
    assert not list((pipeline_env / "2").rglob("resolve-model"))

    second = log_sklearn("alias-follower")
    client.set_registered_model_alias("alias-follower", "champion", second.version)
    run_locally("deploy-on-alias-change", arguments, pipeline_env / "3")
    assert api.get("follower")["metadata"]["labels"][VERSION_LABEL] == second.version
