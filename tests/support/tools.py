"""Debian tools the tests need on PATH (`make system-deps` installs them)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import in_ci


def require_tools(*tools: str) -> None:
    """Skip the test when a tool is missing from PATH; fail it instead in CI (``CI=true``)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        message = f"missing Debian tools {missing}: run `make system-deps`"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
