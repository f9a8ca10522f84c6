"""Verify a package in its real runtime against MLflow pyfunc predictions."""

from model_packaging.verify.report import CheckResult, VerifyReport
from model_packaging.verify.services import RuntimeServices
from model_packaging.verify.verify import verify_package

__all__ = ["CheckResult", "RuntimeServices", "VerifyReport", "verify_package"]
