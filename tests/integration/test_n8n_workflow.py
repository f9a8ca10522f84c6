"""The importable n8n workflow sends a request the KFP API accepts."""

from __future__ import annotations

import json
import re

import requests

from tests.conftest import REPO_ROOT
from tests.support.kfp_api import KfpApiStandIn

WORKFLOW = REPO_ROOT / "examples" / "n8n" / "deploy-model-workflow.json"
SAMPLE = {
    "$env.KFP_HOST": None,  # filled with the stand-in's URL
    "$env.KFP_EXPERIMENT_ID": "exp-1",
    "$env.KFP_DEPLOY_MODEL_PIPELINE_ID": "pipe-1",
    "$env.KFP_DEPLOY_MODEL_VERSION_ID": "ver-1",
    "$json.body.isvc_name": "fraud-detector",
    "$json.body.model_uri": "models:/fraud-detector@champion",
    "$json.body.image": "registry.example.com/models/fraud:7",
    "$json.body.canary_percent": "10",
}


def _fill(template: str, values: dict[str, str]) -> str:
    # n8n evaluates {{ expression }} inside a leading-'=' field.
    return re.sub(r"\{\{\s*(.+?)\s*\}\}", lambda match: values[match.group(1)], template.removeprefix("="))


def test_workflow_is_importable_and_its_request_is_accepted() -> None:
    workflow = json.loads(WORKFLOW.read_text())
    nodes = {node["name"]: node for node in workflow["nodes"]}
    assert workflow["connections"]["Deployment request"]["main"][0][0]["node"] == "Start deploy-model run"
    http = nodes["Start deploy-model run"]["parameters"]
    assert http["method"] == "POST"
    with KfpApiStandIn() as kfp_api:
        values = {**SAMPLE, "$env.KFP_HOST": kfp_api.host}
        body = json.loads(_fill(http["jsonBody"], values))
        response = requests.post(_fill(http["url"], values), json=body, timeout=10)
        assert response.status_code == 200, response.text
        [recorded] = [request.body for request in kfp_api.state.requests if request.method == "POST"]
    assert recorded["runtime_config"]["parameters"] == {
        "model_uri": "models:/fraud-detector@champion",
        "image": "registry.example.com/models/fraud:7",
        "isvc_name": "fraud-detector",
        "canary_percent": 10,
    }
    assert recorded["pipeline_version_reference"] == {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-1"}
