"""``build_image``: package directory → modelcar or predictor image, pushed and digest-pinned.

Order of work, so that a failure never leaves a tag on an incomplete image:
validate every input (nothing written yet) → read the base → plan the model layers
(:mod:`oci_images.layering`) → push them, skipping what the target has or can mount
(:mod:`oci_images.push`) → bring the base layers over (HEAD, then cross-repository mount,
then copy) → config → check every blob is there → manifest last. A dry run does the
reading, hashing and HEADs and stops before the first write.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from oci_images import media_types
from oci_images.credentials import load_credentials
from oci_images.digest_cache import DigestCache, default_cache_dir
from oci_images.digests import Compression, check_compression
from oci_images.image import (
    SCRATCH,
    AppendedImage,
    BaseImage,
    NewLayer,
    Platform,
    append_layers,
    load_base,
    scratch_base,
)
from oci_images.labels import package_labels
from oci_images.layer import LayerPlan, scan_tree
from oci_images.layering import DEFAULT_THRESHOLD, LayerMode, layer_settings, plan_layers
from oci_images.oci_layout import OciLayoutStore
from oci_images.progress import Progress
from oci_images.push import CONCURRENCY, LayerPusher, PushedLayer
from oci_images.reference import ImageReference, LayoutReference, RegistryReference, parse_reference
from oci_images.registry import DEFAULT_TIMEOUT_S, RegistryClient
from oci_images.stores import ImageStore, RegistryStore
from serving_core.errors import ConflictError, InvalidInputError

_LOG = logging.getLogger(__name__)
ImageFormat = Literal["modelcar", "predictor"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("modelcar", "predictor")
MODELCAR_BASE_ENV = "AISERVING_MODELCAR_BASE"
MODEL_SERVER_IMAGE_ENV = "AISERVING_MODEL_SERVER_IMAGE"
# busybox has the sh, ln, ls and sleep that KServe's modelcar sidecar runs.
DEFAULT_MODELCAR_BASE = "docker.io/library/busybox:1.37.0"
MODEL_DIR = "/models"
MODEL_DIR_ENV = "AISERVING_MODEL_DIR"
REGISTRY_ENV = "AISERVING_REGISTRY"


@dataclass(frozen=True)
class BaseLayerStatus:
    """A base layer and how it got (or would get) to the target: present, mounted, copied, would copy."""

    digest: str
    size: int
    outcome: str


@dataclass(frozen=True)
class BuildResult:
    """What was pushed, or in a dry run what would be: the digests are exact either way."""

    reference: str
    digest: str
    config_digest: str
    layers: tuple[PushedLayer, ...]
    base: str
    base_digest: str | None
    base_layers: tuple[BaseLayerStatus, ...] = field(default_factory=tuple)
    dry_run: bool = False

    @property
    def pinned(self) -> str:
        """``REGISTRY/REPO@sha256:…`` (the tag dropped, as skopeo and KServe want): what a deployment uses."""
        return str(parse_reference(self.reference).with_digest(self.digest))

    @property
    def bytes_sent(self) -> int:
        """Model-layer blob bytes uploaded (or to upload in a dry run)."""
        return sum(layer.sent_bytes for layer in self.layers)

    @property
    def bytes_skipped(self) -> int:
        """Model-layer blob bytes not uploaded: the target had them or mounted them."""
        return sum(layer.layer.size for layer in self.layers if layer.skipped)

    @property
    def reused(self) -> bool:
        """True when no model layer had to be uploaded."""
        return all(layer.skipped for layer in self.layers)


def _created_timestamp(environ: dict[str, str] | os._Environ[str]) -> str:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds convention), else the Unix epoch."""
    epoch_text = environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        epoch = int(epoch_text)
    except ValueError as error:
        raise InvalidInputError(
            f"SOURCE_DATE_EPOCH={epoch_text!r} is not an integer", hint="set seconds since 1970"
        ) from error
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_base(image_format: ImageFormat) -> str:
    if image_format == "modelcar":
        return os.environ.get(MODELCAR_BASE_ENV) or DEFAULT_MODELCAR_BASE
    base = os.environ.get(MODEL_SERVER_IMAGE_ENV)
    if not base:
        raise InvalidInputError(
            "a predictor image needs the model-server base image",
            hint=f"pass --base-image REF (our images/model-server build) or set {MODEL_SERVER_IMAGE_ENV}",
        )
    return base


class _Stores:
    """One registry client per host, so blobs on the same registry can be mounted across repositories."""

    def __init__(
        self,
        *,
        push_host: str | None,
        registry_config: Path | None,
        insecure: bool,
        ca_file: Path | None,
        timeout_s: float,
    ) -> None:
        self.credentials = load_credentials(registry_config, push_host=push_host)
        self.insecure = insecure
        self.ca_file = ca_file
        self.timeout_s = timeout_s
        self.clients: dict[str, RegistryClient] = {}

    def open(self, reference: ImageReference, actions: str) -> ImageStore:
        """A store for the reference; registry stores on one host share a client (and its token)."""
        if isinstance(reference, LayoutReference):
            return OciLayoutStore(reference.path)
        client = self.clients.get(reference.registry)
        if client is None:
            client = RegistryClient(
                reference.registry,
                api_host=reference.api_host,
                credentials=self.credentials.lookup(reference.registry),
                insecure=self.insecure,
                ca_file=self.ca_file,
                timeout_s=self.timeout_s,
            )
            self.clients[reference.registry] = client
        client.need_scope(reference.repository, actions)
        return RegistryStore(client, reference)

    def close(self) -> None:
        """Close every registry client."""
        for client in self.clients.values():
            client.close()


def default_image(package_dir: Path, environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Where an image goes when no ``--image`` is given.

    ``$AISERVING_REGISTRY/<model name>:v<version>`` when a registry is configured, else (embedded,
    registry-less use) an OCI layout next to the package: ``oci-layout:<PACKAGE_DIR>.oci:v<version>``.
    Name and version come from ``lineage.json`` (else the directory name and ``latest``).
    """
    environ = os.environ if environ is None else environ
    labels = package_labels(package_dir, image_format="modelcar")
    version = labels.get("ai.creativeflow.model.version")
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", f"v{version}") if version else "latest"
    registry = environ.get(REGISTRY_ENV, "").rstrip("/")
    if registry:
        name = labels.get("ai.creativeflow.model.name") or package_dir.absolute().name
        repository = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
        return f"{registry}/{repository}:{tag}"
    return f"oci-layout:{package_dir.absolute()}.oci:{tag}"


def build_image(
    package_dir: Path,
    image: str | None = None,
    *,
    image_format: str = "modelcar",
    base_image: str | None = None,
    platform: str = "linux/amd64",
    insecure: bool = False,
    compression: str = "none",
    registry_config: Path | None = None,
    ca_file: Path | None = None,
    cache_dir: Path | None = None,
    show_progress: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    layers: str | None = None,
    layer_threshold: str | int | None = None,
    mount_from: tuple[str, ...] = (),
    dry_run: bool = False,
) -> BuildResult:
    """Build a modelcar or predictor image from ``package_dir`` and push it to ``image``.

    Args:
        package_dir: the package; it lands under ``/models`` in the image.
        image: ``REGISTRY/REPO:TAG`` or ``oci-layout:PATH[:TAG]``; default: :func:`default_image`.
        image_format: ``modelcar`` (default base busybox) or ``predictor`` (base: our model server).
        base_image: the image to append to; ``scratch`` for none.
        platform: ``OS/ARCH[/VARIANT]`` selected from a base image index.
        insecure: talk plain http to registries.
        compression: ``none`` (fastest; KServe and buildah read plain tar layers) or ``gzip``.
        registry_config: a docker config.json, or a directory with a mounted dockerconfigjson secret.
        ca_file: PEM CA bundle for registries with private certificates.
        cache_dir: where the layer digest cache lives (default: ``$AISERVING_CACHE_DIR`` or ~/.cache).
        show_progress: draw a progress bar (default: when stderr is a terminal).
        timeout_s: seconds to wait for each registry response to start.
        layers: ``per-file`` (a layer per file of at least ``layer_threshold`` bytes, the rest in one
            shared layer) or ``single``; default ``$AISERVING_IMAGE_LAYERS``, else ``per-file``.
        layer_threshold: bytes, or a size such as ``32M``; default ``$AISERVING_LAYER_THRESHOLD``,
            else 32 MiB.
        mount_from: repositories on the target registry (``models/base-llm``) whose blobs may be
            shared: layers found there are mounted instead of uploaded.
        dry_run: read, hash and HEAD only; report what would be sent and write nothing to the target.

    Returns:
        The pushed reference and its manifest digest (in a dry run: the digest it would have).

    Raises:
        InvalidInputError: a bad argument or package; nothing was written.
        NotFoundError: the base image does not exist.
        PermissionDeniedError: the registry refused the credentials (or their absence).
        UnreachableError: a registry cannot be reached.
        UnsupportedError: the base image cannot be appended to.
    """
    if image_format not in IMAGE_FORMATS:
        raise InvalidInputError(f"image format {image_format!r} is not supported", hint="use modelcar or predictor")
    checked_format: ImageFormat = "modelcar" if image_format == "modelcar" else "predictor"
    layer_compression = check_compression(compression)
    layer_mode, threshold = layer_settings(layers, layer_threshold)
    image = image or default_image(package_dir)
    target = parse_reference(image)
    if target.digest is not None:
        raise InvalidInputError(
            f"image {image} names a digest; a new image's digest is only known after the build",
            hint="push to a tag (REGISTRY/REPO:TAG) and use the printed REF@sha256:...",
        )
    chosen_platform = Platform.parse(platform)
    base_text = base_image or _default_base(checked_format)
    if base_text != SCRATCH:
        parse_reference(base_text)
    _check_mount_sources(target, mount_from)
    plan = scan_tree(package_dir, prefix="models")
    _created_timestamp(os.environ)
    labels = package_labels(package_dir, image_format=checked_format)
    if isinstance(target, LayoutReference):
        OciLayoutStore(target.path).check_writable()
    if ca_file is not None and not ca_file.is_file():
        raise InvalidInputError(f"CA file {ca_file} does not exist", hint="pass the PEM bundle of the registry's CA")
    # The model server's entrypoint is `aiserving serve`; its CMD names the model directory.
    predictor = checked_format == "predictor"
    env = {MODEL_DIR_ENV: MODEL_DIR} if predictor else {}

    return push_directory_image(
        plan,
        target,
        base_image=base_text,
        platform=chosen_platform,
        compression=layer_compression,
        labels=labels,
        env=env,
        cmd=[MODEL_DIR] if predictor else None,
        created_by=f"aiserving build-image --format {checked_format}: COPY package {MODEL_DIR}",
        access=RegistryAccess(insecure, ca_file, registry_config, timeout_s),
        cache_dir=cache_dir,
        show_progress=show_progress,
        layer_mode=layer_mode,
        layer_threshold=threshold,
        mount_from=mount_from,
        dry_run=dry_run,
    )


def _check_mount_sources(target: ImageReference, mount_from: tuple[str, ...]) -> None:
    """Mount sources are repository names on the target registry; a layout target cannot mount."""
    if not mount_from:
        return
    if not isinstance(target, RegistryReference):
        raise InvalidInputError(
            f"--mount-from {mount_from[0]} needs a registry target, not {target}",
            hint="drop --mount-from when writing an OCI layout",
        )
    for name in mount_from:
        if "/" in name and name.split("/", 1)[0] == target.registry:
            raise InvalidInputError(
                f"--mount-from {name} names the registry; give the repository only",
                hint=f"use {name.split('/', 1)[1]} (mounts only work within {target.registry})",
            )
        parse_reference(f"{target.registry}/{name}")


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach registries: plain http or TLS with a CA, which credentials file, how long to wait."""

    insecure: bool = False
    ca_file: Path | None = None
    registry_config: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


def push_directory_image(
    plan: LayerPlan,
    target: ImageReference,
    *,
    base_image: str,
    platform: Platform,
    compression: Compression = "none",
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    cmd: list[str] | None = None,
    created_by: str = "aiserving: COPY directory",
    access: RegistryAccess | None = None,
    cache_dir: Path | None = None,
    show_progress: bool | None = None,
    layer_mode: LayerMode = "per-file",
    layer_threshold: int = DEFAULT_THRESHOLD,
    mount_from: tuple[str, ...] = (),
    dry_run: bool = False,
) -> BuildResult:
    """Append the scanned directory as planned layers to ``base_image`` and push the image to ``target``.

    The lower-level half of :func:`build_image`, also used to build a rootfs image (such as the
    busybox modelcar base) from a directory with ``prefix=""``.

    Raises:
        NotFoundError: the base image does not exist.
        PermissionDeniedError: the registry refused the credentials (or their absence).
        UnreachableError: a registry cannot be reached.
        UnsupportedError: the base image cannot be appended to.
        ConflictError: a file changed while it was read, or a blob vanished before the manifest.
    """
    access = access or RegistryAccess()
    labels = dict(labels or {})
    created = _created_timestamp(os.environ)
    base_reference = None if base_image == SCRATCH else parse_reference(base_image)
    stores = _Stores(
        push_host=target.registry if isinstance(target, RegistryReference) else None,
        registry_config=access.registry_config,
        insecure=access.insecure,
        ca_file=access.ca_file,
        timeout_s=access.timeout_s,
    )
    try:
        # A dry run only reads: asking for pull alone also works with read-only credentials.
        target_store = stores.open(target, "pull" if dry_run else "pull,push")
        if base_reference is None:
            base = scratch_base(platform)
        else:
            base_store = stores.open(base_reference, "pull")
            base = load_base(base_store, base_reference.digest or base_reference.tag, base_image, platform)
        if base.digest is not None:
            labels["org.opencontainers.image.base.name"] = base.name
            labels["org.opencontainers.image.base.digest"] = base.digest
        cache = DigestCache(cache_dir or default_cache_dir())
        explicit = [
            stores.open(parse_reference(f"{target.registry}/{name}"), "pull")
            for name in mount_from
            if isinstance(target, RegistryReference)
        ]
        planned = plan_layers(plan, layer_mode, layer_threshold)
        progress = Progress(
            f"pushing {len(planned)} model layer{'s' if len(planned) > 1 else ''} "
            f"({plan.file_bytes / (1 << 20):.0f} MiB)",
            None,
            enabled=False if dry_run else show_progress,
        )
        pusher = LayerPusher(
            target_store,
            compression,
            cache,
            _mount_sources(stores, target, target_store, base, explicit, cache),
            progress,
            dry_run=dry_run,
        )
        pushed = pusher.push(planned, share_likely=bool(explicit) or target_store.has_images())
        base_layers = _bring_base_layers(base, target_store, show_progress, dry_run=dry_run)
        appended = append_layers(
            base,
            [
                NewLayer(
                    item.layer,
                    created_by if item.planned.kind == "package" else f"{created_by} ({item.planned.description})",
                    item.planned.annotations(),
                )
                for item in pushed
            ],
            labels=labels,
            env=env or {},
            cmd=cmd,
            created=created,
        )
        # A dry run knows every digest, so it can say which manifest digest the push would give.
        digest = appended.manifest_digest if dry_run else _push_config_and_manifest(target_store, appended, target.tag)
    finally:
        stores.close()
    _LOG.info("%s %s@%s", "would push" if dry_run else "pushed", target, digest)
    return BuildResult(
        reference=str(target),
        digest=digest,
        config_digest=appended.config_digest,
        layers=tuple(pushed),
        base=base.name,
        base_digest=base.digest,
        base_layers=tuple(base_layers),
        dry_run=dry_run,
    )


def _mount_sources(
    stores: _Stores,
    target: ImageReference,
    target_store: ImageStore,
    base: BaseImage,
    explicit: list[ImageStore],
    cache: DigestCache,
) -> Callable[[str], list[ImageStore]]:
    """For a digest: the base repository, the ``mount_from`` ones, then those the cache saw it in."""

    def sources(digest: str) -> list[ImageStore]:
        if not isinstance(target, RegistryReference):
            return []
        found = [*([base.store] if base.store is not None else []), *explicit]
        prefix = f"{target.registry}/"
        for location in cache.locations(digest):
            if location.startswith(prefix) and location != target_store.name:
                found.append(stores.open(parse_reference(location), "pull"))
        unique = {store.name: store for store in found if store.name != target_store.name}
        return list(unique.values())

    return sources


def _push_config_and_manifest(target: ImageStore, appended: AppendedImage, tag: str | None) -> str:
    """Config blob, a HEAD of every blob, then the manifest: a tag only ever names a complete image."""
    if not target.has_blob(appended.config_digest):
        target.write_blob([appended.config], _constant(appended.config_digest), len(appended.config))
    digests = [descriptor["digest"] for descriptor in [*appended.layers, {"digest": appended.config_digest}]]
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="check-blob") as pool:
        present = list(pool.map(target.has_blob, digests))
    missing = [digest for digest, found in zip(digests, present, strict=True) if not found]
    if missing:
        raise ConflictError(
            f"{target.name} lost blobs {', '.join(missing)} before the manifest was pushed; no tag was set",
            hint="run the build again (a registry garbage collection may have run)",
        )
    return target.write_manifest(appended.manifest, media_types.OCI_MANIFEST, tag)


def _bring_base_layers(
    base: BaseImage, target: ImageStore, show_progress: bool | None, *, dry_run: bool
) -> list[BaseLayerStatus]:
    """HEAD each base layer in the target; mount it from the base repository, else copy it."""
    if base.store is None:
        return []
    statuses = []
    for descriptor in base.layers:
        digest, size = descriptor["digest"], descriptor["size"]
        if target.has_blob(digest):
            statuses.append(BaseLayerStatus(digest, size, "present"))
        elif dry_run:
            same_registry = isinstance(base.store, RegistryStore) and isinstance(target, RegistryStore)
            statuses.append(BaseLayerStatus(digest, size, "would mount or copy" if same_registry else "would copy"))
        elif target.try_mount(digest, base.store):
            statuses.append(BaseLayerStatus(digest, size, "mounted"))
        else:
            progress = Progress(f"copying base layer {digest[:19]}", size, enabled=show_progress)
            chunks = _verified(base.store.read_blob(digest), digest)
            target.write_blob(progress.wrap(chunks), _constant(digest), size)
            progress.finish()
            statuses.append(BaseLayerStatus(digest, size, "copied"))
    return statuses


def _constant(digest: str) -> Callable[[], str]:
    return lambda: digest


def _verified(chunks: Iterator[bytes], digest: str) -> Iterator[bytes]:
    """Pass a blob through and fail at its end when it does not match its digest."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    if f"sha256:{hasher.hexdigest()}" != digest:
        raise ConflictError(f"base layer {digest} read back with another digest", hint="check the base image's store")
