"""Package MLflow models for Triton, TorchServe, TF Serving and the Python wrapper, and verify them.

``package_model`` is loaded on first use (PEP 562): it pulls in MLflow and the converters, which the
CLI should not pay for just to build the ``package`` parser from the light ``manifest`` and ``support``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiserving.lazy_names import load_on_first_use
from aiserving.packaging.manifest import PackageManifest, TensorSpec
from aiserving.packaging.support import SUPPORTED, supported_pairs

if TYPE_CHECKING:
    from aiserving.packaging.package import package_model

_LOADED_ON_FIRST_USE = {"package_model": "aiserving.packaging.package"}

__all__ = ["SUPPORTED", "PackageManifest", "TensorSpec", "package_model", "supported_pairs"]

__getattr__ = load_on_first_use(__name__, _LOADED_ON_FIRST_USE, globals())
