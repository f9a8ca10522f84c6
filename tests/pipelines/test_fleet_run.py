"""deploy-fleet end to end from a plan, through the KFP local runner, on real local services.

The plan's ``fleet-models.json`` is the pipeline's ``models`` input. Real MLflow server, docker-registry and the
test Kubernetes API server (with its controller simulator); the fixtures are test_local_runs.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml

from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.local.registry import LocalRegistry
from aiserving.pipeline_ops.local_run import run_locally
from aiserving.steps.fleet_plan import plan_fleet_files
from inference_services.isvc_api import InferenceServiceApi
from serving_core.errors import RemoteServiceError
from tests.pipelines import test_local_runs
from tests.support.kube_api.controller import Behaviour
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace
from tests.support.mlflow_models import log_sklearn

# The deploy-model end-to-end tests' fixtures: the test API server, docker-registry and the runner's environment.
kube = test_local_runs.kube
local_registry = test_local_runs.local_registry
pipeline_env = test_local_runs.pipeline_env


def _plan(folder: Path, namespace: str, models: list[dict[str, object]]) -> list[dict[str, object]]:
    """Plan the fleet on one A100 node with aiserving plan-fleet's step; return its fleet-models.json."""
    folder.mkdir()
    fleet, inventory = folder / "fleet.yaml", folder / "inventory.yaml"
    fleet.write_text(yaml.safe_dump({"models": [{"namespace": namespace, **model} for model in models]}))
    inventory.write_text(yaml.safe_dump({"nodes": [{"name": "gpu-a", "gpu": "A100-80GB", "gpus": 1}]}))
    plan_fleet_files(fleet, inventory, folder / "plan")
    loaded: list[dict[str, object]] = json.loads((folder / "plan" / "fleet-models.json").read_text())
    return loaded


def _report_rows(pipeline_root: Path) -> list[list[str]]:
    [report] = pipeline_root.rglob("rollback-fleet-on-failure/report")
    lines = report.read_text().splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[4:]]


def test_deploy_fleet_from_a_plan_then_a_failed_run_rolls_back_every_canary_it_started(
    mlflow_server: LocalMlflowServer,
    local_registry: LocalRegistry,
    kube: KubeTestCluster,
    pipeline_env: Path,
    tmp_path: Path,
) -> None:
    namespace = fresh_namespace(kube)
    mlflow.set_tracking_uri(mlflow_server.uri)
    iris = [log_sklearn("fleet-iris") for _ in range(2)]
    other = [log_sklearn("fleet-other") for _ in range(2)]
    images = f"{local_registry.host}/models"
    first = [
        {"name": "fleet-iris", "model_uri": f"models:/fleet-iris/{iris[0].version}", "runtime": "python",
         "image": f"{images}/fleet-iris:e2e", "memory_mib": 4000, "latency_class": "realtime"},
        {"name": "fleet-other", "model_uri": f"models:/fleet-other/{other[0].version}", "runtime": "python",
         "image": f"{images}/fleet-other:e2e", "memory_mib": 15000, "latency_class": "realtime"},
    ]  # fmt: skip
    models = _plan(tmp_path / "1", namespace, first)
    arguments = {
        "models": models, "tracking_uri": mlflow_server.uri, "instance_kind": "cpu", "insecure_registry": True,
        "namespace": namespace, "target": "cluster", "wait_timeout_s": 120,
    }  # fmt: skip

    run_locally("deploy-fleet", arguments, pipeline_env / "fleet-1")

    api = InferenceServiceApi(kube.clients(), namespace)
    # Both realtime models fit MIG slices of the one A100: the plan's resources are what the services ask for.
    assert [(item["isvc_name"], item["gpu_resource"]) for item in models] == [
        ("fleet-iris", "nvidia.com/mig-1g.10gb"),
        ("fleet-other", "nvidia.com/mig-1g.20gb"),
    ]
    for item in models:
        live = api.get(str(item["isvc_name"]))
        assert live["spec"]["predictor"]["model"]["resources"]["limits"] == {item["gpu_resource"]: 1}
        assert {c["type"]: c["status"] for c in live["status"]["conditions"]}["Ready"] == "True"
    stable = {str(item["isvc_name"]): kube.controller.serving(namespace, str(item["isvc_name"])) for item in models}
    rows = _report_rows(pipeline_env / "fleet-1")
    assert [(row[1], row[2], row[3], row[5]) for row in rows] == [
        (f"{namespace}/fleet-iris", "nvidia.com/mig-1g.10gb", "yes", "nothing: the run succeeded"),
        (f"{namespace}/fleet-other", "nvidia.com/mig-1g.20gb", "yes", "nothing: the run succeeded"),
    ]

    # Second run: new versions; fleet-iris's canary becomes ready, fleet-other's never does, so the run fails.
    broken = f"{images}/fleet-other-broken"
    kube.controller.script(f"oci://{broken}@", Behaviour(never_ready=True))
    second = [
        {**first[0], "model_uri": f"models:/fleet-iris/{iris[1].version}", "image": f"{images}/fleet-iris:v2"},
        {**first[1], "model_uri": f"models:/fleet-other/{other[1].version}", "image": f"{broken}:e2e"},
    ]
    models = _plan(tmp_path / "2", namespace, second)
    with pytest.raises(RemoteServiceError, match="deploy"):
        run_locally("deploy-fleet", {**arguments, "models": models, "wait_timeout_s": 20}, pipeline_env / "fleet-2")

    # Every canary the run started is gone: each service serves its first revision alone, as before.
    for name, serving in stable.items():
        [(revision, (model, percent))] = serving.items()
        assert percent == 100
        assert kube.controller.serving(namespace, name) == {revision: (model, 100)}
    # fleet-iris's canary had succeeded and took 10%: rolled back. fleet-other's never became ready, so it never
    # took traffic: nothing to roll back there.
    rows = _report_rows(pipeline_env / "fleet-2")
    assert [(row[1], row[3], row[4], row[5]) for row in rows] == [
        (f"{namespace}/fleet-iris", "yes", "fleet-iris-predictor-00002 0% / fleet-iris-predictor-00001 100%",
         f"rolled back {namespace}/fleet-iris: the previous revision serves 100%"),
        (f"{namespace}/fleet-other", "yes", "fleet-other-predictor-00001 100%",
         "nothing to roll back: no canary in progress"),
    ]  # fmt: skip
