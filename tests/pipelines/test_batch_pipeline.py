"""batch-inference end to end through the KFP local runner on real local services.

Input and output on SeaweedFS's S3 gateway; the job names an InferenceService on the test Kubernetes API
server, whose status reports our model wrapper (a real server on 127.0.0.1) as its URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest

from aiserving.pipeline_ops.local_run import run_locally
from inference_services.deploy import deploy
from serving_core.errors import RemoteServiceError
from tests.support.isvc_configs import gpu_config
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace, running_cluster
from tests.support.s3 import SeaweedS3, empty_bucket, uploaded_files
from tests.support.served_models import RunningServer


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTestCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("kube-api"))


def _arguments(namespace: str, bucket: str, output: str) -> dict[str, object]:
    # The model name defaults to the InferenceService's: "iris", as the wrapper serves it.
    return {
        "input_uri": f"s3://{bucket}/in/", "output_uri": f"s3://{bucket}/{output}/", "inference_service": "iris",
        "namespace": namespace, "shard_size": 20, "rows_per_request": 8,
    }  # fmt: skip


def test_batch_inference_pipeline_runs_every_shard_and_reports(
    s3_store: SeaweedS3,
    iris_server: tuple[RunningServer, Path],
    kube: KubeTestCluster,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server, model_dir = iris_server
    namespace = fresh_namespace(kube)
    kube.controller.serve_at(namespace, "iris", server.url)
    deploy(gpu_config("iris", 1), kube.clients(), namespace=namespace, wait=True, timeout_s=30)
    environment = {**s3_store.environment(), "KUBECONFIG": str(kube.kubeconfig)}
    bucket = empty_bucket(s3_store, "pipeline")
    rows = np.random.default_rng(5).normal(size=(50, 4)).round(3)
    s3_store.client().put_object(
        Bucket=bucket, Key="in/rows.jsonl", Body="".join(json.dumps({"input_0": row.tolist()}) + "\n" for row in rows)
    )

    run_locally("batch-inference", _arguments(namespace, bucket, "out"), tmp_path / "run-1", environment=environment)

    found = uploaded_files(s3_store, bucket, "out/")
    results = [json.loads(line) for key in sorted(found) if key.startswith("out/results/")
               for line in found[key].decode().splitlines()]  # fmt: skip
    expected = mlflow.pyfunc.load_model(str(model_dir)).predict(rows.astype(np.float32))
    assert [record["id"] for record in results] == list(range(50))
    assert [record["outputs"]["output_0"] for record in results] == [int(label) for label in expected]
    # The plan found the endpoint in the InferenceService's status.
    assert json.loads(found["out/_model.json"]) == {"endpoint_url": server.url, "model_uri": ""}
    summary = json.loads(found["out/_SUCCESS"])
    assert (summary["items_done"], summary["errors"], summary["shards_done"]) == (50, 0, 3)

    [report] = (tmp_path / "run-1").rglob("summarise-batch-job/report")
    text = report.read_text()
    assert "| Items | 50 done, 0 failed of 50 |" in text
    assert text.count("](data:image/png;base64,") == 2  # throughput over time, latency distribution
    [executor_output] = (tmp_path / "run-1").rglob("summarise-batch-job/executor_output.json")
    metrics = json.loads(executor_output.read_text())["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert (metrics["items_done"], metrics["errors"]) == (50, 0)
    assert metrics["items_per_s"] > 0

    # A re-run of the same job: every shard task finds its shard done and rewrites nothing.
    etags = {
        e["Key"]: e["ETag"] for e in s3_store.client().list_objects_v2(Bucket=bucket, Prefix="out/results/")["Contents"]
    }
    run_locally("batch-inference", _arguments(namespace, bucket, "out"), tmp_path / "run-2", environment=environment)
    shard_outputs = [json.loads(json.loads(path.read_text())["parameterValues"]["Output"])
                     for path in (tmp_path / "run-2").rglob("run-batch-shard*/executor_output.json")]  # fmt: skip
    assert sorted(output["shard"] for output in shard_outputs if output["skipped"]) == [0, 1, 2]
    after = {
        e["Key"]: e["ETag"] for e in s3_store.client().list_objects_v2(Bucket=bucket, Prefix="out/results/")["Contents"]
    }
    assert after == etags

    # Another job into the same output location is refused by the plan step, before any shard runs.
    other = _arguments(namespace, bucket, "out") | {"shard_size": 7}
    capfd.readouterr()
    with pytest.raises(RemoteServiceError, match="plan-batch-job"):
        run_locally("batch-inference", other, tmp_path / "run-3", environment=environment)
    assert "holds the results of another job" in "".join(capfd.readouterr())
    assert not list((tmp_path / "run-3").rglob("run-batch-shard*"))
    assert uploaded_files(s3_store, bucket, "out/") == found


def test_only_shards_that_serve_the_model_themselves_ask_for_a_gpu() -> None:
    import yaml

    from aiserving.pipeline_ops.catalog import COMPILED_DIR

    spec = next(yaml.safe_load_all((COMPILED_DIR / "batch-inference.yaml").read_text()))
    executors = spec["deploymentSpec"]["executors"]
    resources = {name: executor["container"].get("resources", {}) for name, executor in executors.items()}
    assert resources == {
        "exec-plan-batch-job": {},
        "exec-run-batch-shard": {},
        "exec-run-batch-shard-2": {
            "accelerator": {
                "count": "1",
                "resourceCount": "1",
                "resourceType": "nvidia.com/gpu",
                "type": "nvidia.com/gpu",
            }
        },
        "exec-summarise-batch-job": {},
    }
