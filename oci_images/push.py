"""Push the planned model layers: skip what the target already has, upload the rest concurrently.

Every layer goes through its own pipeline, :data:`CONCURRENCY` layers at a time, so that the
upload of one layer overlaps the hashing of the others:

- **Known digest** (the digest cache has these exact files): ``HEAD`` in the target; when
  missing, a cross-repository mount from the base repository, the ``--mount-from`` repositories
  and the repositories the cache remembers the blob in; only then an upload.
- **Unknown digest, target may share blobs** (it holds earlier images, or there are mount
  sources): the layer is hashed first, then treated as known, so an unchanged shard of an
  earlier version costs one read instead of an upload. The upload of a changed layer starts
  as soon as its own hash is done, while the next layers are still being hashed.
- An uncompressed layer whose digest is known goes in one ``PUT ?digest=`` without being
  hashed again: the registry hashes what it receives and refuses a mismatch (a layout store
  checks it as it writes), so a file changed since its hash still fails the build.
- **Unknown digest, nothing to share with** (a new repository): the layer is uploaded in the
  same pass that hashes it, reading the model once; the digest is only needed for the final
  ``PUT ?digest=`` that commits the upload.

An upload reads and hashes in its own thread up to :data:`READ_AHEAD` chunks ahead of the
socket, so reading, hashing and sending overlap (hashlib, file reads and socket writes all
release the GIL). An uncompressed layer's size is known from the plan, so it is sent with a
``Content-Length`` rather than chunked encoding, which would copy every chunk once more.
Memory is bounded by ``CONCURRENCY x (READ_AHEAD + 2)`` chunks of 1 MiB.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, CancelledError, ThreadPoolExecutor, wait
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
        self._lock = threading.Lock()
        self._abort = threading.Event()

    def push(self, planned: list[PlannedLayer], *, share_likely: bool) -> list[PushedLayer]:
        """Push every layer; return them in plan order.

        Args:
            planned: the layer plan.
            share_likely: hash unknown layers before deciding to upload them (see module doc).

        Raises:
            ConflictError: a file changed while it was read.
        """
        fingerprints = [layer.content.fingerprint(self.compression) for layer in planned]
        known = [self.cache.get(fingerprint) for fingerprint in fingerprints]
        hash_first = share_likely or self.dry_run
        if self.compression == "none" and not self.dry_run:
            self.progress.total = 0  # grows as uploads start: skipped layers never count
        self._abort.clear()
        with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="push-layer") as pool:
            futures = [
                pool.submit(self._bring, layer, cached, fingerprint, hash_first=hash_first)
                for layer, cached, fingerprint in zip(planned, known, fingerprints, strict=True)
            ]
            _, unfinished = wait(futures, return_when=FIRST_EXCEPTION)
            if unfinished:  # a layer failed: start no new hash or upload, let running ones end
                self._abort.set()
                for future in unfinished:
                    future.cancel()
        failures = [
            error
            for future in futures
            if not future.cancelled() and (error := future.exception()) and not isinstance(error, CancelledError)
        ]
        if failures:
            raise failures[0]
        pushed = [future.result() for future in futures]
        if self.dry_run:
            return pushed
        self.progress.finish()
        self.cache.remember([item.layer.digest for item in pushed], self.target.name)
        return pushed

    def _bring(
        self, planned: PlannedLayer, known: CachedLayer | None, fingerprint: str, *, hash_first: bool
    ) -> PushedLayer:
        """One layer's pipeline: hash (when worth it), HEAD or mount, else upload."""
        if known is None and hash_first:
            self._check_not_aborted()
            known = self._hash_one(planned)
            self._remember_layer(fingerprint, known)
        if known is not None:
            found = self._find(known.digest)
            if found is not None:
                outcome, source = found
                self.progress.skip(planned.file_bytes)
                return PushedLayer(planned, known, outcome, source)
            if self.dry_run:
                return PushedLayer(planned, known, "would upload")
        self._check_not_aborted()
        if known is not None and self.compression == "none":
            # The blob is the tar just hashed: send it without hashing it again, the target checks the digest.
            self._upload_known(planned, known)
            return PushedLayer(planned, known, "uploaded")
        layer = self._upload_one(planned)
        if known is None:
            self._remember_layer(fingerprint, layer)
        elif layer.digest != known.digest:
            raise ConflictError(
                f"layer {planned.description} read back as {layer.digest}, not {known.digest}",
                hint="do not modify the package while building; run the build again",
            )
        return PushedLayer(planned, layer, "uploaded")

    def _check_not_aborted(self) -> None:
        if self._abort.is_set():
            raise CancelledError("another layer failed")

    def _remember_layer(self, fingerprint: str, layer: CachedLayer) -> None:
        with self._lock:
            self.cache.put(fingerprint, layer)

    def _find(self, digest: str) -> tuple[Outcome, str | None] | None:
        """Where the target gets this blob without an upload: already there, or mounted from a source."""
        if self.target.has_blob(digest):
            return "present", None
        with self._lock:  # the sources come from the cache and open registry stores: one thread at a time
            sources = self.mount_sources(digest)
        for source in sources:
            if self.dry_run:
                if source.has_blob(digest):
                    return "would mount", source.name
            elif self.target.try_mount(digest, source):
                _LOG.info("mounted %s from %s", digest, source.name)
                return "mounted", source.name
        return None

    def _hash_one(self, planned: PlannedLayer) -> CachedLayer:
        stream = DigestingStream(planned.content.chunks(), self.compression)
        for _ in stream:
            pass
        return CachedLayer(stream.digest, stream.diff_id, stream.size, layer_media_type(self.compression))

    def _upload_one(self, planned: PlannedLayer) -> CachedLayer:
        stream = DigestingStream(planned.content.chunks(), self.compression)
        # An uncompressed blob is the tar itself, whose size the plan knows before a byte is read.
        size = planned.content.tar_size if self.compression == "none" else None
        if size is not None:
            self.progress.expect(size)
        self.target.write_blob(self.progress.wrap(read_ahead(stream, READ_AHEAD)), lambda: stream.digest, size)
        return CachedLayer(stream.digest, stream.diff_id, stream.size, layer_media_type(self.compression))

    def _upload_known(self, planned: PlannedLayer, known: CachedLayer) -> None:
        size = planned.content.tar_size
        self.progress.expect(size)
        chunks = self.progress.wrap(read_ahead(planned.content.chunks(), READ_AHEAD))
        self.target.write_blob(chunks, lambda: known.digest, size, digest_known=True)


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
