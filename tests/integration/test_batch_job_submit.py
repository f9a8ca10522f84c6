"""``aiserving job run --host`` submits a batch-inference run; ``job status --run-id`` reads its state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT
from tests.support.kfp_api import KfpApiStandIn


@pytest.fixture
def kfp_api() -> Iterator[KfpApiStandIn]:
    with KfpApiStandIn() as stand_in:
        yield stand_in


def _cli(*args: str) -> dict[str, object]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "aiserving", *args], capture_output=True, text=True,
                            env=environment, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed: dict[str, object] = json.loads(result.stdout)
    return printed


def test_job_run_with_a_host_submits_the_batch_inference_pipeline(kfp_api: KfpApiStandIn) -> None:
    handle = _cli("job", "run", "s3://jobs/in/", "s3://jobs/out/7/", "--inference-service", "iris", "--namespace",
                  "creative", "--shard-size", "500", "--error-budget", "0.01", "--host", kfp_api.host)  # fmt: skip

    [run] = [request.body for request in kfp_api.state.requests
             if request.method == "POST" and request.path == "/apis/v2beta1/runs"]  # fmt: skip
    assert run is not None
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "batch-inference"
    assert run["runtime_config"]["parameters"] == {
        "input_uri": "s3://jobs/in/", "output_uri": "s3://jobs/out/7/", "inference_service": "iris",
        "namespace": "creative", "endpoint_url": "", "model_name": "", "model_uri": "", "input_format": "auto",
        "shard_size": 500, "rows_per_request": 32, "max_concurrency": 64, "latency_tolerance": 2.0,
        "error_budget": 0.01,
    }  # fmt: skip
    assert handle == {"output_uri": "s3://jobs/out/7/", "summary": {}, "run_id": handle["run_id"],
                      "url": f"{kfp_api.host}/#/runs/details/{handle['run_id']}"}  # fmt: skip

    status = _cli("job", "status", "--run-id", str(handle["run_id"]), "--host", kfp_api.host)
    assert status == {"run_id": handle["run_id"], "run_state": "PENDING"}
