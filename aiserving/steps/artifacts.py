"""The part of a KFP artifact that steps use."""

from __future__ import annotations

from typing import Any, Protocol


class ArtifactLike(Protocol):
    """A KFP input or output artifact: a local path and a metadata dict."""

    path: str
    metadata: dict[str, Any]
