"""Package MLflow models for Triton, TorchServe, TF Serving and the Python wrapper, and verify them."""

from aiserving.packaging.manifest import PackageManifest, TensorSpec
from aiserving.packaging.package import package_model
from aiserving.packaging.support import SUPPORTED, supported_pairs

__all__ = ["SUPPORTED", "PackageManifest", "TensorSpec", "package_model", "supported_pairs"]
