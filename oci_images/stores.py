"""Where images are read from and written to: a registry repository or an OCI image layout.

Both stores speak the same small interface, so building, appending and copying blobs do not
care whether the base comes from a registry and the result goes to a layout, or the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from oci_images.digests import sha256_digest
from oci_images.reference import RegistryReference
from oci_images.registry import RegistryClient

DigestSupplier = Callable[[], str]


class ImageStore(Protocol):
    """One repository's blobs and manifests."""

    @property
    def name(self) -> str:
        """Where this store is, for messages."""
        ...

    def has_blob(self, digest: str) -> bool:
        """True when the blob is already stored."""
        ...

    def read_blob(self, digest: str) -> Iterator[bytes]:
        """Stream a blob's bytes."""
        ...

    def has_images(self) -> bool:
        """True when earlier images are stored here, so some of a new image's blobs may be too."""
        ...

    def write_blob(
        self, chunks: Iterable[bytes], digest: DigestSupplier, size: int | None = None, *, digest_known: bool = False
    ) -> None:
        """Store a blob; ``digest()`` is asked after ``chunks`` is exhausted; ``size``, when known, is exact.

        With ``digest_known`` the digest came from hashing the same source earlier: the store checks the bytes
        against it (a :class:`~serving_core.errors.ConflictError` when the source changed since).
        """
        ...

    def try_mount(self, digest: str, source: ImageStore) -> bool:
        """Link a blob from ``source`` without copying it; False when that is not possible."""
        ...

    def read_manifest(self, reference: str | None) -> tuple[bytes, str]:
        """A manifest or index by tag or digest: its bytes and media type."""
        ...

    def write_manifest(self, body: bytes, media_type: str, tag: str | None) -> str:
        """Store a manifest (under ``tag`` when given) and return its digest."""
        ...


class RegistryStore:
    """A repository in a registry."""

    def __init__(self, client: RegistryClient, reference: RegistryReference) -> None:
        self.client = client
        self.repository = reference.repository
        self.reference = reference

    @property
    def name(self) -> str:
        """``registry/repository``."""
        return f"{self.client.host}/{self.repository}"

    def has_blob(self, digest: str) -> bool:
        """HEAD the blob."""
        return self.client.blob_exists(self.repository, digest)

    def has_images(self) -> bool:
        """True when the repository has a tag."""
        return self.client.has_tags(self.repository)

    def read_blob(self, digest: str) -> Iterator[bytes]:
        """GET the blob, streamed."""
        return self.client.get_blob(self.repository, digest)

    def write_blob(
        self, chunks: Iterable[bytes], digest: DigestSupplier, size: int | None = None, *, digest_known: bool = False
    ) -> None:
        """Upload in one streamed request (the registry checks a known digest itself)."""
        self.client.upload_blob(self.repository, chunks, digest, size, digest_known=digest_known)

    def try_mount(self, digest: str, source: ImageStore) -> bool:
        """Cross-repository mount when ``source`` is another repository on the same registry client."""
        if not isinstance(source, RegistryStore) or source.client is not self.client:
            return False
        if source.repository == self.repository:
            return False
        return self.client.mount_blob(self.repository, digest, source.repository)

    def read_manifest(self, reference: str | None) -> tuple[bytes, str]:
        """GET the manifest."""
        return self.client.get_manifest(self.repository, reference or self.reference.manifest_reference)

    def write_manifest(self, body: bytes, media_type: str, tag: str | None) -> str:
        """PUT the manifest by tag, or by its own digest when there is no tag."""
        return self.client.put_manifest(self.repository, tag or sha256_digest(body), body, media_type)
