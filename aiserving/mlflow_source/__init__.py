"""Resolve and download models from the MLflow Model Registry, with lineage."""

from aiserving.mlflow_source.connection import RegistryConnection
from aiserving.mlflow_source.download import download_model
from aiserving.mlflow_source.lineage import Lineage, content_digest
from aiserving.mlflow_source.resolver import ResolvedModel, resolve_model
from aiserving.mlflow_source.uri import ModelUri

__all__ = [
    "Lineage",
    "ModelUri",
    "RegistryConnection",
    "ResolvedModel",
    "content_digest",
    "download_model",
    "resolve_model",
]
