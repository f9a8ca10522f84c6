"""Shared real services, started once per test run and stopped after it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiserving.local.mlflow_server import LocalMlflowServer
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
