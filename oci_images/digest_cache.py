"""Remember the digests of layers already built, and the repositories that hold them.

The key (:meth:`LayerPlan.fingerprint`) covers every entry's path, size, mode, mtime_ns,
ctime_ns, inode and device, so any write to a file (which always moves its ctime) misses the
cache. A hit is only trusted after the target confirms the blob with a HEAD; otherwise the
layer is streamed again and its digest recomputed.

The second file maps a blob digest to the ``registry/repository`` names it was last pushed to,
so a later build that produces the same blob (the same weight shard in a new version or in
another model) can ask the registry to mount it from there instead of uploading it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_LOG = logging.getLogger(__name__)
CACHE_DIR_ENV = "AISERVING_CACHE_DIR"
CACHE_FILE = "layer-digests.json"
LOCATIONS_FILE = "blob-locations.json"
MAX_ENTRIES = 2048
MAX_LOCATIONS_PER_BLOB = 8


@dataclass(frozen=True)
class CachedLayer:
    """What a finished layer stream produced."""

    digest: str
    diff_id: str
    size: int
    media_type: str


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$AISERVING_CACHE_DIR``, else ``$XDG_CACHE_HOME/aiserving``, else ``~/.cache/aiserving``."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_DIR_ENV):
        return Path(environ[CACHE_DIR_ENV])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "aiserving"


class DigestCache:
    """Two small JSON files (fingerprint → layer, digest → repositories); unreadable files count as empty.

    Each file is read once per instance and rewritten atomically on every change.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / CACHE_FILE
        self.locations_path = directory / LOCATIONS_FILE
        self._layers: dict[str, Any] | None = None
        self._locations: dict[str, Any] | None = None

    def get(self, fingerprint: str) -> CachedLayer | None:
        """The layer built from exactly these files before, if remembered."""
        if self._layers is None:
            self._layers = _load(self.path)
        entry = self._layers.get(fingerprint)
        if not isinstance(entry, dict):
            return None
        try:
            return CachedLayer(
                digest=str(entry["digest"]),
                diff_id=str(entry["diff_id"]),
                size=int(str(entry["size"])),
                media_type=str(entry["media_type"]),
            )
        except (KeyError, ValueError):
            return None

    def put(self, fingerprint: str, layer: CachedLayer) -> None:
        """Remember a layer (newest last; the oldest entries beyond MAX_ENTRIES are dropped)."""
        if self._layers is None:
            self._layers = _load(self.path)
        self._layers.pop(fingerprint, None)
        self._layers[fingerprint] = asdict(layer)
        self._layers = dict(list(self._layers.items())[-MAX_ENTRIES:])
        _save(self.path, self._layers)

    def locations(self, digest: str) -> list[str]:
        """``registry/repository`` names this blob was pushed to, newest first."""
        if self._locations is None:
            self._locations = _load(self.locations_path)
        found = self._locations.get(digest)
        return [str(name) for name in found] if isinstance(found, list) else []

    def remember(self, digests: list[str], location: str) -> None:
        """Record that ``location`` (``registry/repository``) now holds these blobs."""
        if not digests:
            return
        if self._locations is None:
            self._locations = _load(self.locations_path)
        for digest in digests:
            known = [name for name in self.locations(digest) if name != location]
            self._locations.pop(digest, None)
            self._locations[digest] = [location, *known][:MAX_LOCATIONS_PER_BLOB]
        self._locations = dict(list(self._locations.items())[-MAX_ENTRIES:])
        _save(self.locations_path, self._locations)


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        _LOG.warning("ignoring unreadable digest cache %s: %s", path, error)
        return {}
    return document if isinstance(document, dict) else {}


def _save(path: Path, document: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.replace(temporary, path)
    except OSError as error:
        # A cache that cannot be written only costs speed on the next build.
        _LOG.warning("could not write digest cache %s: %s", path, error)
