"""The committed pipeline YAML is exactly what the code compiles, and self-explaining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import components

from aiserving.pipeline_ops.catalog import COMPILED_DIR, pipelines
from aiserving.pipeline_ops.compile import compile_all, pipeline_inputs
from components.image import COMPONENTS_IMAGE

PIPELINE_NAMES = sorted(pipelines())


def _without_versions(path: Path) -> list[Any]:
    documents = list(yaml.safe_load_all(path.read_text()))
    documents[0].pop("sdkVersion", None)
    for executor in documents[0].get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container", {})
        # The kfp version appears in the generated launcher command of each executor.
        container["command"] = [part for part in container.get("command", []) if "kfp==" not in part]
    return documents


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compiled")
    compile_all(out)
    return out


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_committed_yaml_is_current(name: str, fresh: Path) -> None:
    committed = COMPILED_DIR / f"{name}.yaml"
    assert committed.is_file(), "run `aiserving compile` and commit pipelines/compiled/"
    assert _without_versions(committed) == _without_versions(fresh / f"{name}.yaml"), (
        f"{committed} is stale: run `aiserving compile` and commit the result"
    )


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_every_input_has_a_description(name: str) -> None:
    inputs = pipeline_inputs(COMPILED_DIR / f"{name}.yaml")
    assert inputs
    missing = [key for key, definition in inputs.items() if not definition.get("description")]
    assert missing == []


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_loads_back_with_kfp_and_runs_in_our_image(name: str) -> None:
    loaded = components.load_component_from_file(str(COMPILED_DIR / f"{name}.yaml"))
    assert loaded.name == name
    spec = next(yaml.safe_load_all((COMPILED_DIR / f"{name}.yaml").read_text()))
    executors = spec["deploymentSpec"]["executors"]
    assert {executor["container"]["image"] for executor in executors.values()} == {COMPONENTS_IMAGE}


def test_components_image_override(tmp_path: Path) -> None:
    compile_all(tmp_path, components_image="registry.example.com/aiserving-components@sha256:" + "a" * 64)
    spec = next(yaml.safe_load_all((tmp_path / "deploy-model.yaml").read_text()))
    images = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example.com/aiserving-components@sha256:" + "a" * 64}
    assert components.load_component_from_file(str(tmp_path / "deploy-model.yaml")).name == "deploy-model"


def test_credentials_come_from_secrets_not_parameters() -> None:
    documents = list(yaml.safe_load_all((COMPILED_DIR / "deploy-model.yaml").read_text()))
    inputs = pipeline_inputs(COMPILED_DIR / "deploy-model.yaml")
    assert not [name for name in inputs if "password" in name or "token" in name]
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-resolve-model"]["secretAsEnv"][0]["secretNameParameter"] == {
        "componentInputParameter": "pipelinechannel--mlflow_secret"
    }
    assert executors["exec-build-image"]["secretAsVolume"][0]["mountPath"] == "/var/run/secrets/aiserving/registry"


def test_deploy_model_guards_with_an_exit_handler() -> None:
    spec = next(yaml.safe_load_all((COMPILED_DIR / "deploy-model.yaml").read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    exit_task = tasks["rollback-on-failure"]
    assert exit_task["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert exit_task["dependentTasks"] == ["exit-handler-1"]
    assert exit_task["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}


@pytest.mark.parametrize("name", PIPELINE_NAMES)
def test_steps_that_touch_live_state_are_never_cached(name: str) -> None:
    spec = next(yaml.safe_load_all((COMPILED_DIR / f"{name}.yaml").read_text()))
    live = (
        "resolve-model",
        "check-alias-change",
        "build-image",
        "deploy-inference-service",
        "canary",
        "rollback",
        "progressive-rollout",
    )
    tasks = [spec["root"]["dag"]["tasks"]] + [
        component.get("dag", {}).get("tasks", {}) for component in spec["components"].values()
    ]
    for group in tasks:
        for task_name, task in group.items():
            if any(part in task_name for part in live):
                assert task["cachingOptions"] == {}, task_name


def test_docs_parameter_reference_is_current() -> None:
    from aiserving.pipeline_ops.reference_docs import BEGIN, END, parameter_reference

    text = (COMPILED_DIR.parents[1] / "docs" / "pipelines.md").read_text()
    generated = text.partition(BEGIN)[2].partition(END)[0].strip()
    assert generated == parameter_reference().strip(), "run `aiserving compile --docs docs/pipelines.md`"
