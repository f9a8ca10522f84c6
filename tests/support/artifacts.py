"""A stand-in for KFP artifacts in step tests: a path and a metadata dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeArtifact:
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)
