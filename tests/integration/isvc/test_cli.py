"""The CLI end to end: aiserving deploy / canary … against the test API server through a kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from tests.support.isvc_configs import model_uri
from tests.support.kube_api.fixtures import KubeTestCluster
from tests.support.kube_api.resources import INFERENCE_SERVICES


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "aiserving", *args], capture_output=True, text=True, env=environment, timeout=120
    )


def write_config(directory: Path, version: int, **extra: object) -> Path:
    path = directory / f"v{version}.yaml"
    document = {"name": "cli-model", "model_format": "onnx", "storage_uri": model_uri("cli-model", version),
                "gpu": {"count": 1}, **extra}  # fmt: skip
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_deploy_canary_promote_rollback_from_the_command_line(
    cluster: KubeTestCluster, namespace: str, tmp_path: Path
) -> None:
    cluster_flags = ["-n", namespace, "--kubeconfig", str(cluster.kubeconfig), "--context", "kube-api-test"]

    first = run_cli("deploy", str(write_config(tmp_path, 1)), "--wait", "--timeout", "30", *cluster_flags)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["traffic"][0]["percent"] == 100

    canary = run_cli("deploy", str(write_config(tmp_path, 2, canary_percent=10)), "--wait", *cluster_flags)
    assert canary.returncode == 0, canary.stderr

    moved = run_cli("canary", "set", "cli-model", "--percent", "40", "--wait", *cluster_flags)
    assert moved.returncode == 0, moved.stderr
    status = run_cli("canary", "status", "cli-model", *cluster_flags)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["canaryInProgress"] is True
    assert [(share["role"], share["percent"]) for share in report["traffic"]] == [("canary", 40), ("stable", 60)]

    promoted = run_cli("canary", "promote", "cli-model", "--wait", *cluster_flags)
    assert promoted.returncode == 0, promoted.stderr
    assert cluster.controller.serving(namespace, "cli-model") == {
        "cli-model-predictor-00002": (model_uri("cli-model", 2), 100)
    }

    rolled_back = run_cli("canary", "rollback", "cli-model", "--wait", *cluster_flags)
    assert rolled_back.returncode == 0, rolled_back.stderr
    live = cluster.server.store.get(INFERENCE_SERVICES, namespace, "cli-model")
    assert live["spec"]["predictor"]["model"]["storageUri"] == model_uri("cli-model", 1)
    assert [model for model, _ in cluster.controller.serving(namespace, "cli-model").values()] == [
        model_uri("cli-model", 1)
    ]


def test_bad_input_fails_before_any_request(cluster: KubeTestCluster, namespace: str, tmp_path: Path) -> None:
    flags = ["-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    mark = cluster.server.log.mark()

    bad_gpu = run_cli("deploy", str(write_config(tmp_path, 1, gpu={"count": 1.5})), *flags)
    bad_percent = run_cli("canary", "set", "cli-model", "--percent", "150", *flags)
    too_old = run_cli(
        "deploy", str(write_config(tmp_path, 2, mode="standard", canary_percent=10)), "--kserve-version", "0.16", *flags
    )

    assert bad_gpu.returncode == 2
    assert "gpu.count" in bad_gpu.stderr
    assert "1.5" in bad_gpu.stderr
    assert bad_percent.returncode == 2
    assert "canary percent 150 is outside 0-100" in bad_percent.stderr
    assert too_old.returncode == 8
    assert "a Standard-mode canary (spec.canary) needs KServe >= 0.20" in too_old.stderr
    assert cluster.server.log.since(mark) == []
