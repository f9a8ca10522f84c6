"""Step: build and push the serving image, digest-pinned."""

from __future__ import annotations

import os
from pathlib import Path

from aiserving.steps.artifacts import ArtifactLike
from oci_images import build_image

REGISTRY_AUTH_ENV = "REGISTRY_AUTH_FILE"


def build_image_step(*, package: ArtifactLike, image: str, image_format: str, insecure_registry: bool) -> str:
    """Push the package as an image; return ``REF@sha256:…``.

    Credentials come from the docker config the pipeline mounts from a secret; a
    missing file (optional secret not created) means anonymous access.
    """
    auth_file = os.environ.get(REGISTRY_AUTH_ENV)
    registry_config = Path(auth_file) if auth_file and Path(auth_file).exists() else None
    result = build_image(
        Path(package.path),
        image,
        image_format=image_format,
        insecure=insecure_registry,
        registry_config=registry_config,
    )
    return result.pinned
