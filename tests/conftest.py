"""Shared real services, started once per test run and stopped after it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiserving.local.mlflow_server import LocalMlflowServer
from model_packaging.verify import RuntimeServices
from tests.support.mlflow_models import RegisteredModel, register_flavors

REPO_ROOT = Path(__file__).resolve().parents[1]


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
