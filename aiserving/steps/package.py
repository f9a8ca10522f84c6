"""Step: package the resolved model for its serving runtime."""

from __future__ import annotations

from pathlib import Path

from aiserving.steps.artifacts import ArtifactLike
from model_packaging import package_model
from model_packaging.manifest import InstanceKind

_INSTANCE_KINDS: dict[str, InstanceKind] = {"gpu": "gpu", "cpu": "cpu"}


def package_step(
    *,
    model: ArtifactLike,
    runtime: str,
    package_name: str,
    max_batch_size: int,
    instance_kind: str,
    package: ArtifactLike,
) -> str:
    """Write the package into the artifact directory; return its digest."""
    from serving_core.errors import InvalidInputError

    if instance_kind not in _INSTANCE_KINDS:
        raise InvalidInputError(f"instance_kind {instance_kind!r} is not gpu or cpu", hint="use gpu or cpu")
    manifest = package_model(
        model.path,
        runtime,
        Path(package.path),
        name=package_name or None,
        max_batch_size=max_batch_size or None,
        instance_kind=_INSTANCE_KINDS[instance_kind],
    )
    package.metadata.update(
        {
            "runtime": manifest.runtime,
            "model_name": manifest.model_name,
            "model_format": manifest.model_format.name,
            "protocol_version": manifest.protocol_version,
            "package_digest": manifest.package_digest,
            "lineage_digest": manifest.source.lineage_digest,
        }
    )
    return manifest.package_digest
