"""Components called through python_func with simple artifacts, on real local services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aiserving.local.mlflow_server import LocalMlflowServer
from components.check_alias_change import check_alias_change
from components.resolve_model import resolve_model
from components.rollback_on_failure import rollback_on_failure
from components.set_canary_traffic import set_canary_traffic
from inference_services.deploy import deploy
from serving_core.errors import InvalidInputError, UnsupportedError
from tests.support.artifacts import FakeArtifact
from tests.support.isvc_configs import gpu_config
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.mlflow_models import RegisteredModel


@dataclass(frozen=True)
class FinalStatus:
    """What KFP passes as dsl.PipelineTaskFinalStatus."""

    state: str
    error_message: str = ""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("kube-api"))


@pytest.fixture
def kubeconfig(kube: KubeTestCluster, monkeypatch: pytest.MonkeyPatch) -> KubeTestCluster:
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    return kube


def test_resolve_model_component_downloads_with_lineage_metadata(
    mlflow_server: LocalMlflowServer, registered_models: dict[str, RegisteredModel], tmp_path: Path
) -> None:
    model = FakeArtifact(str(tmp_path / "model"))
    version = resolve_model.python_func(
        model_uri="models:/sk-iris@champion", tracking_uri=mlflow_server.uri, registry_uri="", model=model
    )
    assert version == registered_models["sklearn"].version
    assert (tmp_path / "model" / "MLmodel").is_file()
    assert model.metadata["model_name"] == "sk-iris"
    assert model.metadata["aliases"] == ["champion"]
    assert model.metadata["content_digest"].startswith("sha256:")


def _rendered(directory: Path, namespace: str, name: str, model: str, version: str) -> None:
    path = directory / namespace / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = {"aiserving.creativeflow.ai/model-name": model, "aiserving.creativeflow.ai/model-version": version}
    path.write_text(yaml.safe_dump({"metadata": {"name": name, "labels": labels}}))


def test_check_alias_change_against_the_rendered_deployment(
    mlflow_server: LocalMlflowServer,
    registered_models: dict[str, RegisteredModel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AISERVING_RENDER_DIR", str(tmp_path))
    champion = registered_models["sklearn"].version

    def changed() -> bool:
        return check_alias_change.python_func(
            model_uri="models:/sk-iris@champion", tracking_uri=mlflow_server.uri, registry_uri="",
            isvc_name="iris", namespace="ns", target="render",
        )  # fmt: skip

    assert changed() is True  # nothing deployed yet
    _rendered(tmp_path, "ns", "iris", "sk-iris", champion)
    assert changed() is False
    _rendered(tmp_path, "ns", "iris", "sk-iris", str(int(champion) + 1))
    assert changed() is True
    _rendered(tmp_path, "ns", "iris", "other-model", champion)
    assert changed() is True


def test_check_alias_change_refuses_a_version_uri(mlflow_server: LocalMlflowServer) -> None:
    with pytest.raises(InvalidInputError, match="does not name an alias"):
        check_alias_change.python_func(
            model_uri="models:/sk-iris/1", tracking_uri=mlflow_server.uri, registry_uri="",
            isvc_name="iris", namespace="ns", target="render",
        )  # fmt: skip


def test_canary_control_needs_a_live_target() -> None:
    with pytest.raises(UnsupportedError, match="target render has none"):
        set_canary_traffic.python_func(
            isvc_name="iris", namespace="ns", percent=20, target="render", inference_service=FakeArtifact("x")
        )


def test_exit_handler_rolls_back_only_its_own_canary(kubeconfig: KubeTestCluster) -> None:
    namespace = fresh_namespace(kubeconfig)
    clients = kubeconfig.clients()
    lineage = {"model_name": "fraud", "model_version": "1"}
    deploy(gpu_config("fraud", 1, lineage=lineage), clients, namespace=namespace, wait=True, timeout_s=30)
    canary_lineage = {"model_name": "fraud", "model_version": "2", "pipeline_run": "run-b"}
    deploy(gpu_config("fraud", 2, canary=30, lineage=canary_lineage), clients, namespace=namespace, wait=True,
           timeout_s=30)  # fmt: skip
    assert sorted(percent for _, percent in kubeconfig.controller.serving(namespace, "fraud").values()) == [30, 70]

    def exit_handler(run: str, state: str) -> str:
        return rollback_on_failure.python_func(
            isvc_name="fraud", namespace=namespace, target="cluster", pipeline_run=run,
            status=FinalStatus(state, "a step failed"),
        )  # fmt: skip

    assert exit_handler("run-b", "SUCCEEDED") == "nothing: the run succeeded"
    assert exit_handler("run-a", "FAILED") == "nothing to roll back: this run did not change the InferenceService"
    assert sorted(percent for _, percent in kubeconfig.controller.serving(namespace, "fraud").values()) == [30, 70]
    assert exit_handler("run-b", "CANCELLED").startswith(f"rolled back {namespace}/fraud")
    [(_, (model, percent))] = kubeconfig.controller.serving(namespace, "fraud").items()
    assert (model, percent) == ("s3://models/fraud/1", 100)
