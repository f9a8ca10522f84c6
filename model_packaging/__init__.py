"""Package MLflow models for Triton, TorchServe, TF Serving and the Python wrapper, and verify them.

``package_model`` is loaded on first use (PEP 562): it pulls in MLflow and the converters, which the
CLI should not pay for just to build the ``package`` parser from the light ``manifest`` and ``support``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_packaging.manifest import PackageManifest, TensorSpec
from model_packaging.support import SUPPORTED, supported_pairs
from serving_core.lazy_names import load_on_first_use

if TYPE_CHECKING:
    from model_packaging.package import package_model

_LOADED_ON_FIRST_USE = {"package_model": "model_packaging.package"}

__all__ = ["SUPPORTED", "PackageManifest", "TensorSpec", "package_model", "supported_pairs"]

__getattr__ = load_on_first_use(__name__, _LOADED_ON_FIRST_USE, globals())
