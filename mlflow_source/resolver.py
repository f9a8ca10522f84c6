"""Resolve a ``models:/`` URI to one registered model version and describe it."""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.artifacts
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict

from mlflow_source.connection import RegistryConnection, redact_uri
from mlflow_source.metadata import SignatureInfo, json_safe_flavors, load_mlmodel, signature_info
from mlflow_source.uri import ModelUri
from serving_core.errors import AiServingError, NotFoundError, PermissionDeniedError, RemoteServiceError

_MAX_LISTED = 20


class ArtifactFile(BaseModel):
    """One file of a model's artifacts, relative to the artifact root."""

    model_config = ConfigDict(frozen=True)

    path: str
    size: int


class ResolvedModel(BaseModel):
    """A registered model version and what its MLmodel says about it."""

    model_config = ConfigDict(frozen=True)

    uri: str
    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    model_id: str | None
    source: str
    tracking_uri: str
    flavors: dict[str, dict[str, Any]]
    signature: SignatureInfo | None
    has_input_example: bool
    artifact_size_bytes: int
    artifact_uri: str


def translate_mlflow_error(error: MlflowException, what: str) -> AiServingError:
    """Map an MLflow error code to the product's error hierarchy."""
    code = error.error_code
    if code == "RESOURCE_DOES_NOT_EXIST":
        return NotFoundError(f"{what} does not exist")
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        return PermissionDeniedError(
            f"the MLflow registry refused access to {what} ({code})",
            hint="set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN",
        )
    retryable = code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")
    return RemoteServiceError(f"the MLflow registry failed on {what}: {error.message}", retryable=retryable)


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:_MAX_LISTED])
    return shown + (f" … ({len(values)} in all)" if len(values) > _MAX_LISTED else "")


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


class _Registry:
    """Registry look-ups with errors that list what does exist."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def _versions(self, name: str) -> list[ModelVersion]:
        try:
            found = self._client.search_model_versions(f"name='{_quote(name)}'")
        except MlflowException as error:
            raise translate_mlflow_error(error, f"versions of model {name!r}") from error
        return sorted(found, key=lambda version: int(version.version))

    def require_model(self, name: str) -> dict[str, str]:
        """Return the model's alias → version map, or fail listing close names."""
        try:
            model = self._client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise translate_mlflow_error(error, f"model {name!r}") from error
            known = [found.name for found in self._client.search_registered_models(max_results=1000)]
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
            hint = f"did you mean: {_listing(close)}?" if close else "no registered model has a similar name"
            raise NotFoundError(f"registered model {name!r} not found", hint=hint) from error
        return {alias: str(version) for alias, version in dict(model.aliases or {}).items()}

    def by_version(self, name: str, version: str) -> ModelVersion:
        try:
            return self._client.get_model_version(name, version)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise translate_mlflow_error(error, f"{name} version {version}") from error
            existing = [found.version for found in self._versions(name)]
            raise NotFoundError(
                f"model {name!r} has no version {version}",
                hint=f"existing versions: {_listing(existing) or 'none'}",
            ) from error

    def by_alias(self, name: str, alias: str, aliases: dict[str, str]) -> ModelVersion:
        if alias not in aliases:
            listed = [f"{known}→{version}" for known, version in sorted(aliases.items())]
            raise NotFoundError(
                f"model {name!r} has no alias {alias!r}",
                hint=f"existing aliases: {_listing(listed) or 'none'}; "
                f"set one with MlflowClient().set_registered_model_alias({name!r}, {alias!r}, VERSION)",
            )
        try:
            return self._client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            raise translate_mlflow_error(error, f"alias {alias!r} of {name}") from error

    def latest(self, name: str) -> ModelVersion:
        versions = self._versions(name)
        if not versions:
            raise NotFoundError(f"model {name!r} has no versions", hint="register a version first")
        return versions[-1]

    def download_uri(self, version: ModelVersion) -> str:
        try:
            return str(self._client.get_model_version_download_uri(version.name, version.version))
        except MlflowException as error:
            raise translate_mlflow_error(error, f"artifacts of {version.name} version {version.version}") from error


def artifact_repository(artifact_uri: str, connection: RegistryConnection) -> ArtifactRepository:
    """The MLflow artifact repository that serves ``artifact_uri``."""
    return get_artifact_repository(artifact_uri, tracking_uri=connection.tracking_uri)


def iter_artifact_files(repository: ArtifactRepository, path: str | None = None) -> Iterator[ArtifactFile]:
    """Walk the repository depth first, yielding files with their sizes."""
    for info in repository.list_artifacts(path):
        if info.is_dir:
            yield from iter_artifact_files(repository, info.path)
        else:
            yield ArtifactFile(path=info.path, size=int(info.file_size or 0))


def _client(connection: RegistryConnection) -> MlflowClient:
    return MlflowClient(tracking_uri=connection.tracking_uri, registry_uri=connection.registry_uri)


def find_version(uri: ModelUri, connection: RegistryConnection) -> tuple[ModelVersion, dict[str, str], str]:
    """Find the version a URI points to, its model's aliases and its download URI."""
    connection.check_reachable()
    registry = _Registry(_client(connection))
    aliases = registry.require_model(uri.name)
    if uri.alias is not None:
        version = registry.by_alias(uri.name, uri.alias, aliases)
    elif uri.version is not None:
        version = registry.by_version(uri.name, uri.version)
    else:
        version = registry.latest(uri.name)
    return version, aliases, registry.download_uri(version)


def resolve_model(uri: str | ModelUri, connection: RegistryConnection) -> ResolvedModel:
    """Resolve ``uri`` and read the version's MLmodel and artifact listing.

    Raises:
        InvalidInputError: the URI is malformed.
        NotFoundError: the model, version or alias does not exist.
        UnreachableError: the registry does not answer.
    """
    model_uri = uri if isinstance(uri, ModelUri) else ModelUri.parse(uri)
    version, aliases, download_uri = find_version(model_uri, connection)
    files = list(iter_artifact_files(artifact_repository(download_uri, connection)))
    with tempfile.TemporaryDirectory(prefix="aiserving-mlmodel-") as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{download_uri.rstrip('/')}/MLmodel",
            dst_path=scratch,
            tracking_uri=connection.tracking_uri,
        )
        mlmodel = load_mlmodel(Path(local))
    version_aliases = sorted(alias for alias, number in aliases.items() if number == str(version.version))
    return ResolvedModel(
        uri=str(model_uri),
        name=version.name,
        version=str(version.version),
        aliases=version_aliases,
        run_id=version.run_id or None,
        model_id=getattr(version, "model_id", None) or mlmodel.model_id,
        source=redact_uri(version.source or ""),
        tracking_uri=connection.redacted_tracking_uri,
        flavors=json_safe_flavors(mlmodel),
        signature=signature_info(mlmodel.signature),
        has_input_example=mlmodel.saved_input_example_info is not None,
        artifact_size_bytes=sum(file.size for file in files),
        artifact_uri=redact_uri(download_uri),
    )
