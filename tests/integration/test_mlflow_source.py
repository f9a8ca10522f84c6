"""aiserving resolve / download against a real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from aiserving.local.mlflow_server import LocalMlflowServer
from mlflow_source import Lineage, RegistryConnection, content_digest, download_model, resolve_model
from serving_core.errors import InvalidInputError, NotFoundError, UnreachableError
from tests.conftest import REPO_ROOT
from tests.support.mlflow_models import RegisteredModel, log_pyfunc
from tests.support.ports import port_of, refusing_socket


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aiserving", *args], capture_output=True, text=True, env=environment, timeout=300
    )


@pytest.fixture
def connection(mlflow_server: LocalMlflowServer) -> RegistryConnection:
    return RegistryConnection.from_settings(mlflow_server.uri)


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "onnx", "pyfunc"])
def test_resolve_reports_flavors_signature_and_size(
    flavor: str, registered_models: dict[str, RegisteredModel], connection: RegistryConnection
) -> None:
    model = registered_models[flavor]
    resolved = resolve_model(f"models:/{model.name}/{model.version}", connection)
    assert resolved.name == model.name
    assert resolved.version == model.version
    assert model.flavor in resolved.flavors
    assert "python_function" in resolved.flavors
    assert resolved.run_id
    assert resolved.model_id
    assert resolved.model_id.startswith("m-")
    assert resolved.has_input_example
    assert resolved.artifact_size_bytes > 0
    assert resolved.signature is not None
    assert resolved.signature.inputs
    assert resolved.signature.outputs


def test_resolve_tensor_signature_details(
    registered_models: dict[str, RegisteredModel], connection: RegistryConnection
) -> None:
    resolved = resolve_model(f"models:/{registered_models['pytorch'].name}/latest", connection)
    assert resolved.signature is not None
    assert [spec.model_dump() for spec in resolved.signature.inputs] == [
        {"name": "input_0", "dtype": "float32", "shape": [-1, 4], "kind": "tensor"}
    ]
    assert [spec.model_dump() for spec in resolved.signature.outputs] == [
        {"name": "output_0", "dtype": "float32", "shape": [-1, 3], "kind": "tensor"}
    ]


def test_cli_resolve_by_alias_prints_json(registered_models: dict[str, RegisteredModel], mlflow_server) -> None:
    result = run_cli("resolve", "models:/sk-iris@champion", "--tracking-uri", mlflow_server.uri)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["name"] == "sk-iris"
    assert document["version"] == registered_models["sklearn"].version
    assert document["aliases"] == ["champion"]
    assert set(document) >= {
        "run_id", "model_id", "source", "flavors", "signature", "has_input_example", "artifact_size_bytes"
    }  # fmt: skip


def test_alias_move_is_followed(mlflow_server: LocalMlflowServer, connection: RegistryConnection) -> None:
    mlflow.set_tracking_uri(mlflow_server.uri)
    first = log_pyfunc("alias-mover", factor=1.0)
    second = log_pyfunc("alias-mover", factor=3.0)
    client = MlflowClient(mlflow_server.uri)
    client.set_registered_model_alias("alias-mover", "champion", first.version)
    assert resolve_model("models:/alias-mover@champion", connection).version == first.version
    client.set_registered_model_alias("alias-mover", "champion", second.version)
    moved = resolve_model("models:/alias-mover@champion", connection)
    assert moved.version == second.version
    assert moved.aliases == ["champion"]
    assert resolve_model("models:/alias-mover/latest", connection).version == second.version


def test_download_writes_artifacts_and_lineage(
    registered_models: dict[str, RegisteredModel], mlflow_server: LocalMlflowServer, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    secret_uri = mlflow_server.uri.replace("http://", "http://alice:s3cret-pw@")
    result = run_cli("download", "models:/sk-iris@champion", "--out", str(out), "--tracking-uri", secret_uri)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    lineage_text = (out / "lineage.json").read_text()
    assert "s3cret" not in lineage_text
    lineage = Lineage.read(out)
    assert lineage.name == "sk-iris"
    assert lineage.version == registered_models["sklearn"].version
    assert lineage.aliases == ["champion"]
    assert lineage.tracking_uri == mlflow_server.uri
    assert lineage.model_id
    assert lineage.model_id.startswith("m-")
    assert lineage.content_digest == content_digest(out)
    assert (out / "MLmodel").is_file()
    assert lineage.file_count == len([p for p in out.rglob("*") if p.is_file()]) - 1
    # Only the output directory itself was created: no staging leftovers beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_download_model_loads_and_predicts(
    registered_models: dict[str, RegisteredModel], connection: RegistryConnection, tmp_path: Path
) -> None:
    import numpy as np

    model = registered_models["pyfunc"]
    download_model(f"models:/{model.name}/{model.version}", tmp_path / "m", connection)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert list(loaded.predict(np.ones((2, 3)))) == [6.0, 6.0]


# Every bad input gives its own error, naming the value and the fix, and writes nothing.


def _assert_nothing_written(tmp_path: Path) -> None:
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_lists_close_names(registered_models, connection, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        download_model("models:/sk-iriss/1", tmp_path / "out", connection)
    assert "'sk-iriss' not found" in str(caught.value)
    assert "did you mean: sk-iris" in str(caught.value)
    _assert_nothing_written(tmp_path)


def test_unknown_version_lists_existing(registered_models, connection, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        download_model("models:/sk-iris/99", tmp_path / "out", connection)
    assert "has no version 99" in str(caught.value)
    assert f"existing versions: {registered_models['sklearn'].version}" in str(caught.value)
    _assert_nothing_written(tmp_path)


def test_unknown_alias_lists_existing(registered_models, connection, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        download_model("models:/sk-iris@canary", tmp_path / "out", connection)
    text = str(caught.value)
    assert "has no alias 'canary'" in text
    assert f"champion→{registered_models['sklearn'].version}" in text
    assert "set_registered_model_alias" in text
    _assert_nothing_written(tmp_path)


def test_unreachable_registry_names_uri_and_timeout(tmp_path: Path) -> None:
    with refusing_socket() as unreachable:
        uri = f"http://127.0.0.1:{port_of(unreachable)}"
        connection = RegistryConnection.from_settings(uri, timeout_s=2)
        with pytest.raises(UnreachableError) as caught:
            download_model("models:/sk-iris/1", tmp_path / "out", connection)
    assert uri in str(caught.value)
    assert "2 s" in str(caught.value)
    assert "MLFLOW_TRACKING_URI" in str(caught.value)
    _assert_nothing_written(tmp_path)


def test_malformed_uri_via_cli_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("download", "models:/only-a-name", "--out", str(tmp_path / "out"))
    assert result.returncode == InvalidInputError.exit_code
    assert "malformed model URI 'models:/only-a-name'" in result.stderr
    assert "models:/NAME@ALIAS" in result.stderr
    _assert_nothing_written(tmp_path)


def test_non_empty_output_dir_is_refused_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    # An unreachable registry proves the check happens before talking to it.
    with refusing_socket() as unreachable:
        connection = RegistryConnection.from_settings(f"http://127.0.0.1:{port_of(unreachable)}", timeout_s=1)
        with pytest.raises(InvalidInputError, match="not empty"):
            download_model("models:/sk-iris/1", tmp_path, connection)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_symlink_leaving_the_model_is_refused(tmp_path: Path) -> None:
    # A registry on a local store accepts local sources, which can hold symlinks.
    store = tmp_path / "store"
    store.mkdir()
    tracking = f"sqlite:///{store / 'registry.db'}"
    source = tmp_path / "source-model"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: {}\n")
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("do not copy")
    (source / "weights.bin").symlink_to(secret)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    client.create_registered_model("linked")
    client.create_model_version("linked", source=str(source))
    out_parent = tmp_path / "outputs"
    out_parent.mkdir()
    with pytest.raises(InvalidInputError) as caught:
        download_model("models:/linked/1", out_parent / "out", RegistryConnection.from_settings(tracking))
    assert "weights.bin" in str(caught.value)
    assert "outside the model directory" in str(caught.value)
    _assert_nothing_written(out_parent)
