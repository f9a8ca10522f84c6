"""Issue 13: the pipeline's deploy step against the test API server, with the real kubernetes client.

| defect | what the test does |
|---|---|
| changed spec, same model | a GPU-count change and a replica change of the same model are applied |
| no-op | an identical deploy (another run) writes nothing: the request log has reads only |
| lineage | the MLflow run id (``/run-id``) and the Kubeflow run (``/pipeline-run``) are stamped |
| batching | the Python runtime's predictor carries the package's batching flags |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiserving.steps.deploy import DeployParameters, deploy_step
from serving_core import isvc_lineage
from tests.support.artifacts import FakeArtifact
from tests.support.kube_api.fixtures import KubeTestCluster
from tests.support.kube_api.resources import INFERENCE_SERVICES
from tests.support.wrapper_packages import write_wrapper_package

DIGEST = "sha256:" + "d" * 64
IMAGE = "registry.example.com/models/fraud@sha256:" + "e" * 64
MLFLOW_RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A Python-wrapper package as package-model writes it (package.json and wrapper-settings.json)."""
    return write_wrapper_package(
        tmp_path / "package",
        model="fraud",
        version="7",
        run_id=MLFLOW_RUN,
        digest=DIGEST,
        max_batch_size=32,
        instance_kind="gpu",
    )


@pytest.fixture
def kubeconfig(cluster: KubeTestCluster, monkeypatch: pytest.MonkeyPatch) -> KubeTestCluster:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    return cluster


def _deploy(package: Path, out: Path, namespace: str, *, run: str = "run-1", **changes: Any) -> FakeArtifact:
    values: dict[str, Any] = {
        "image_ref": IMAGE, "image_format": "modelcar", "isvc_name": "fraud", "namespace": namespace,
        "deployment_mode": "knative", "gpu_count": 1, "gpu_resource": "nvidia.com/gpu", "canary_percent": 10,
        "deployment_overrides": {}, "target": "cluster", "wait_timeout_s": 30, "pipeline_run": run,
    }  # fmt: skip
    inference_service = FakeArtifact(str(out / "inference_service"))
    deploy_step(
        DeployParameters(**{**values, **changes}), package=FakeArtifact(str(package)),
        inference_service=inference_service, manifest=FakeArtifact(str(out / "manifest.yaml")),
    )  # fmt: skip
    return inference_service


def _writes(cluster: KubeTestCluster, mark: int) -> set[tuple[str, str]]:
    return {(record.verb, record.resource) for record in cluster.server.log.since(mark) if record.verb != "get"}


def test_a_changed_spec_of_the_same_model_is_applied_and_an_identical_one_is_not(
    kubeconfig: KubeTestCluster, namespace: str, package: Path, tmp_path: Path
) -> None:
    _deploy(package, tmp_path / "first", namespace)

    more_gpus = _deploy(package, tmp_path / "gpus", namespace, run="run-2", gpu_count=2)

    live = kubeconfig.server.store.get(INFERENCE_SERVICES, namespace, "fraud")
    assert live["spec"]["predictor"]["model"]["resources"]["limits"] == {"nvidia.com/gpu": 2}
    assert more_gpus.metadata["gpu_resources"] == "nvidia.com/gpu: 2"
    assert isvc_lineage.read(live).pipeline_run == "run-2"

    _deploy(package, tmp_path / "replicas", namespace, run="run-3", gpu_count=2,
            deployment_overrides={"autoscaling": {"min_replicas": 2, "max_replicas": 4}})  # fmt: skip

    live = kubeconfig.server.store.get(INFERENCE_SERVICES, namespace, "fraud")
    assert (live["spec"]["predictor"]["minReplicas"], live["spec"]["predictor"]["maxReplicas"]) == (2, 4)
    generation = live["metadata"]["generation"]
    mark = kubeconfig.server.log.mark()

    again = _deploy(package, tmp_path / "again", namespace, run="run-4", gpu_count=2,
                    deployment_overrides={"autoscaling": {"min_replicas": 2, "max_replicas": 4}})  # fmt: skip

    assert _writes(kubeconfig, mark) == set()
    live = kubeconfig.server.store.get(INFERENCE_SERVICES, namespace, "fraud")
    assert live["metadata"]["generation"] == generation
    # Nothing was deployed by run-4, so its exit handler must not take the InferenceService for its own.
    assert isvc_lineage.read(live).pipeline_run == "run-3"
    assert again.metadata["gpu_resources"] == "nvidia.com/gpu: 2"


def test_the_live_object_carries_lineage_runtime_and_batching(
    kubeconfig: KubeTestCluster, namespace: str, package: Path, tmp_path: Path
) -> None:
    _deploy(package, tmp_path / "first", namespace, run="kfp-run-7")

    live = kubeconfig.server.store.get(INFERENCE_SERVICES, namespace, "fraud")
    assert isvc_lineage.read(live) == isvc_lineage.IsvcLineage(
        model_name="fraud", model_version="7", run_id=MLFLOW_RUN, digest=DIGEST, pipeline_run="kfp-run-7"
    )
    model = live["spec"]["predictor"]["model"]
    assert (model["runtime"], model["args"]) == (
        "creativeflow-mlflow-wrapper", ["--max-batch-size=32", "--max-latency-ms=5"]
    )  # fmt: skip
