"""The MLflow model a package is made from: a local directory or a ``models:/`` URI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.models import Model

from mlflow_source import Lineage, RegistryConnection, content_digest, download_model
from mlflow_source.lineage import LINEAGE_FILE
from mlflow_source.metadata import SignatureInfo, load_mlmodel, signature_info
from model_packaging.manifest import SourceRef
from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class SourceModel:
    """A local MLflow model directory, its MLmodel and its lineage."""

    path: Path
    mlmodel: Model
    reference: SourceRef

    @property
    def flavors(self) -> dict[str, dict[str, Any]]:
        """Flavor name → flavor configuration from MLmodel."""
        return dict(self.mlmodel.flavors)

    @property
    def signature(self) -> SignatureInfo | None:
        """The declared inputs and outputs, or ``None``."""
        return signature_info(self.mlmodel.signature)

    def input_example(self) -> Any:
        """The saved input example (ndarray, dict of arrays or DataFrame), or ``None``."""
        if self.mlmodel.saved_input_example_info is None:
            return None
        return self.mlmodel.load_input_example(str(self.path))


def is_registry_uri(model: str) -> bool:
    """Whether ``model`` names a registered model rather than a directory."""
    return model.startswith("models:/")


def open_local(directory: Path) -> SourceModel:
    """Open an MLflow model directory; its lineage comes from ``lineage.json`` when present.

    Raises:
        InvalidInputError: the directory holds no readable MLmodel.
    """
    directory = directory.absolute()
    if not directory.is_dir():
        raise InvalidInputError(
            f"model directory {directory} does not exist",
            hint="pass an MLflow model directory (the one holding MLmodel) or a models:/ URI",
        )
    mlmodel = load_mlmodel(directory)
    if (directory / LINEAGE_FILE).is_file():
        lineage = Lineage.read(directory)
        reference = SourceRef(
            location=lineage.requested_uri,
            lineage_digest=lineage.content_digest,
            registered_name=lineage.name,
            registered_version=lineage.version,
            run_id=lineage.run_id,
        )
    else:
        reference = SourceRef(location=str(directory), lineage_digest=content_digest(directory))
    return SourceModel(path=directory, mlmodel=mlmodel, reference=reference)


def open_source(model: str, scratch: Path, connection: RegistryConnection | None) -> SourceModel:
    """Open a local model directory, or download a registered model into ``scratch`` first.

    Raises:
        InvalidInputError: no MLmodel in the directory, or a ``models:/`` URI without a registry.
        NotFoundError: the registered model, version or alias does not exist.
    """
    if not is_registry_uri(model):
        return open_local(Path(model))
    if connection is None:
        raise InvalidInputError(
            f"{model} is a registry URI but no MLflow registry was given",
            hint="pass --tracking-uri or set MLFLOW_TRACKING_URI",
        )
    download_model(model, scratch / "mlflow-model", connection)
    return open_local(scratch / "mlflow-model")
