"""An OCI image layout directory as an image store (``oci-layout:PATH[:TAG]``).

Blobs land in a temporary file and are renamed into ``blobs/sha256/`` once complete; the
``index.json`` that names the image is replaced last and atomically, so a reader never sees
a tag for an image whose blobs are missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from oci_images import media_types
from oci_images.digests import sha256_digest
from oci_images.stores import DigestSupplier, ImageStore
from serving_core.errors import ConflictError, InvalidInputError, NotFoundError, RemoteServiceError

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


class OciLayoutStore:
    """An OCI image layout; created on the first write."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        self._layout_lock = threading.Lock()  # layers are written from several threads at once

    @property
    def name(self) -> str:
        """``oci-layout:PATH``."""
        return f"oci-layout:{self.path}"

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, hex_digest = digest.partition(":")
        return self.path / "blobs" / algorithm / hex_digest

    def check_writable(self) -> None:
        """Fail before writing anything when PATH is a non-empty directory that is not a layout.

        Raises:
            InvalidInputError: PATH is a file, or a non-empty directory without ``oci-layout``.
        """
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInputError(f"{self.name}: {self.path} is a file", hint="name a directory")
        if self.path.is_dir() and any(self.path.iterdir()) and not (self.path / LAYOUT_FILE).is_file():
            raise InvalidInputError(
                f"{self.name}: {self.path} is a non-empty directory but not an OCI image layout",
                hint="name a new or empty directory, or an existing OCI layout",
            )

    def _ensure_layout(self) -> None:
        with self._layout_lock:
            if (self.path / LAYOUT_FILE).is_file() and (self.path / "blobs" / "sha256").is_dir():
                return
            self.check_writable()
            # The marker file first: from then on the directory is a layout to any other writer.
            self.path.mkdir(parents=True, exist_ok=True)
            if not (self.path / LAYOUT_FILE).is_file():
                _atomic_write(self.path / LAYOUT_FILE, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
            (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def has_blob(self, digest: str) -> bool:
        """True when ``blobs/sha256/<hex>`` exists."""
        return self._blob_path(digest).is_file()

    def has_images(self) -> bool:
        """True when ``index.json`` names a manifest."""
        return (self.path / INDEX_FILE).is_file() and bool(self._index().get("manifests"))

    def read_blob(self, digest: str) -> Iterator[bytes]:
        """Stream a blob file.

        Raises:
            NotFoundError: the layout has no such blob.
        """
        path = self._blob_path(digest)
        if not path.is_file():
            raise NotFoundError(f"{self.name} has no blob {digest}", hint="the layout is incomplete; rebuild it")
        return _read_file(path)

    def write_blob(
        self, chunks: Iterable[bytes], digest: DigestSupplier, size: int | None = None, *, digest_known: bool = False
    ) -> None:
        """Write to a temporary file, then rename it to its digest (``size`` is not needed here).

        Raises:
            ConflictError: with ``digest_known``, the bytes hash to another digest.
        """
        self._ensure_layout()
        directory = self.path / "blobs" / "sha256"
        handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=directory)
        written = hashlib.sha256() if digest_known else None
        try:
            with os.fdopen(handle, "wb") as stream:
                for chunk in chunks:
                    if written is not None:
                        written.update(chunk)
                    stream.write(chunk)
            if written is not None and f"sha256:{written.hexdigest()}" != digest():
                raise ConflictError(
                    f"blob {digest()} for {self.name} hashes to sha256:{written.hexdigest()} when written",
                    hint="do not modify the package while building; run the build again",
                )
            os.replace(temporary, self._blob_path(digest()))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def try_mount(self, digest: str, source: ImageStore) -> bool:
        """Layouts copy; there is nothing to link from."""
        return False

    def _index(self) -> dict[str, Any]:
        path = self.path / INDEX_FILE
        if not path.is_file():
            return {"schemaVersion": 2, "mediaType": media_types.OCI_INDEX, "manifests": []}
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    def read_manifest(self, reference: str | None) -> tuple[bytes, str]:
        """Find a manifest by digest, by ``ref.name`` tag, or the only one when no reference is given.

        Raises:
            NotFoundError: no such manifest in the layout.
        """
        if not (self.path / INDEX_FILE).is_file():
            raise NotFoundError(f"{self.path} is not an OCI image layout (no index.json)", hint="check the path")
        entries = self._index().get("manifests", [])
        if reference and reference.startswith("sha256:"):
            matches = [entry for entry in entries if entry.get("digest") == reference] or [
                {"digest": reference, "mediaType": ""}
            ]
        elif reference:
            matches = [entry for entry in entries if entry.get("annotations", {}).get(REF_NAME) == reference]
        else:
            matches = entries if len(entries) == 1 else []
        if not matches:
            raise NotFoundError(
                f"{self.name} has no image {reference or '(untagged, and it holds several)'}",
                hint="name the image as oci-layout:PATH:TAG or oci-layout:PATH@sha256:...",
            )
        entry = matches[0]
        body = b"".join(self.read_blob(entry["digest"]))
        if sha256_digest(body) != entry["digest"]:
            raise RemoteServiceError(f"{self.name}: blob {entry['digest']} does not match its digest")
        media_type = entry.get("mediaType") or json.loads(body).get("mediaType", "")
        return body, media_type

    def write_manifest(self, body: bytes, media_type: str, tag: str | None) -> str:
        """Write the manifest blob, then replace ``index.json`` with the new entry (a tag moves)."""
        digest = sha256_digest(body)
        if not self.has_blob(digest):
            self.write_blob([body], lambda: digest)
        index = self._index()
        kept = [
            entry
            for entry in index.get("manifests", [])
            if entry.get("digest") != digest and (tag is None or entry.get("annotations", {}).get(REF_NAME) != tag)
        ]
        entry: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(body)}
        if tag:
            entry["annotations"] = {REF_NAME: tag}
        index["manifests"] = [*kept, entry]
        _atomic_write(self.path / INDEX_FILE, json.dumps(index, indent=2).encode())
        return digest


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
