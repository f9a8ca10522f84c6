"""The digest that pins a package's content, so a verified package is the one deployed."""

from __future__ import annotations

from pathlib import Path

from mlflow_source.lineage import digest_order, tree_digest

MANIFEST_FILE = "package.json"


def package_files(root: Path) -> list[Path]:
    """Files of the package in digest order; ``package.json`` holds the digest, so it is left out."""
    return digest_order(root, leave_out=MANIFEST_FILE)


def package_digest(root: Path) -> str:
    """SHA-256 over sorted relative paths, sizes and contents (the scheme of ``lineage.content_digest``)."""
    return tree_digest(root, package_files(root))
