"""submit / schedule over HTTP against a stand-in of the KFP v2beta1 REST API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from aiserving.pipeline_ops.triggers import schedule_run, submit_run
from serving_core.errors import InvalidInputError, PermissionDeniedError, UnreachableError
from tests.conftest import REPO_ROOT
from tests.support.kfp_api import KfpApiStandIn
from tests.support.ports import port_of, refusing_socket


@pytest.fixture
def kfp_api() -> Iterator[KfpApiStandIn]:
    with KfpApiStandIn() as stand_in:
        yield stand_in


def _posts(stand_in: KfpApiStandIn, path: str) -> list[dict]:
    return [
        request.body or {} for request in stand_in.state.requests if request.method == "POST" and request.path == path
    ]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiserving", *args], capture_output=True, text=True, env=environment, timeout=120
    )


def test_submit_from_cli_sends_the_compiled_spec_and_typed_params(kfp_api: KfpApiStandIn) -> None:
    result = run_cli(
        "submit", "deploy-model", "--host", kfp_api.host, "--experiment", "fraud",
        "--param", "canary_percent=25", "--param", "insecure_registry=true", "--param", "isvc_name=fraud",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    [experiment] = _posts(kfp_api, "/apis/v2beta1/experiments")
    assert experiment["display_name"] == "fraud"
    [run] = _posts(kfp_api, "/apis/v2beta1/runs")
    assert run["runtime_config"]["parameters"] == {
        "canary_percent": 25,
        "insecure_registry": True,
        "isvc_name": "fraud",
    }
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "deploy-model"
    assert "platform_spec" in run["pipeline_spec"]
    assert printed["run_id"] in kfp_api.state.runs
    assert printed["url"] == f"{kfp_api.host}/#/runs/details/{printed['run_id']}"
    assert printed["pipeline"] == "deploy-model"


def test_schedule_creates_a_recurring_run_without_catchup(kfp_api: KfpApiStandIn) -> None:
    scheduled = schedule_run(
        "deploy-on-alias-change", kfp_api.host, "*/30 * * * *", {"model_uri": "models:/fraud@champion"},
        experiment="fraud", name="follow-champion",
    )  # fmt: skip
    [recurring] = _posts(kfp_api, "/apis/v2beta1/recurringruns")
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 */30 * * * *"}}
    assert int(recurring["max_concurrency"]) == 1
    assert recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"
    assert recurring["display_name"] == "follow-champion"
    assert recurring["runtime_config"]["parameters"] == {"model_uri": "models:/fraud@champion"}
    assert scheduled.recurring_run_id in kfp_api.state.recurring_runs
    assert scheduled.experiment_id == recurring["experiment_id"]


def test_existing_experiment_is_reused(kfp_api: KfpApiStandIn) -> None:
    first = submit_run("canary-control", kfp_api.host, {"action": "promote"}, experiment="ops")
    second = submit_run("canary-control", kfp_api.host, {"action": "rollback"}, experiment="ops")
    assert len(_posts(kfp_api, "/apis/v2beta1/experiments")) == 1
    assert first.experiment_id == second.experiment_id


def test_unknown_parameter_fails_before_any_request(kfp_api: KfpApiStandIn) -> None:
    with pytest.raises(InvalidInputError, match="has no parameter\\(s\\) canary"):
        submit_run("deploy-model", kfp_api.host, {"canary": 10})
    assert kfp_api.state.requests == []


def test_bad_cron_via_cli_fails_before_any_request(kfp_api: KfpApiStandIn) -> None:
    result = run_cli("schedule", "deploy-on-alias-change", "--host", kfp_api.host, "--cron", "every day")
    assert result.returncode == InvalidInputError.exit_code
    assert "cron expression 'every day' is not valid" in result.stderr
    assert kfp_api.state.requests == []


def test_refused_token_is_a_permission_error(kfp_api: KfpApiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    kfp_api.state.required_token = "right"
    monkeypatch.setenv("KFP_TOKEN", "wrong")
    with pytest.raises(PermissionDeniedError, match="refused the request \\(401\\)"):
        submit_run("canary-control", kfp_api.host, {})
    monkeypatch.setenv("KFP_TOKEN", "right")
    assert submit_run("canary-control", kfp_api.host, {}).run_id


def test_unreachable_host_names_it() -> None:
    with refusing_socket() as unreachable:
        host = f"http://127.0.0.1:{port_of(unreachable)}"
        with pytest.raises(UnreachableError, match=f"Kubeflow Pipelines at {host} is unreachable"):
            submit_run("canary-control", host, {}, timeout_s=2)
