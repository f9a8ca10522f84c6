"""``aiserving package`` / ``verify`` on models:/ URIs from a real MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from aiserving.local.mlflow_server import LocalMlflowServer
from model_packaging import PackageManifest
from tests.integration.test_packaging_errors import run_cli
from tests.support.mlflow_models import RegisteredModel


@pytest.mark.slow
def test_package_and_verify_a_registered_model(
    registered_models: dict[str, RegisteredModel], mlflow_server: LocalMlflowServer, tmp_path: Path
) -> None:
    model = registered_models["onnx"]
    out = tmp_path / "pkg"
    uri = f"models:/{model.name}/{model.version}"
    packaged = run_cli(
        "package", uri, "--runtime", "triton", "--out", str(out), "--instance-kind", "cpu",
        "--tracking-uri", mlflow_server.uri,
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stderr
    manifest = PackageManifest.read(out)
    assert json.loads(packaged.stdout) == manifest.model_dump(mode="json")
    assert manifest.model_name == "onnx-regressor"
    assert manifest.source.location == uri
    assert (manifest.source.registered_name, manifest.source.registered_version) == (model.name, model.version)
    # Deploys stamp it as the run-id annotation.
    logged_by = MlflowClient(mlflow_server.uri).get_model_version(model.name, model.version).run_id
    assert logged_by
    assert manifest.source.run_id == logged_by
    assert sorted(path.name for path in out.iterdir()) == ["onnx-regressor", "package.json"]

    verified = run_cli("verify", str(out), "--tracking-uri", mlflow_server.uri)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[0] == f"package {out} (triton): PASSED"
    assert "output variable" in verified.stdout

    no_registry = run_cli("verify", str(out), "--tracking-uri", "http://127.0.0.1:9")
    assert no_registry.returncode == 6
    assert "is unreachable" in no_registry.stderr


@pytest.mark.slow
def test_verify_refuses_a_reference_model_that_is_not_the_packaged_one(
    registered_models: dict[str, RegisteredModel], mlflow_server: LocalMlflowServer, packaging_models, tmp_path: Path
) -> None:
    model = registered_models["pytorch"]
    out = tmp_path / "pkg"
    packaged = run_cli(
        "package", f"models:/{model.name}/latest",
        "--runtime", "torchserve", "--out", str(out), "--tracking-uri", mlflow_server.uri,
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stderr
    result = run_cli("verify", str(out), "--model", str(packaging_models["pytorch-mlp"]))
    assert result.returncode == 4
    assert "reference model" in result.stderr
    assert "but the package was made from sha256:" in result.stderr
