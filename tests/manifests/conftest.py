"""Render every overlay, the GPU Operator settings and every component combination once per run."""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support.manifests.kustomize import KustomizeUnavailableError, kustomize_command, render
from tests.support.manifests.objects import Obj
from tests.support.tools import skip_or_fail

MANIFESTS = REPO_ROOT / "manifests"
OVERLAYS = ("dev", "staging", "prod")
GPU_COMPONENTS = ("gpu-whole", "gpu-mig-1g10gb", "gpu-timeslice")
AUTOSCALERS = ("kpa", "hpa", "keda")
NAMESPACE = "creativeflow-serving"
# Everything an environment applies: its overlay plus the cluster's GPU Operator settings.
ENVIRONMENTS = tuple(f"overlays/{o}" for o in OVERLAYS) + tuple(
    f"{gpu}+{scaler}" for gpu, scaler in product(GPU_COMPONENTS, AUTOSCALERS)
)


@pytest.fixture(scope="session")
def kustomize_ready() -> None:
    try:
        kustomize_command()
    except KustomizeUnavailableError as error:
        skip_or_fail(str(error))


def _combination(directory: Path, gpu: str, scaler: str) -> Path:
    """A throwaway overlay: base plus one GPU-sharing and one autoscaling component."""
    directory.mkdir()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        # kustomize accepts only relative paths to bases and components.
        "resources": [os.path.relpath(MANIFESTS / "base", directory)],
        "components": [
            os.path.relpath(MANIFESTS / "components" / gpu, directory),
            os.path.relpath(MANIFESTS / "autoscaling" / scaler, directory),
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def renders(kustomize_ready: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    """Rendered objects by name: overlays/<env>, base, gpu-operator and <gpu>+<autoscaler>."""
    out = {f"overlays/{overlay}": render(MANIFESTS / "overlays" / overlay) for overlay in OVERLAYS}
    out["base"] = render(MANIFESTS / "base")
    out["gpu-operator"] = render(MANIFESTS / "gpu-operator")
    root = tmp_path_factory.mktemp("kustomize-combinations")
    for gpu, scaler in product(GPU_COMPONENTS, AUTOSCALERS):
        out[f"{gpu}+{scaler}"] = render(_combination(root / f"{gpu}+{scaler}", gpu, scaler))
    return out


@pytest.fixture(scope="session")
def environments(renders: dict[str, list[Obj]]) -> dict[str, list[Obj]]:
    return {name: renders[name] + renders["gpu-operator"] for name in ENVIRONMENTS}


@pytest.fixture(scope="session")
def all_objects(renders: dict[str, list[Obj]]) -> list[tuple[str, Obj]]:
    """Every rendered object with the name of its render, for schema checks."""
    return [(name, obj) for name, objects in renders.items() for obj in objects]
