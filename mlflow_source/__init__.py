"""Resolve and download models from the MLflow Model Registry, with lineage.

``download_model``, ``resolve_model`` and ``ResolvedModel`` are loaded on first use (PEP 562):
their modules import MLflow, which takes over a second and which the CLI commands that never
talk to the registry should not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow_source.connection import RegistryConnection
from mlflow_source.lineage import Lineage, content_digest
from mlflow_source.uri import ModelUri
from serving_core.lazy_names import load_on_first_use

if TYPE_CHECKING:
    from mlflow_source.download import download_model
    from mlflow_source.resolver import ResolvedModel, resolve_model

_LOADED_ON_FIRST_USE = {
    "download_model": "mlflow_source.download",
    "ResolvedModel": "mlflow_source.resolver",
    "resolve_model": "mlflow_source.resolver",
}

__all__ = [
    "Lineage",
    "ModelUri",
    "RegistryConnection",
    "ResolvedModel",
    "content_digest",
    "download_model",
    "resolve_model",
]

__getattr__ = load_on_first_use(__name__, _LOADED_ON_FIRST_USE, globals())
