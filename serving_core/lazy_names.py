"""Names a package loads on first use (PEP 562), so importing it does not import MLflow and friends."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def load_on_first_use(package: str, defined_in: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``defined_in[name]`` when ``name`` is first read.

    The value is then stored in ``namespace`` (the package's globals), so later reads are plain lookups.
    """

    def load(name: str) -> Any:
        if name not in defined_in:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(defined_in[name]), name)
        namespace[name] = value
        return value

    return load
