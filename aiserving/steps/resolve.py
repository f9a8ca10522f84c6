"""Step: resolve a registered model and download it with its lineage."""

from __future__ import annotations

from pathlib import Path

from aiserving.steps.artifacts import ArtifactLike
from mlflow_source import RegistryConnection, download_model


def resolve_step(*, model_uri: str, tracking_uri: str, registry_uri: str, model: ArtifactLike) -> str:
    """Download the model ``model_uri`` points to into the artifact; return its version.

    The artifact's metadata carries the lineage (name, version, run, digest), so
    the Kubeflow UI shows where the model came from.
    """
    connection = RegistryConnection.from_settings(tracking_uri or None, registry_uri or None)
    lineage = download_model(model_uri, Path(model.path), connection)
    model.metadata.update(
        {
            "model_name": lineage.name,
            "model_version": lineage.version,
            "aliases": lineage.aliases,
            "run_id": lineage.run_id or "",
            "model_id": lineage.model_id or "",
            "content_digest": lineage.content_digest,
            "tracking_uri": lineage.tracking_uri,
        }
    )
    return lineage.version
