"""Package MLflow models for Triton, TorchServe, TF Serving and the Python wrapper, and verify them.

``package_model`` is loaded on first use (PEP 562): it pulls in MLflow and the converters, which the
CLI should not pay for just to build the ``package`` parser from the light ``manifest`` and ``support``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from aiserving.packaging.manifest import PackageManifest, TensorSpec
from aiserving.packaging.support import SUPPORTED, supported_pairs

if TYPE_CHECKING:
    from aiserving.packaging.package import package_model

_LOADED_ON_FIRST_USE = {"package_model": "aiserving.packaging.package"}

__all__ = ["SUPPORTED", "PackageManifest", "TensorSpec", "package_model", "supported_pairs"]


def __getattr__(name: str) -> object:
    """Import the module that defines ``package_model`` on first access."""
    if name not in _LOADED_ON_FIRST_USE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(_LOADED_ON_FIRST_USE[name]), name)
    globals()[name] = value
    return value
