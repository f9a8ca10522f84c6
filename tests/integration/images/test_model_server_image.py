"""The model-server image, built from images/model-server offline, serves a package in a container.

The container runs what KServe would run: the command and args of our ServingRuntime manifest, the
package mounted read-only at /mnt/models (where the storage initializer or a modelcar leaves it), the
manifest's securityContext (UID 1000, read-only root filesystem with /tmp writable, no capabilities).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import yaml
from mlflow.models import Model

from aiserving.local.mlflow_server import LocalMlflowServer
from mlflow_source import RegistryConnection
from model_packaging.manifest import PackageManifest
from model_packaging.package import package_model
from model_packaging.verify.samples import named_arrays, runtime_inputs
from model_packaging.verify.v2_client import v2_infer
from oci_images import build_image
from tests.conftest import REPO_ROOT
from tests.support.containers import ContainerTools, copy_tree
from tests.support.mlflow_models import RegisteredModel

# A cold cache builds the base and model-server images in the first test's setup (minutes); warm, that takes seconds.
pytestmark = pytest.mark.timeout(1200)
RUNTIME_MANIFEST = REPO_ROOT / "manifests" / "base" / "runtimes" / "mlflow-wrapper.yaml"


@pytest.fixture(scope="module")
def iris_package(
    mlflow_server: LocalMlflowServer,
    registered_models: dict[str, RegisteredModel],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The sk-iris champion packaged for the python runtime, readable by the container's user."""
    model = registered_models["sklearn"]
    out = tmp_path_factory.mktemp("iris") / "package"
    connection = RegistryConnection.from_settings(mlflow_server.uri)
    package_model(f"models:/{model.name}/{model.version}", "python", out, instance_kind="cpu", connection=connection)
    return copy_tree(out, out.with_name("readable"))


def runtime_container() -> dict[str, list[str]]:
    """command and args of the creativeflow-mlflow-wrapper ServingRuntime's container."""
    runtime = yaml.safe_load(RUNTIME_MANIFEST.read_text())
    [container] = runtime["spec"]["containers"]
    return {"command": container["command"], "args": container["args"]}


@pytest.fixture
def serve(container_tools: ContainerTools) -> Iterator[Callable[..., str]]:
    """Start a container like KServe starts the runtime's; yield a function that returns its HTTP base URL."""
    started: list[str] = []

    def start(image: str, *, model_name: str, package: Path | None, manifest_command: bool = True) -> str:
        options = [
            "--network=bridge",  # its own network, so port 8080 cannot clash with the host's
            "--publish=127.0.0.1::8080",
            "--read-only",
            "--tmpfs=/tmp",
            "--user=1000:1000",
            "--cap-drop=ALL",
        ]
        if package is not None:
            options.append(f"--volume={package}:/mnt/models:ro")
        arguments: list[str] = []
        if manifest_command:
            container = runtime_container()
            options.append(f"--entrypoint={json.dumps(container['command'])}")
            arguments = [arg.replace("{{.Name}}", model_name) for arg in container["args"]]
        container_id = container_tools.run("podman", "run", "--detach", *options, image, *arguments).stdout.strip()
        started.append(container_id)
        port = container_tools.run("podman", "port", container_id, "8080/tcp").stdout.strip().rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        wait_ready(container_tools, container_id, url)
        return url

    yield start
    for container_id in started:
        container_tools.run("podman", "rm", "--force", "--time=5", container_id, check=False)


@pytest.fixture
def pull_into_store(container_tools: ContainerTools) -> Iterator[Callable[[str], str]]:
    """Yield a function that pulls an image into the tests' store and returns its id; the images go at teardown.

    Request it before ``serve``, so that the containers are removed before their images.
    """
    pulled: list[str] = []

    def pull(source: str) -> str:
        image_id = container_tools.run("podman", "pull", source).stdout.split()[-1]
        pulled.append(image_id)
        return image_id

    yield pull
    for image_id in pulled:
        container_tools.run("podman", "rmi", image_id, check=False)


def wait_ready(tools: ContainerTools, container_id: str, url: str, timeout_s: float = 120) -> None:
    """Wait for V2 readiness; fail with the container's log when it exits or never gets ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        state = tools.run("podman", "inspect", "--format", "{{.State.Status}}", container_id).stdout.strip()
        if state != "running":
            break
        time.sleep(0.5)
    logs = tools.run("podman", "logs", container_id, check=False)
    pytest.fail(f"model server container not ready at {url}:\n{(logs.stdout + logs.stderr)[-3000:]}")


def predicts_like_mlflow(url: str, package: Path, model_name: str) -> None:
    """V2 infer of the package's input example equals MLflow's own prediction of it."""
    manifest = PackageManifest.read(package)
    example = Model.load(str(package / "MLmodel")).load_input_example(str(package))
    inputs = runtime_inputs(named_arrays(example, manifest), manifest)
    outputs = v2_infer(f"{url}/v2/models/{model_name}/infer", inputs)
    expected = mlflow.pyfunc.load_model(str(package)).predict(example)
    [received] = outputs.values()
    np.testing.assert_array_equal(np.ravel(received), np.ravel(expected))


def test_model_server_serves_a_mounted_package_with_the_runtime_manifests_command(
    model_server_image: str, iris_package: Path, serve: Callable[..., str]
) -> None:
    name = PackageManifest.read(iris_package).model_name
    url = serve(model_server_image, model_name=name, package=iris_package)
    predicts_like_mlflow(url, iris_package, name)
    assert f'model_name="{name}"' in requests.get(f"{url}/metrics", timeout=10).text


def test_predictor_image_built_on_the_model_server_serves_without_a_mount(
    container_tools: ContainerTools,
    model_server_image: str,
    iris_package: Path,
    pull_into_store: Callable[[str], str],
    serve: Callable[..., str],
    tmp_path: Path,
) -> None:
    base_layout = tmp_path / "model-server.oci"
    container_tools.run("podman", "push", model_server_image, f"oci:{base_layout}:base")
    target = tmp_path / "predictor.oci"
    build_image(
        iris_package, f"oci-layout:{target}:v1", image_format="predictor", base_image=f"oci-layout:{base_layout}:base"
    )
    image_id = pull_into_store(f"oci:{target}:v1")
    # The image's own entry point and CMD (/models) with no volume: the model is in the image. Without
    # --model-name the server calls it "model".
    url = serve(image_id, model_name="model", package=None, manifest_command=False)
    predicts_like_mlflow(url, iris_package, "model")
