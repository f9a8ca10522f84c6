"""Lineage of a downloaded model and the digest that pins its content."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

LINEAGE_FILE = "lineage.json"
_CHUNK = 1 << 20


class Lineage(BaseModel):
    """Where a model directory came from; written next to the artifacts."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    aliases: list[str]
    requested_uri: str
    run_id: str | None
    model_id: str | None
    source: str
    tracking_uri: str
    resolved_at: str
    content_digest: str
    file_count: int
    total_bytes: int

    @classmethod
    def read(cls, directory: Path) -> Lineage:
        """Read ``lineage.json`` from a downloaded model directory."""
        return cls.model_validate_json((directory / LINEAGE_FILE).read_text(encoding="utf-8"))


def digest_order(root: Path, *, leave_out: str) -> list[Path]:
    """Files under ``root`` in digest order, without the metadata file ``leave_out`` at the root."""
    files = [path for path in root.rglob("*") if path.is_file() and path.relative_to(root).as_posix() != leave_out]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def tree_digest(root: Path, files: list[Path]) -> str:
    """SHA-256 over ``files`` (in the given order): ``path NUL size NUL`` then the bytes of each.

    A renamed, moved or changed file always changes the digest. Files are
    streamed in 1 MiB chunks.
    """
    digest = hashlib.sha256()
    for path in files:
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def content_files(root: Path) -> list[Path]:
    """Files that make up the model's content, in digest order.

    ``lineage.json`` at the root is metadata about the content, not content.
    """
    return digest_order(root, leave_out=LINEAGE_FILE)


def content_digest(root: Path) -> str:
    """The model's content digest: :func:`tree_digest` over :func:`content_files`."""
    return tree_digest(root, content_files(root))
