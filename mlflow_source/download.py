"""Download a model version's artifacts safely, then record its lineage.

Nothing is written to the output directory until every artifact path has
been checked; files land in a staging directory (:mod:`serving_core.output_dirs`)
that is renamed into place only when the download is complete.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path, PurePosixPath

from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

from mlflow_source.connection import RegistryConnection, redact_uri
from mlflow_source.lineage import LINEAGE_FILE, Lineage, content_digest, content_files
from mlflow_source.metadata import load_mlmodel
from mlflow_source.resolver import ArtifactFile, artifact_repository, find_version, iter_artifact_files
from mlflow_source.uri import ModelUri
from serving_core.errors import InvalidInputError
from serving_core.output_dirs import check_output_dir, staged_output


def check_artifact_path(path: str) -> PurePosixPath:
    """Refuse artifact paths that could land outside the output directory.

    Raises:
        InvalidInputError: the path is absolute, empty or contains ``..``.
    """
    candidate = PurePosixPath(path.replace("\\", "/"))
    if not path or candidate.is_absolute() or path.startswith(("/", "\\")) or ":" in candidate.parts[0]:
        raise InvalidInputError(
            f"artifact path {path!r} is absolute; refusing to download it",
            hint="re-log the model so that all artifact paths are relative to the model root",
        )
    if ".." in candidate.parts:
        raise InvalidInputError(
            f"artifact path {path!r} contains '..'; refusing to download it",
            hint="re-log the model without parent-directory components in artifact paths",
        )
    return candidate


def check_local_symlinks(repository: ArtifactRepository, files: list[ArtifactFile]) -> None:
    """For artifacts on a local file system, refuse symlinks that leave the model.

    Raises:
        InvalidInputError: a listed file resolves outside the artifact root.
    """
    if not isinstance(repository, LocalArtifactRepository):
        return
    root = Path(repository.artifact_dir).resolve()
    for file in files:
        target = (Path(repository.artifact_dir) / file.path).resolve()
        if not target.is_relative_to(root):
            raise InvalidInputError(
                f"artifact {file.path!r} is a symlink to {target}, outside the model directory {root}",
                hint="replace the symlink with the file itself before logging the model",
            )


def _refuse_escaping_links(staging: Path) -> None:
    for path in staging.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(staging.resolve()):
            raise InvalidInputError(
                f"downloaded artifact {path.relative_to(staging)} is a symlink leaving the model directory",
                hint="replace the symlink with the file itself before logging the model",
            )


def download_model(uri: str | ModelUri, out: Path, connection: RegistryConnection) -> Lineage:
    """Download the model ``uri`` points to into ``out`` and write ``lineage.json``.

    Raises:
        InvalidInputError: malformed URI, non-empty ``out`` or unsafe artifact paths.
        NotFoundError: the model, version or alias does not exist.
        UnreachableError: the registry does not answer.
    """
    model_uri = uri if isinstance(uri, ModelUri) else ModelUri.parse(uri)
    out = out.absolute()
    check_output_dir(out)
    version, aliases, download_uri = find_version(model_uri, connection)
    repository = artifact_repository(download_uri, connection)
    files = list(iter_artifact_files(repository))
    for file in files:
        check_artifact_path(file.path)
    check_local_symlinks(repository, files)

    with staged_output(out) as staging:
        for file in files:
            # One file at a time: MLflow streams each to disk in chunks.
            repository.download_artifacts(file.path, dst_path=str(staging))  # type: ignore[no-untyped-call]
        _refuse_escaping_links(staging)
        stored = content_files(staging)
        lineage = Lineage(
            name=version.name,
            version=str(version.version),
            aliases=sorted(alias for alias, number in aliases.items() if number == str(version.version)),
            requested_uri=str(model_uri),
            run_id=version.run_id or None,
            model_id=getattr(version, "model_id", None) or load_mlmodel(staging).model_id,
            source=redact_uri(version.source or ""),
            tracking_uri=connection.redacted_tracking_uri,
            resolved_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            content_digest=content_digest(staging),
            file_count=len(stored),
            total_bytes=sum(path.stat().st_size for path in stored),
        )
        (staging / LINEAGE_FILE).write_text(lineage.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return lineage
