"""Push the planned model layers: skip what the target already has, upload the rest concurrently.

For each layer the digest comes from the digest cache (these exact files were built before),
or from hashing the files first, or from the upload itself:

- **Known digest**: ``HEAD`` in the target; when missing, a cross-repository mount from the
  base repository, the ``--mount-from`` repositories and the repositories the cache remembers
  the blob in; only then an upload.
- **Unknown digest, target may share blobs** (it holds earlier images, or there are mount
  sources): the files are hashed first, all layers at once, so that unchanged shards of an
  earlier version are skipped at the cost of one read instead of an upload.
- **Unknown digest, nothing to share with** (a new repository): the layer is uploaded in the
  same pass that hashes it, reading the model once.

Uploads run :data:`CONCURRENCY` at a time. Each one reads and hashes in its own thread up to
:data:`READ_AHEAD` chunks ahead of the socket, so reading, hashing and sending overlap
(hashlib, file reads and socket writes all release the GIL). Memory is bounded by
``CONCURRENCY x (READ_AHEAD + 2)`` chunks of 1 MiB.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from oci_images.digest_cache import CachedLayer, DigestCache
from oci_images.digests import Compression, DigestingStream, layer_media_type
from oci_images.layering import PlannedLayer
from oci_images.progress import Progress
from oci_images.stores import ImageStore
from serving_core.errors import ConflictError

_LOG = logging.getLogger(__name__)
CONCURRENCY = 4
READ_AHEAD = 4
Outcome = Literal["present", "mounted", "uploaded", "would mount", "would upload"]
SKIPPED: frozenset[Outcome] = frozenset({"present", "mounted", "would mount"})
MountSources = Callable[[str], list[ImageStore]]


@dataclass(frozen=True)
class PushedLayer:
    """One model layer: what it holds, the blob it became, and how it got (or would get) there.

    ``source`` names the repository a mounted blob came from.
    """

    planned: PlannedLayer
    layer: CachedLayer
    outcome: Outcome
    source: str | None = None

    @property
    def skipped(self) -> bool:
        """True when no byte of this layer was (or would be) sent."""
        return self.outcome in SKIPPED

    @property
    def sent_bytes(self) -> int:
        """Blob bytes sent (or to send) for this layer."""
        return 0 if self.skipped else self.layer.size


class LayerPusher:
    """Bring planned layers into ``target``.

    Args:
        target: where the image goes.
        compression: ``none`` or ``gzip`` for every model layer.
        cache: digests of earlier builds and where their blobs are.
        mount_sources: for a digest, the stores on the target's registry to try mounting it from.
        progress: counts bytes sent and skipped.
        dry_run: find out what would happen: hash, HEAD, never write.
    """

    def __init__(
        self,
        target: ImageStore,
        compression: Compression,
        cache: DigestCache,
        mount_sources: MountSources,
        progress: Progress,
        *,
        dry_run: bool = False,
    ) -> None:
        self.target = target
        self.compression = compression
        self.cache = cache
        self.mount_sources = mount_sources
        self.progress = progress
        self.dry_run = dry_run

    def push(self, planned: list[PlannedLayer], *, share_likely: bool) -> list[PushedLayer]:
        """Push every layer; return them in plan order.

        Args:
            planned: the layer plan.
            share_likely: hash unknown layers before deciding to upload them (see module doc).

        Raises:
            ConflictError: a file changed while it was read.
        """
        fingerprints = [layer.content.fingerprint(self.compression) for layer in planned]
        known: dict[int, CachedLayer] = {}
        for index, fingerprint in enumerate(fingerprints):
            cached = self.cache.get(fingerprint)
            if cached is not None:
                known[index] = cached
        unknown = [index for index in range(len(planned)) if index not in known]
        if unknown and (share_likely or self.dry_run):
            for index, layer in zip(unknown, self._hash_all([planned[index] for index in unknown]), strict=True):
                known[index] = layer
                self.cache.put(fingerprints[index], layer)

        results: dict[int, PushedLayer] = {}
        to_upload: list[int] = []
        for index, layer in known.items():
            found = self._find(layer.digest)
            if found is None:
                to_upload.append(index)
                continue
            outcome, source = found
            results[index] = PushedLayer(planned[index], layer, outcome, source)
            self.progress.skip(planned[index].file_bytes)
        to_upload += [index for index in unknown if index not in known]

        if self.dry_run:
            for index in to_upload:
                results[index] = PushedLayer(planned[index], known[index], "would upload")
            return [results[index] for index in range(len(planned))]

        self.progress.total = (
            sum(planned[index].content.tar_size for index in to_upload) if self.compression == "none" else None
        )
        for index, layer in self._upload_all([planned[index] for index in to_upload], known, to_upload):
            if index not in known:
                self.cache.put(fingerprints[index], layer)
            elif layer.digest != known[index].digest:
                raise ConflictError(
                    f"layer {planned[index].description} read back as {layer.digest}, not {known[index].digest}",
                    hint="do not modify the package while building; run the build again",
                )
            results[index] = PushedLayer(planned[index], layer, "uploaded")
        self.progress.finish()
        pushed = [results[index] for index in range(len(planned))]
        self.cache.remember([item.layer.digest for item in pushed], self.target.name)
        return pushed

    def _find(self, digest: str) -> tuple[Outcome, str | None] | None:
        """Where the target gets this blob without an upload: already there, or mounted from a source."""
        if self.target.has_blob(digest):
            return "present", None
        for source in self.mount_sources(digest):
            if self.dry_run:
                if source.has_blob(digest):
                    return "would mount", source.name
            elif self.target.try_mount(digest, source):
                _LOG.info("mounted %s from %s", digest, source.name)
                return "mounted", source.name
        return None

    def _hash_all(self, planned: list[PlannedLayer]) -> list[CachedLayer]:
        """Read and hash layers in parallel (hashlib releases the GIL), in plan order."""
        with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="hash-layer") as pool:
            return list(pool.map(self._hash_one, planned))

    def _hash_one(self, planned: PlannedLayer) -> CachedLayer:
        stream = DigestingStream(planned.content.chunks(), self.compression)
        for _ in stream:
            pass
        return CachedLayer(stream.digest, stream.diff_id, stream.size, layer_media_type(self.compression))

    def _upload_all(
        self, planned: list[PlannedLayer], known: dict[int, CachedLayer], indexes: list[int]
    ) -> Iterator[tuple[int, CachedLayer]]:
        """Upload layers, :data:`CONCURRENCY` at a time; the first failure cancels the rest."""
        if not planned:
            return
        with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="upload-layer") as pool:
            futures: list[tuple[int, Future[CachedLayer]]] = [
                (index, pool.submit(self._upload_one, layer)) for index, layer in zip(indexes, planned, strict=True)
            ]
            try:
                for index, future in futures:
                    yield index, future.result()
            finally:
                for _, future in futures:
                    future.cancel()

    def _upload_one(self, planned: PlannedLayer) -> CachedLayer:
        stream = DigestingStream(planned.content.chunks(), self.compression)
        self.target.write_blob(self.progress.wrap(read_ahead(stream, READ_AHEAD)), lambda: stream.digest)
        return CachedLayer(stream.digest, stream.diff_id, stream.size, layer_media_type(self.compression))


_END = object()


def read_ahead(chunks: Iterable[bytes], depth: int) -> Iterator[bytes]:
    """Iterate ``chunks`` in a thread of its own, up to ``depth`` chunks ahead of the consumer.

    The producer's work (reading files, hashing) then overlaps the consumer's (sending). An
    exception in the producer is raised in the consumer; a consumer that stops early stops the
    producer.
    """
    pipe: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pipe.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            put(error)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = pipe.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        producer.join()
