"""``build_image``: package directory → modelcar or predictor image, pushed and digest-pinned.

Order of work, so that a failure never leaves a tag on an incomplete image:
validate every input (nothing written yet) → read the base → stream the model layer
(or reuse it when the digest cache and a HEAD agree) → bring the base layers over
(HEAD, then cross-repository mount, then copy) → config → check every blob is there →
manifest last.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from oci_images import media_types
from oci_images.credentials import load_credentials
from oci_images.digest_cache import CachedLayer, DigestCache, default_cache_dir
from oci_images.digests import Compression, DigestingStream, check_compression, layer_media_type
from oci_images.image import SCRATCH, BaseImage, Platform, append_layer, load_base, scratch_base
from oci_images.labels import package_labels
from oci_images.layer import LayerPlan, scan_tree
from oci_images.oci_layout import OciLayoutStore
from oci_images.progress import Progress
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
class BuildResult:
    """What was pushed."""

    reference: str
    digest: str
    config_digest: str
    layer: CachedLayer
    layer_reused: bool
    base: str
    base_digest: str | None

    @property
    def pinned(self) -> str:
        """``REGISTRY/REPO@sha256:…`` (the tag dropped, as skopeo and KServe want): what a deployment uses."""
        return str(parse_reference(self.reference).with_digest(self.digest))


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

    Returns:
        The pushed reference and its manifest digest.

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
    )


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
) -> BuildResult:
    """Append the scanned directory as one layer to ``base_image`` and push the image to ``target``.

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
        target_store = stores.open(target, "pull,push")
        if base_reference is None:
            base = scratch_base(platform)
        else:
            base_store = stores.open(base_reference, "pull")
            base = load_base(base_store, base_reference.digest or base_reference.tag, base_image, platform)
        if base.digest is not None:
            labels["org.opencontainers.image.base.name"] = base.name
            labels["org.opencontainers.image.base.digest"] = base.digest
        cache = DigestCache(cache_dir or default_cache_dir())
        layer, reused = _push_model_layer(plan, compression, target_store, base.store, cache, show_progress)
        _bring_base_layers(base, target_store, show_progress)
        appended = append_layer(
            base, layer, labels=labels, env=env or {}, cmd=cmd, created=created, created_by=created_by
        )
        if not target_store.has_blob(appended.config_digest):
            target_store.write_blob([appended.config], lambda: appended.config_digest)
        missing = [
            descriptor["digest"]
            for descriptor in [*appended.layers, {"digest": appended.config_digest}]
            if not target_store.has_blob(descriptor["digest"])
        ]
        if missing:
            raise ConflictError(
                f"{target_store.name} lost blobs {', '.join(missing)} before the manifest was pushed; no tag was set",
                hint="run the build again (a registry garbage collection may have run)",
            )
        digest = target_store.write_manifest(appended.manifest, media_types.OCI_MANIFEST, target.tag)
    finally:
        stores.close()
    _LOG.info("pushed %s@%s", target, digest)
    return BuildResult(
        reference=str(target),
        digest=digest,
        config_digest=appended.config_digest,
        layer=layer,
        layer_reused=reused,
        base=base.name,
        base_digest=base.digest,
    )


def _push_model_layer(
    plan: LayerPlan,
    compression: Compression,
    target: ImageStore,
    base_store: ImageStore | None,
    cache: DigestCache,
    show_progress: bool | None,
) -> tuple[CachedLayer, bool]:
    """Reuse the layer when the cache knows these exact files and the target has the blob; else stream it."""
    fingerprint = plan.fingerprint(compression)
    cached = cache.get(fingerprint)
    if cached is not None and (
        target.has_blob(cached.digest) or (base_store is not None and target.try_mount(cached.digest, base_store))
    ):
        _LOG.info("model layer %s unchanged and already in %s", cached.digest, target.name)
        return cached, True
    stream = DigestingStream(plan.chunks(), compression)
    total = plan.tar_size if compression == "none" else None
    progress = Progress(f"pushing model layer ({plan.file_bytes / (1 << 20):.0f} MiB)", total, enabled=show_progress)
    target.write_blob(progress.wrap(stream), lambda: stream.digest)
    layer = CachedLayer(stream.digest, stream.diff_id, stream.size, layer_media_type(compression))
    cache.put(fingerprint, layer)
    return layer, False


def _bring_base_layers(base: BaseImage, target: ImageStore, show_progress: bool | None) -> None:
    """HEAD each base layer in the target; mount it from the base repository, else copy it."""
    if base.store is None:
        return
    for descriptor in base.layers:
        digest = descriptor["digest"]
        if target.has_blob(digest) or target.try_mount(digest, base.store):
            continue
        progress = Progress(f"copying base layer {digest[:19]}", descriptor["size"], enabled=show_progress)
        chunks = _verified(base.store.read_blob(digest), digest)
        target.write_blob(progress.wrap(chunks), _constant(digest))


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
