"""The importable n8n workflows, run in a real n8n: triggered by webhook, answered by the KFP API stand-in.

n8n (tests/support/n8n_server.py) starts once for this module with every workflow in examples/n8n
imported and activated, the way docs/n8n.md sets it up; the stand-in checks each request against the
kfp_server_api models and the compiled pipeline's inputs, and moves batch runs through their states.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import yaml

from serving_core.errors import AiServingError
from tests.conftest import REPO_ROOT
from tests.support.kfp_api import KfpApiStandIn, PipelineVersion, RunPlan
from tests.support.n8n_server import N8nServer, ensure_installed
from tests.support.tools import skip_or_fail

WORKFLOWS = sorted((REPO_ROOT / "examples" / "n8n").glob("*.json"))
TOKEN = "kfp-token-for-n8n"
EXPERIMENT_ID = "exp-n8n"
MAX_POLLS = 4
# The batch-inference run's tasks as the KFP API lists them once the run finished.
BATCH_TASKS = ("plan-batch-job", "run shard", "summarise-batch-job")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class N8nWithKfp:
    n8n: N8nServer
    kfp: KfpApiStandIn
    deploy_model: PipelineVersion
    batch_inference: PipelineVersion

    def call(self, path: str, body: dict[str, Any]) -> requests.Response:
        """Trigger a workflow the way users do: POST to its production webhook."""
        return requests.post(f"{self.n8n.url}/webhook/{path}", json=body, timeout=60)


def _compiled_spec(name: str) -> dict[str, Any]:
    # A compiled pipeline YAML holds the pipeline spec, then the Kubernetes platform spec.
    documents = yaml.safe_load_all((REPO_ROOT / "pipelines" / "compiled" / f"{name}.yaml").read_text())
    return dict(next(iter(documents)))


@pytest.fixture(scope="session")
def n8n_with_kfp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[N8nWithKfp]:
    try:
        install = ensure_installed()
    except AiServingError as error:
        skip_or_fail(f"n8n could not be installed: {error}")
    with KfpApiStandIn() as kfp:
        kfp.state.required_token = TOKEN
        deploy_model = kfp.upload_pipeline_version(_compiled_spec("deploy-model"))
        batch_inference = kfp.upload_pipeline_version(_compiled_spec("batch-inference"))
        credential = {
            "id": "kfpApiToken", "name": "Kubeflow Pipelines API token", "type": "httpHeaderAuth",
            "data": {"name": "Authorization", "value": f"Bearer {TOKEN}"},
        }  # fmt: skip
        env = {
            "KFP_HOST": kfp.host,
            "KFP_EXPERIMENT_ID": EXPERIMENT_ID,
            "KFP_DEPLOY_MODEL_PIPELINE_ID": deploy_model.pipeline_id,
            "KFP_DEPLOY_MODEL_VERSION_ID": deploy_model.pipeline_version_id,
            "KFP_BATCH_INFERENCE_PIPELINE_ID": batch_inference.pipeline_id,
            "KFP_BATCH_INFERENCE_VERSION_ID": batch_inference.pipeline_version_id,
            "KFP_POLL_INTERVAL_S": "1",
            "KFP_MAX_POLLS": str(MAX_POLLS),
        }
        server = N8nServer(
            install, tmp_path_factory.mktemp("n8n"), workflows=WORKFLOWS, credentials=[credential], env=env
        )
        with server:
            yield N8nWithKfp(server, kfp, deploy_model, batch_inference)


def test_deploy_workflow_starts_a_deploy_model_run(n8n_with_kfp: N8nWithKfp) -> None:
    setup = n8n_with_kfp
    request = {
        "model_uri": "models:/fraud-detector@champion",
        "image": "registry.example.com/models/fraud:7",
        "isvc_name": "fraud-detector",
        "canary_percent": 10,
    }
    answer = setup.call("deploy-model", request)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    sent = {
        "display_name": "deploy fraud-detector from n8n",
        "experiment_id": EXPERIMENT_ID,
        "pipeline_version_reference": {
            "pipeline_id": setup.deploy_model.pipeline_id,
            "pipeline_version_id": setup.deploy_model.pipeline_version_id,
        },
        "runtime_config": {"parameters": request},
    }
    assert setup.kfp.state.runs[run["run_id"]] == run
    assert {key: run[key] for key in sent} == sent
    assert run["state"] == "PENDING"


def _start_job(setup: N8nWithKfp, plan: RunPlan, inference_service: str) -> tuple[dict[str, Any], int]:
    """Trigger the batch-job workflow for a run that follows ``plan``; its answer and how often it polled."""
    setup.kfp.state.run_plans.append(plan)
    request = {
        "inference_service": inference_service,
        "namespace": "creative-team",
        "input_uri": "s3://jobs/inputs/prompts/",
        "output_uri": f"s3://jobs/outputs/{inference_service}/",
        "shard_size": 500,
    }
    answer = setup.call("batch-job", request)
    assert answer.status_code == 200, answer.text
    summary: dict[str, Any] = answer.json()
    run = setup.kfp.state.runs[summary["run_id"]]
    assert run["runtime_config"] == {"parameters": request}
    assert run["pipeline_version_reference"] == {
        "pipeline_id": setup.batch_inference.pipeline_id,
        "pipeline_version_id": setup.batch_inference.pipeline_version_id,
    }
    assert RFC3339.match(summary.pop("created_at"))
    return summary, setup.kfp.state.gets_by_run[summary["run_id"]]


def test_batch_job_workflow_polls_until_the_run_succeeds(n8n_with_kfp: N8nWithKfp) -> None:
    plan = RunPlan(("PENDING", "PENDING", "RUNNING", "SUCCEEDED"), BATCH_TASKS)
    summary, polls = _start_job(n8n_with_kfp, plan, "prompt-embedder")
    assert RFC3339.match(summary.pop("finished_at"))
    run_id = summary["run_id"]
    assert summary == {
        "run_id": run_id,
        "state": "SUCCEEDED",
        "finished": True,
        "display_name": "batch-inference prompt-embedder from n8n",
        "error": None,
        "tasks": [{"name": name, "state": "SUCCEEDED", "error": None} for name in BATCH_TASKS],
        "output_uri": "s3://jobs/outputs/prompt-embedder/",
        "summary_uri": "s3://jobs/outputs/prompt-embedder/_SUCCESS",
        "run_url": f"{n8n_with_kfp.kfp.host}/#/runs/details/{run_id}",
    }
    assert polls == 3


def test_batch_job_workflow_reports_a_failed_run(n8n_with_kfp: N8nWithKfp) -> None:
    reason = "12 of 1000 items failed, past the error budget of 1 (0.001)"
    plan = RunPlan(("PENDING", "RUNNING", "FAILED"), BATCH_TASKS, error=reason)
    summary, polls = _start_job(n8n_with_kfp, plan, "image-tagger")
    assert RFC3339.match(summary.pop("finished_at"))
    assert summary == {
        "run_id": summary["run_id"],
        "state": "FAILED",
        "finished": True,
        "display_name": "batch-inference image-tagger from n8n",
        "error": reason,
        "tasks": [
            {"name": "plan-batch-job", "state": "SUCCEEDED", "error": None},
            {"name": "run shard", "state": "SUCCEEDED", "error": None},
            {"name": "summarise-batch-job", "state": "FAILED", "error": reason},
        ],
        "output_uri": "s3://jobs/outputs/image-tagger/",
        "summary_uri": None,
        "run_url": f"{n8n_with_kfp.kfp.host}/#/runs/details/{summary['run_id']}",
    }
    assert polls == 2


def test_batch_job_workflow_stops_polling_at_its_bound(n8n_with_kfp: N8nWithKfp) -> None:
    summary, polls = _start_job(n8n_with_kfp, RunPlan(("PENDING", "RUNNING")), "slow-model")
    assert (summary["state"], summary["finished"], summary["finished_at"], summary["tasks"]) == (
        "RUNNING", False, None, []
    )  # fmt: skip
    assert polls == MAX_POLLS


def test_job_request_with_an_unknown_parameter_gets_the_apis_refusal(n8n_with_kfp: N8nWithKfp) -> None:
    setup = n8n_with_kfp
    runs_before = len(setup.kfp.state.runs)
    answer = setup.call("batch-job", {"input_uri": "s3://jobs/in/", "shard_sise": 500})
    assert (answer.status_code, answer.json()) == (
        400, {"error": "run.runtime_config.parameters: unknown ['shard_sise']", "kfp_status": 400}
    )  # fmt: skip
    assert len(setup.kfp.state.runs) == runs_before
