"""The digest that pins a package's content, so a verified package is the one deployed."""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST_FILE = "package.json"
_CHUNK = 1 << 20


def package_files(root: Path) -> list[Path]:
    """Files of the package in digest order; ``package.json`` holds the digest, so it is left out."""
    files = [path for path in root.rglob("*") if path.is_file() and path.relative_to(root).as_posix() != MANIFEST_FILE]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def package_digest(root: Path) -> str:
    """SHA-256 over sorted relative paths, sizes and contents (the scheme of ``lineage.content_digest``)."""
    digest = hashlib.sha256()
    for path in package_files(root):
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
