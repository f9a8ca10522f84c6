"""Hash a layer while it streams: diff_id over the tar, digest over the blob as sent."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Literal

from oci_images import media_types
from serving_core.errors import InvalidInputError

Compression = Literal["none", "gzip"]
COMPRESSIONS: tuple[Compression, ...] = ("none", "gzip")
# Level 1: model weights barely compress, and the upload should stay bound by the registry.
GZIP_LEVEL = 1
_GZIP_WBITS = 31  # zlib writes a gzip header with mtime 0: the same bytes on every run


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def layer_media_type(compression: Compression) -> str:
    """The OCI layer media type for a compression."""
    return media_types.OCI_LAYER_GZIP if compression == "gzip" else media_types.OCI_LAYER_TAR


def check_compression(compression: str) -> Compression:
    """Validate a compression name.

    Raises:
        InvalidInputError: not one of :data:`COMPRESSIONS`.
    """
    if compression == "none":
        return "none"
    if compression == "gzip":
        return "gzip"
    raise InvalidInputError(f"compression {compression!r} is not supported", hint="use none or gzip")


class DigestingStream:
    """Wrap the tar chunks of a layer: yields the blob and hashes both forms on the way.

    After the iteration ends, :attr:`diff_id`, :attr:`digest` and :attr:`size` describe the blob.
    """

    def __init__(self, tar_chunks: Iterable[bytes], compression: Compression) -> None:
        self._tar_chunks = tar_chunks
        self._compression = compression
        self._tar_hash = hashlib.sha256()
        self._blob_hash = hashlib.sha256()
        self.size = 0
        self.tar_size = 0
        self._done = False

    @property
    def diff_id(self) -> str:
        """sha256 of the uncompressed tar."""
        self._require_done()
        return f"sha256:{self._tar_hash.hexdigest()}"

    @property
    def digest(self) -> str:
        """sha256 of the blob as uploaded."""
        self._require_done()
        return f"sha256:{self._blob_hash.hexdigest()}"

    def _require_done(self) -> None:
        if not self._done:
            raise RuntimeError("the layer stream has not been read to its end yet")

    def _emit(self, blob_chunk: bytes) -> bytes:
        self._blob_hash.update(blob_chunk)
        self.size += len(blob_chunk)
        return blob_chunk

    def __iter__(self) -> Iterator[bytes]:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS) if self._compression == "gzip" else None
        for chunk in self._tar_chunks:
            self._tar_hash.update(chunk)
            self.tar_size += len(chunk)
            if compressor is None:
                self.size += len(chunk)  # the blob is the tar: hashed once, above
                yield chunk
            else:
                compressed = compressor.compress(chunk)
                if compressed:
                    yield self._emit(compressed)
        if compressor is not None:
            yield self._emit(compressor.flush())
        if self._compression == "none":
            self._blob_hash = self._tar_hash.copy()
        self._done = True
