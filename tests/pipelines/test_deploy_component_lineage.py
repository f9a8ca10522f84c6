"""The deploy component stamps the run ids as KFP passes them: through the local runner, on the test API server."""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as types.
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kfp import dsl, local

from aiserving.pipeline_ops.catalog import COMPILED_DIR
from aiserving.pipeline_ops.local_run import scoped_environment
from components.deploy_inference_service import deploy_inference_service
from serving_core import isvc_lineage
from serving_core.processes import python_path_with
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.kube_api.resources import INFERENCE_SERVICES
from tests.support.wrapper_packages import write_wrapper_package

DIGEST = "sha256:" + "c" * 64
IMAGE = "registry.example.com/models/churn@sha256:" + "f" * 64
MLFLOW_RUN = "fedcba9876543210fedcba9876543210"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("kube-api"))


def _package(root: Path) -> Path:
    return write_wrapper_package(
        root, model="churn", version="3", run_id=MLFLOW_RUN, digest=DIGEST, max_batch_size=16, instance_kind="cpu"
    )


def test_the_deploy_task_stamps_the_mlflow_run_and_the_kubeflow_run(kube: KubeTestCluster, tmp_path: Path) -> None:
    namespace = fresh_namespace(kube)
    package = _package(tmp_path / "package")

    # The chain passes the run id exactly like this (pipelines/chain.py).
    @dsl.pipeline(name="deploy-only")
    def deploy_only(package_uri: str) -> None:
        imported = dsl.importer(artifact_uri=package_uri, artifact_class=dsl.Model)
        deploy_inference_service(
            package=imported.output, image_ref=IMAGE, image_format="modelcar", isvc_name="churn",
            namespace=namespace, deployment_mode="knative", gpu_count=0, gpu_resource="nvidia.com/gpu",
            canary_percent=10, deployment_overrides={}, target="cluster", wait_timeout_s=30,
            pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )  # fmt: skip

    environment = {"KUBECONFIG": str(kube.kubeconfig), "PYTHONPATH": python_path_with("components")}
    with scoped_environment(environment):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
        deploy_only(package_uri=str(package))

    live = kube.server.store.get(INFERENCE_SERVICES, namespace, "churn")
    lineage = isvc_lineage.read(live)
    assert (lineage.model_name, lineage.model_version, lineage.run_id, lineage.digest) == (
        "churn", "3", MLFLOW_RUN, DIGEST
    )  # fmt: skip
    # The local runner resolves the placeholder to its run's id, as the KFP backend does to the run's UUID.
    assert lineage.pipeline_run
    assert "{{" not in lineage.pipeline_run
    model = live["spec"]["predictor"]["model"]
    assert (model["runtime"], model["args"]) == ("creativeflow-mlflow-wrapper", ["--max-batch-size=16",
                                                                                  "--max-latency-ms=5"])  # fmt: skip


def test_the_compiled_deploy_model_pipeline_passes_kfps_run_id() -> None:
    spec = next(yaml.safe_load_all((COMPILED_DIR / "deploy-model.yaml").read_text()))
    passed = {
        task_name: task["inputs"]["parameters"]["pipeline_run"]
        for component in [spec["root"], *spec["components"].values()]
        for task_name, task in component.get("dag", {}).get("tasks", {}).items()
        if "pipeline_run" in task.get("inputs", {}).get("parameters", {})
    }
    # The backend resolves it to the run's UUID; the exit handler's rollback compares it with the annotation.
    run_id = {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    assert {"deploy-inference-service", "rollback-on-failure"} <= set(passed)
    assert all(value == run_id for value in passed.values()), passed
