"""Remember the digests of layers already built, keyed on the files' stat facts.

The key (:meth:`LayerPlan.fingerprint`) covers every entry's path, size, mode, mtime_ns,
ctime_ns, inode and device, so any write to a file (which always moves its ctime) misses the
cache. A hit is only trusted after the target confirms the blob with a HEAD; otherwise the
layer is streamed again and its digest recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

_LOG = logging.getLogger(__name__)
CACHE_DIR_ENV = "AISERVING_CACHE_DIR"
CACHE_FILE = "layer-digests.json"
MAX_ENTRIES = 256


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
    """A small JSON file of fingerprint → layer; unreadable files are treated as empty."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CACHE_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            _LOG.warning("ignoring unreadable digest cache %s: %s", self.path, error)
            return {}
        return document if isinstance(document, dict) else {}

    def get(self, fingerprint: str) -> CachedLayer | None:
        """The layer built from exactly these files before, if remembered."""
        entry = self._load().get(fingerprint)
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
        entries = self._load()
        entries.pop(fingerprint, None)
        entries[fingerprint] = asdict(layer)
        kept = dict(list(entries.items())[-MAX_ENTRIES:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".layer-digests-", dir=self.path.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(kept, stream)
            os.replace(temporary, self.path)
        except OSError as error:
            # A cache that cannot be written only costs speed on the next build.
            _LOG.warning("could not write digest cache %s: %s", self.path, error)
