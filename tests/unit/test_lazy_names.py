"""A package's names loaded on first use."""

from __future__ import annotations

import math
from typing import Any

import pytest

from serving_core.lazy_names import load_on_first_use


def test_first_read_imports_and_keeps_the_value() -> None:
    namespace: dict[str, Any] = {}
    load = load_on_first_use("pkg", {"sqrt": "math"}, namespace)
    assert load("sqrt") is math.sqrt
    assert namespace == {"sqrt": math.sqrt}


def test_unknown_name_is_an_attribute_error() -> None:
    load = load_on_first_use("pkg", {"sqrt": "math"}, {})
    with pytest.raises(AttributeError, match=r"^module 'pkg' has no attribute 'cbrt'$"):
        load("cbrt")
