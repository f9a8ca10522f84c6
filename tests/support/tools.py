"""Prerequisites the tests need (Debian tools on PATH, runtimes, CRDs): skipped here, a failure in CI."""

from __future__ import annotations

import shutil
from typing import NoReturn

import pytest

from tests.conftest import in_ci


def skip_or_fail(message: str) -> NoReturn:
    """Skip the test for a missing prerequisite; fail it instead in CI (``CI=true``), where all are installed."""
    if in_ci():
        pytest.fail(f"prerequisite missing in CI: {message}")
    pytest.skip(message)


def require_tools(*tools: str) -> None:
    """Skip (in CI: fail) the test when a tool is missing from PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"missing Debian tools {missing}: run `make system-deps`")
