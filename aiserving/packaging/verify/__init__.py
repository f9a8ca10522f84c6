"""Verify a package in its real runtime against MLflow pyfunc predictions."""

from aiserving.packaging.verify.report import CheckResult, VerifyReport
from aiserving.packaging.verify.services import RuntimeServices
from aiserving.packaging.verify.verify import verify_package

__all__ = ["CheckResult", "RuntimeServices", "VerifyReport", "verify_package"]
