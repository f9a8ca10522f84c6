"""Read a base image (selecting a platform from an index) and append layers to it.

The result follows crane append: the base config and layers are kept, each new layer's
diff_id and a history entry, labels and env are added, and the manifest is always OCI (Docker
gzip layers keep their bytes under the OCI media type).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from oci_images import media_types
from oci_images.digest_cache import CachedLayer
from oci_images.digests import sha256_digest
from oci_images.stores import ImageStore
from serving_core.errors import InvalidInputError, NotFoundError, RemoteServiceError, UnsupportedError

SCRATCH = "scratch"


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``linux/amd64`` or ``linux/arm64/v8``.

        Raises:
            InvalidInputError: not two or three non-empty parts.
        """
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidInputError(f"platform {text!r} is not OS/ARCH[/VARIANT]", hint="e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, candidate: dict[str, Any]) -> bool:
        """True when an index entry's ``platform`` is this one (variant only checked when asked)."""
        return (
            candidate.get("os") == self.os
            and candidate.get("architecture") == self.architecture
            and (self.variant is None or candidate.get("variant") == self.variant)
        )

    def __str__(self) -> str:
        return "/".join(filter(None, [self.os, self.architecture, self.variant]))


@dataclass(frozen=True)
class BaseImage:
    """A base image's config and layer descriptors (OCI media types), and where its blobs are."""

    name: str
    store: ImageStore | None
    digest: str | None
    config: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)


def scratch_base(platform: Platform) -> BaseImage:
    """An empty base: no layers, a config with only the platform."""
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return BaseImage(name=SCRATCH, store=None, digest=None, config=config)


def _load_json(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise RemoteServiceError(f"{what} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise RemoteServiceError(f"{what} is not a JSON object")
    return document


def load_base(store: ImageStore, reference: str | None, name: str, platform: Platform) -> BaseImage:
    """Fetch the base manifest (resolving an index to ``platform``) and its config.

    Raises:
        NotFoundError: the base image, or its platform in an index, does not exist.
        UnsupportedError: a manifest, config or layer media type we cannot append to.
        InvalidInputError: a single-platform base of another platform than asked.
    """
    try:
        body, media_type = store.read_manifest(reference)
    except NotFoundError as error:
        raise NotFoundError(
            f"base image {name} not found: {error.message}",
            hint="push the base image first, or pass --base-image with an existing image (or scratch)",
        ) from error
    document = _load_json(body, f"manifest of base image {name}")
    media_type = media_type if media_type and media_type != "application/json" else document.get("mediaType", "")
    if media_type in media_types.IMAGE_INDEXES:
        entries = [entry for entry in document.get("manifests", []) if platform.matches(entry.get("platform", {}))]
        if not entries:
            available = sorted(
                "/".join(filter(None, [p.get("os"), p.get("architecture"), p.get("variant")]))
                for p in (entry.get("platform", {}) for entry in document.get("manifests", []))
            )
            raise NotFoundError(
                f"base image {name} has no manifest for platform {platform}; it has {', '.join(available) or 'none'}",
                hint="pass --platform with one of those",
            )
        digest = entries[0]["digest"]
        body, media_type = store.read_manifest(digest)
        document = _load_json(body, f"manifest {digest} of base image {name}")
        media_type = media_type if media_type in media_types.IMAGE_MANIFESTS else document.get("mediaType", "")
    if media_type not in media_types.IMAGE_MANIFESTS:
        raise UnsupportedError(
            f"base image {name} has manifest media type {media_type!r}, which cannot be appended to",
            hint=f"use an image whose manifest is one of {', '.join(sorted(media_types.IMAGE_MANIFESTS))}",
        )
    manifest_digest = sha256_digest(body)
    config_descriptor = document.get("config", {})
    if config_descriptor.get("mediaType") not in media_types.CONFIGS:
        raise UnsupportedError(
            f"base image {name} has config media type {config_descriptor.get('mediaType')!r} (an artifact, "
            "not a runnable image)",
            hint="use a container image as the base",
        )
    config_body = b"".join(store.read_blob(config_descriptor["digest"]))
    if sha256_digest(config_body) != config_descriptor["digest"]:
        raise RemoteServiceError(f"the config of base image {name} does not match its digest")
    config = _load_json(config_body, f"config of base image {name}")
    if (config.get("os"), config.get("architecture")) != (platform.os, platform.architecture):
        raise InvalidInputError(
            f"base image {name} is {config.get('os')}/{config.get('architecture')}, "
            f"but platform {platform} was asked for",
            hint="pass --platform matching the base image, or a base image built for that platform",
        )
    layers = []
    for layer in document.get("layers", []):
        oci_type = media_types.LAYER_TO_OCI.get(layer.get("mediaType", ""))
        if oci_type is None:
            raise UnsupportedError(
                f"base image {name} has a layer of media type {layer.get('mediaType')!r}",
                hint="use a base whose layers are plain tar, gzip or zstd tar layers",
            )
        layers.append({"mediaType": oci_type, "digest": layer["digest"], "size": layer["size"]})
    return BaseImage(name=name, store=store, digest=manifest_digest, config=config, layers=layers)


def canonical_json(document: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys: the same document always gives the same digest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class AppendedImage:
    """The new config and manifest, serialized."""

    config: bytes
    manifest: bytes
    layers: list[dict[str, Any]]

    @property
    def config_digest(self) -> str:
        """Digest of the config blob."""
        return sha256_digest(self.config)

    @property
    def manifest_digest(self) -> str:
        """Digest of the manifest."""
        return sha256_digest(self.manifest)


@dataclass(frozen=True)
class NewLayer:
    """A layer to append: the blob, its history entry, and the annotations of its descriptor."""

    blob: CachedLayer
    created_by: str
    annotations: dict[str, str] = field(default_factory=dict)


def append_layers(
    base: BaseImage,
    layers: list[NewLayer],
    *,
    labels: dict[str, str],
    env: dict[str, str],
    cmd: list[str] | None = None,
    created: str,
) -> AppendedImage:
    """Append ``layers`` to ``base`` with labels and env added to the config (and ``Cmd`` when given).

    Each layer gets a ``history`` entry (its ``created_by`` says what it holds) and its descriptor
    carries its annotations, so both the config and the manifest tell which files a layer holds.
    """
    config = copy.deepcopy(base.config)
    config["created"] = created
    runtime = config.setdefault("config", {}) or {}
    config["config"] = runtime
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    if env:
        kept = [item for item in runtime.get("Env") or [] if item.split("=", 1)[0] not in env]
        runtime["Env"] = kept + [f"{key}={value}" for key, value in env.items()]
    if cmd is not None:
        runtime["Cmd"] = cmd
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), *(layer.blob.diff_id for layer in layers)]
    config["history"] = [
        *config.get("history", []),
        *({"created": created, "created_by": layer.created_by} for layer in layers),
    ]
    config_body = canonical_json(config)

    descriptors = [
        {
            "mediaType": layer.blob.media_type,
            "digest": layer.blob.digest,
            "size": layer.blob.size,
            **({"annotations": layer.annotations} if layer.annotations else {}),
        }
        for layer in layers
    ]
    all_layers = [*base.layers, *descriptors]
    annotations = {"org.opencontainers.image.created": created}
    if base.digest is not None:
        annotations["org.opencontainers.image.base.name"] = base.name
        annotations["org.opencontainers.image.base.digest"] = base.digest
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_types.OCI_MANIFEST,
        "config": {"mediaType": media_types.OCI_CONFIG, "digest": sha256_digest(config_body), "size": len(config_body)},
        "layers": all_layers,
        "annotations": annotations,
    }
    return AppendedImage(config=config_body, manifest=canonical_json(manifest), layers=all_layers)
