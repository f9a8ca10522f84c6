"""deploy-model through KFP's own DockerRunner: every task in a container of the built components image.

The image is images/components built offline (tests/support/containers.py) and tagged with exactly the
name the compiled pipeline gives every task (components/image.py), so DockerRunner finds it locally and
pulls nothing. podman serves the Docker API (tests/support/podman_api.py). The containers share the
host's network, so the tasks reach the real MLflow server, docker-registry and test Kubernetes API server
on 127.0.0.1; the kubeconfig is mounted read-only. The same run through SubprocessRunner (what
tests/pipelines/test_local_runs.py runs) must give the same outputs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.local.registry import LocalRegistry
from aiserving.pipeline_ops.catalog import compiled_path, pipeline_function
from aiserving.pipeline_ops.local_run import run_locally, scoped_environment
from components.image import COMPONENTS_IMAGE
from inference_services.isvc_api import InferenceServiceApi
from tests.pipelines.test_local_runs import _deploy_arguments, kube, local_registry, pipeline_env
from tests.support.containers import ContainerTools
from tests.support.kube_api.fixtures import KubeTestCluster, fresh_namespace
from tests.support.mlflow_models import RegisteredModel
from tests.support.podman_api import DockerApiShim, PodmanService

__all__ = ["kube", "local_registry", "pipeline_env"]  # module fixtures shared with test_local_runs

# The components image is built in the background from the start of the run (tests/conftest.py); these tests
# run last and wait for it: cold, the build takes minutes; warm, seconds.
pytestmark = [pytest.mark.timeout(2400), pytest.mark.cluster_path]
KUBECONFIG_IN_CONTAINER = "/etc/aiserving/kubeconfig"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture(scope="module")
def docker_api(container_tools: ContainerTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerApiShim]:
    workdir = tmp_path_factory.mktemp("podman-api")
    with PodmanService(container_tools, workdir) as service, DockerApiShim(service, workdir) as shim:
        yield shim


@contextmanager
def writable_by_the_task_user() -> Iterator[None]:
    """Task containers run as the image's UID 1000: directories KFP creates on the host must be writable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def task_outputs(pipeline_root: Path, namespace: str) -> dict[str, dict[str, Any]]:
    """Each task's output parameters, the run's namespace and the digests (the packages' lineage holds
    the time they were resolved) written as placeholders."""
    outputs = {}
    for executor_output in pipeline_root.rglob("executor_output.json"):
        task = executor_output.parent.name
        parameters = json.dumps(json.loads(executor_output.read_text()).get("parameterValues", {}), sort_keys=True)
        outputs[task] = json.loads(DIGEST.sub("sha256:…", parameters).replace(namespace, "NAMESPACE"))
    return outputs


def test_deploy_model_runs_every_task_in_the_components_image(
    components_image: str,
    docker_api: DockerApiShim,
    container_tools: ContainerTools,
    mlflow_server: LocalMlflowServer,
    registered_models: dict[str, RegisteredModel],
    local_registry: LocalRegistry,
    kube: KubeTestCluster,
    pipeline_env: Path,
) -> None:
    from docker.types import Mount
    from kfp import local

    compiled = next(yaml.safe_load_all(compiled_path("deploy-model").read_text()))  # then the platform spec
    images = {executor["container"]["image"] for executor in compiled["deploymentSpec"]["executors"].values()}
    assert images == {COMPONENTS_IMAGE}

    name = "sk-iris"
    docker_namespace, subprocess_namespace = fresh_namespace(kube), fresh_namespace(kube)
    model_uri = {"model_uri": "models:/sk-iris@champion"}
    docker_root = pipeline_env / "docker"
    docker_root.mkdir(parents=True)
    docker_root.chmod(0o777)
    runner = local.DockerRunner(
        environment={
            "KUBECONFIG": KUBECONFIG_IN_CONTAINER,
            "AISERVING_MODELCAR_BASE": os.environ["AISERVING_MODELCAR_BASE"],
        },
        mounts=[Mount(KUBECONFIG_IN_CONTAINER, str(kube.kubeconfig), type="bind", read_only=True)],
        network_mode="host",
    )
    with scoped_environment({"DOCKER_HOST": docker_api.docker_host}), writable_by_the_task_user():
        local.init(runner=runner, pipeline_root=str(docker_root), raise_on_error=True)
        pipeline_function("deploy-model")(
            **model_uri, **_deploy_arguments(mlflow_server, local_registry, docker_namespace, name)
        )

    ran = task_outputs(docker_root, docker_namespace)
    assert len(docker_api.created) == len(ran) >= 6
    for container in docker_api.created:
        image = container_tools.run("podman", "container", "inspect", "--format", "{{.Image}}", container)
        assert image.stdout.strip() == components_image

    subprocess_root = pipeline_env / "subprocess"
    run_locally(
        "deploy-model",
        {**model_uri, **_deploy_arguments(mlflow_server, local_registry, subprocess_namespace, name)},
        subprocess_root,
    )
    assert ran == task_outputs(subprocess_root, subprocess_namespace)

    in_docker = InferenceServiceApi(kube.clients(), docker_namespace).get(name)
    in_subprocess = InferenceServiceApi(kube.clients(), subprocess_namespace).get(name)
    assert DIGEST.sub("sha256:…", json.dumps(in_docker["spec"], sort_keys=True)) == DIGEST.sub(
        "sha256:…", json.dumps(in_subprocess["spec"], sort_keys=True)
    )
    assert {c["type"]: c["status"] for c in in_docker["status"]["conditions"]}["Ready"] == "True"
